"""WhatsApp's formatting as a Rich Text: what the template and campaign previews show."""

from __future__ import annotations

import pytest
from rich.style import Style
from rich.text import Text

from waha_tui.tui.whatsapp_markdown import BOLD, ITALIC, MONO, STRIKE, whatsapp_text


def styled(text: Text) -> list[tuple[str, Style]]:
    """Each styled run of the text, with the style it ends up with (nested ones combined)."""
    runs: list[tuple[str, Style]] = []
    for segment in text.render(_console()):
        if segment.text and segment.style and segment.style != Style():
            runs.append((segment.text, segment.style))
    return runs


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(width=200, color_system="truecolor", legacy_windows=False)


def style_at(text: Text, index: int) -> Style:
    return text.get_style_at_offset(_console(), index)


@pytest.mark.parametrize(
    ("marked", "plain", "style"),
    [
        ("*bold*", "bold", BOLD),
        ("_italic_", "italic", ITALIC),
        ("~strike~", "strike", STRIKE),
        ("```mono```", "mono", MONO),
    ],
)
def test_each_marker_styles_its_text_and_is_not_shown(marked: str, plain: str, style: Style):
    text = whatsapp_text(f"a {marked} b")
    assert text.plain == f"a {plain} b"
    assert styled(text) == [(plain, style)]


def test_the_styles_are_what_a_terminal_can_show() -> None:
    assert BOLD.bold and ITALIC.italic and STRIKE.strike
    assert MONO.bgcolor is not None  # every cell is monospaced: a shaded background


def test_a_message_with_everything() -> None:
    text = whatsapp_text("Hi *Ana*, _welcome_ to ~old~ ```new``` shop!")
    assert text.plain == "Hi Ana, welcome to old new shop!"
    assert styled(text) == [("Ana", BOLD), ("welcome", ITALIC), ("old", STRIKE), ("new", MONO)]


def test_markers_nest() -> None:
    text = whatsapp_text("*_both_* and _it *and bold*_")
    assert text.plain == "both and it and bold"
    both = style_at(text, 0)
    assert both.bold and both.italic
    assert style_at(text, 9).italic and not style_at(text, 9).bold  # "it"
    inner = style_at(text, 12)  # "and bold"
    assert inner.italic and inner.bold


@pytest.mark.parametrize(
    "unchanged",
    [
        "2*3*4 = 24",  # inside a word: arithmetic, not bold
        "snake_case_name",
        "* spaced *",  # a space after the opening marker
        "*spaced *",  # a space before the closing marker
        "**",
        "a * b",
        "*unclosed",
        "*across\nlines*",  # * _ ~ stay on one line
        "~~",
        "``````",
        "*bold*er",  # the closing marker is followed by a letter
    ],
)
def test_what_whatsapp_leaves_as_typed(unchanged: str) -> None:
    text = whatsapp_text(unchanged)
    assert text.plain == unchanged
    assert styled(text) == []


def test_monospace_spans_lines_and_formats_nothing_inside() -> None:
    text = whatsapp_text("code:\n```a *b*\n_c_```\nend *x*")
    assert text.plain == "code:\na *b*\n_c_\nend x"
    assert styled(text) == [("a *b*\n_c_", MONO), ("x", BOLD)]


def test_the_first_closing_marker_closes() -> None:
    text = whatsapp_text("x *a* b*")
    assert text.plain == "x a b*"
    assert styled(text) == [("a", BOLD)]


def test_punctuation_around_markers_is_fine() -> None:
    text = whatsapp_text("(*yes*), _ok_!")
    assert text.plain == "(yes), ok!"
    assert styled(text) == [("yes", BOLD), ("ok", ITALIC)]


@pytest.mark.parametrize(
    "user_text",
    ["[bold]not markup[/bold]", "[red]x", ":smile: {name} [link=x]y[/link]", "\\[b]"],
)
def test_rich_markup_in_the_message_is_never_interpreted(user_text: str) -> None:
    text = whatsapp_text(user_text)
    assert text.plain == user_text
    assert styled(text) == []


def test_markup_inside_a_formatted_part_stays_text_too() -> None:
    text = whatsapp_text("*[red]hot[/red]*")
    assert text.plain == "[red]hot[/red]"
    assert styled(text) == [("[red]hot[/red]", BOLD)]


def test_it_is_a_pure_function() -> None:
    message = "*a* _b_ ~c~ ```d```"
    first, second = whatsapp_text(message), whatsapp_text(message)
    assert first.plain == second.plain and first.spans == second.spans
    assert message == "*a* _b_ ~c~ ```d```"
