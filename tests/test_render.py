from collections.abc import Callable

import pytest

from waha_tui.errors import UserError
from waha_tui.render import (
    Literal,
    RenderError,
    Variants,
    parse,
    placeholders,
    render,
    template_errors,
    unknown_placeholders,
)


def test_placeholders_are_lower_cased_unique_and_ordered() -> None:
    template = "Hi {Name}, {city} / {CITY} / { city } {First Name} {zip-code} {a_1}"
    assert placeholders(template) == ["name", "city", "first name", "zip-code", "a_1"]


@pytest.mark.parametrize(
    "template",
    [
        "{}",
        "{ }",
        '{"a":1}',
        "{a.b}",
        "{city!}",
        "{\tcity}",
        "{city\n}",
        "{ unclosed",
        "closed }",
        "*bold* _italic_ ~strike~ ```mono```",
    ],
)
def test_text_that_is_not_a_placeholder(template: str) -> None:
    assert placeholders(template) == []
    assert render(template, {}, name="Ann", default_name="friend") == template


def test_render_is_case_insensitive_both_ways() -> None:
    text = render(
        "Hi {NAME}, see you in {City} ({ city }) on {Day Of Week}",
        {"CITY": "Berlin", " day of week ": "Monday"},
        name="Ann",
        default_name="friend",
    )
    assert text == "Hi Ann, see you in Berlin (Berlin) on Monday"


@pytest.mark.parametrize("name", [None, "", "   "])
def test_default_name_when_the_name_is_empty(name: str | None) -> None:
    assert render("Hi {name}!", {}, name=name, default_name="friend") == "Hi friend!"


def test_name_is_the_contact_not_a_variable() -> None:
    assert render("{name}", {"name": "column"}, name="Ann", default_name="x") == "Ann"


def test_markdown_and_other_braces_are_kept_around_placeholders() -> None:
    template = '*Hi {name}*, _{city}_ ~old~ ```{"a": 1}``` {} { } {{city}}'
    text = render(template, {"city": "Rome"}, name="Bo", default_name="x")
    assert text == '*Hi Bo*, _Rome_ ~old~ ```{"a": 1}``` {} { } {Rome}'


def test_values_are_not_expanded_again() -> None:
    text = render("{a} {b}", {"a": "{b}", "b": "{name}"}, name="Ann", default_name="x")
    assert text == "{b} {name}"


def test_missing_variables_are_named() -> None:
    with pytest.raises(RenderError) as info:
        render("{name} {city} {Zip} {city}", {"street": "x"}, name="A", default_name="x")
    assert str(info.value) == "the template uses {city}, {zip} but there is no value for them"
    assert isinstance(info.value, UserError)


def test_one_missing_variable() -> None:
    with pytest.raises(
        RenderError, match=r"^the template uses \{city\} but there is no value for it$"
    ):
        render("{city}", {}, name=None, default_name="x")


def test_unknown_placeholders() -> None:
    template = "{Name} {City} {zip} {first name} {street}"
    assert unknown_placeholders(template, ["city", " STREET "]) == ["zip", "first name"]
    assert unknown_placeholders(template, []) == ["city", "zip", "first name", "street"]
    assert unknown_placeholders("*plain* {}", []) == []


# -- the one grammar: positions, escapes, variants, lenient rendering of stored texts -----


@pytest.mark.parametrize(
    ("template", "errors"),
    [
        ("Hi {first.name}", ["line 1, column 4: {first.name} is not a placeholder"]),
        ("Hi {name", ["line 1, column 4: {name has no closing }"]),
        ("ok\n  {city:}", ["line 2, column 3: {city:} is not a placeholder"]),
        ("{{name}}", ["line 1, column 1: write {name}, not {{name}}"]),
        ("Hi|Hello {name}", ["line 1, column 3: a | outside braces"]),
        ("{Hi|Hello {name}", ["line 1, column 1: {Hi has no closing }"]),
        ("x { |Hi", ["line 1, column 3: this { of a choice has no closing }"]),
        ("ok\n{Hi|} {|}", ["line 2, column 7: {|} is a choice with no text in any option"]),
        ("{a|{first.name}}", ["line 1, column 4: {first.name} is not a placeholder"]),
        ("a | b | c", ["line 1, column 3: a | outside", "line 1, column 7: a | outside"]),
        ("{a.b} and {c", ["line 1, column 1: {a.b} is not", "line 1, column 11: {c has no"]),
    ],
)
def test_template_errors_name_what_and_where(template: str, errors: list[str]) -> None:
    found = [str(e) for e in template_errors(template)]
    assert len(found) == len(errors), found
    for got, want in zip(found, errors, strict=True):
        assert got.startswith(want), got


@pytest.mark.parametrize(
    "template",
    ['{"a": 1}', "{}", "{ }", "closed }", ":-} {:-)}", r"a \| b", "*bold* _it_ ~s~ ```m```"],
)
def test_plain_text_braces_are_no_error(template: str) -> None:
    assert template_errors(template) == []
    assert render(template, {}, name="Ann", default_name="x") == template.replace("\\|", "|")


def test_backslash_escapes_a_brace_or_a_bar_and_nothing_else() -> None:
    template = r'\{name\} is {name}; a\|b; C:\path\n {"a": 1}'
    assert template_errors(template) == []
    assert placeholders(template) == ["name"]
    assert render(template, {}, name="Ann", default_name="x") == (
        r'{name} is Ann; a|b; C:\path\n {"a": 1}'
    )


def test_variants_parse_with_placeholders_inside() -> None:
    parsed = parse("{Hi|Hello {name}|Hey {city}}!")
    (variants, rest) = parsed.parts
    assert isinstance(variants, Variants) and rest == Literal("!")
    assert len(variants.options) == 3
    assert placeholders("{Hi|Hello {name}|Hey {city}}!") == ["name", "city"]


def test_stored_texts_render_as_they_always_did() -> None:
    """Texts saved before the grammar was enforced keep being sent as written."""
    for template, sent in [
        ("Hi {first.name}", "Hi {first.name}"),
        ("Hi {name", "Hi {name"),
        ("{{name}}", "{Ann}"),
        ("a | b", "a | b"),
    ]:
        assert template_errors(template)
        assert render(template, {}, name="Ann", default_name="x") == sent
    # A choice in a campaign created before choices were sent: as written (no `choose`).
    assert render("{Hi|Hello} {name}", {}, name="Ann", default_name="x") == "{Hi|Hello} Ann"


# -- choices (spintax) -------------------------------------------------------------------


def _always(k: int) -> Callable[[Variants], int]:
    return lambda group: min(k, len(group.options) - 1)


def test_a_choice_renders_the_option_chosen() -> None:
    template = "{Hi|Hello|Hey} {name}!"
    assert template_errors(template) == []
    got = [render(template, {}, name="Ann", default_name="x", choose=_always(k)) for k in range(3)]
    assert got == ["Hi Ann!", "Hello Ann!", "Hey Ann!"]


def test_nested_choices_and_placeholders_inside_them() -> None:
    template = "{Hi|Hello {name}|Hey {city}}, {a|b {c|d}}"
    assert template_errors(template) == []
    assert placeholders(template) == ["name", "city"]
    picks = {0: 1, 1: 1, 2: 1}  # choice number -> option: the outer ones, then the inner
    values = {"city": "Rome"}

    def choose(group: Variants) -> int:
        return picks[group.index]

    text = render(template, values, name="Ann", default_name="x", choose=choose)
    assert text == "Hello Ann, b d"
    # Choices are numbered in reading order of their `{`, nested ones too.
    (outer, _comma, second) = parse(template).parts
    assert isinstance(outer, Variants) and isinstance(second, Variants)
    assert (outer.index, second.index) == (0, 1)
    inner = second.options[1][1]
    assert isinstance(inner, Variants) and inner.index == 2


def test_escapes_inside_a_choice_stay_literal() -> None:
    template = r"{a\|b|c\}|\{d\}} {name}"
    assert template_errors(template) == []
    got = [render(template, {}, name="Bo", default_name="x", choose=_always(k)) for k in range(3)]
    assert got == ["a|b Bo", "c} Bo", "{d} Bo"]


def test_an_empty_option_is_allowed_sometimes_nothing() -> None:
    template = "{very |}good"
    assert template_errors(template) == []
    assert render(template, {}, name=None, default_name="x", choose=_always(1)) == "good"


def test_only_the_chosen_options_placeholders_need_values() -> None:
    template = "{Hi|Hi {city}}"
    assert render(template, {}, name=None, default_name="x", choose=_always(0)) == "Hi"
    with pytest.raises(RenderError, match=r"\{city\}"):
        render(template, {}, name=None, default_name="x", choose=_always(1))


def test_errors_of_a_multiline_text_with_choices_name_line_and_column() -> None:
    template = "Hello {name},\n{great|fine} offer | today\n{a|b"
    found = [str(e) for e in template_errors(template)]
    assert found[0].startswith("line 2, column 20: a | outside braces")
    assert found[1].startswith("line 3, column 1: {a has no closing }")
    assert len(found) == 2
