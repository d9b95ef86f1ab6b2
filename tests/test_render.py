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
        ("{Hi|Hello} {name}", ["line 1, column 1: {Hi|Hello} is variants"]),
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
    ['{"a": 1}', "{}", "{ }", "closed }", ":-} {:-)}", "a | b", "*bold* _it_ ~s~ ```m```"],
)
def test_plain_text_braces_are_no_error(template: str) -> None:
    assert template_errors(template) == []
    assert render(template, {}, name="Ann", default_name="x") == template


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
        ("{Hi|Hello}", "{Hi|Hello}"),
    ]:
        assert template_errors(template)
        assert render(template, {}, name="Ann", default_name="x") == sent
