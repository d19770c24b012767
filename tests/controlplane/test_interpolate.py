"""Template compilation and rendering, including missing variables and value rendering."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.resolve.interpolate import compile_template, to_text


def render(content: str, context: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    return compile_template(content).render(context)


def test_fills_placeholders_with_and_without_spaces() -> None:
    assert render("Hi {{name}}, you owe {{ amount }}.", {"name": "Ada", "amount": 42}) == (
        "Hi Ada, you owe 42.",
        (),
    )


def test_placeholders_at_the_edges_and_adjacent() -> None:
    assert render("{{a}}{{b}}", {"a": "x", "b": "y"}) == ("xy", ())
    assert render("{{a}}", {"a": ""}) == ("", ())


def test_text_without_placeholders_is_returned_as_is() -> None:
    content = "No variables { here } {{ 1bad }} {{}}"
    text, missing = render(content, {"bad": 1})
    assert text is content
    assert missing == ()


def test_missing_variables_are_left_verbatim_and_reported_once_in_order() -> None:
    text, missing = render("{{ b }} {{a}} {{b}} {{c}}", {"c": "C"})
    assert text == "{{ b }} {{a}} {{b}} C"
    assert missing == ("b", "a")


def test_null_counts_as_missing() -> None:
    assert render("[{{x}}]", {"x": None}) == ("[{{x}}]", ("x",))


def test_dotted_paths_read_nested_objects() -> None:
    context = {"user": {"name": "Ada", "address": {"city": "Berlin"}}}
    assert render("{{user.name}} in {{ user.address.city }}", context) == ("Ada in Berlin", ())
    assert render("{{user.age}}", context) == ("{{user.age}}", ("user.age",))
    assert render("{{user.name.first}}", context) == ("{{user.name.first}}", ("user.name.first",))


def test_a_literal_dotted_key_wins_over_the_path() -> None:
    context = {"user.name": "literal", "user": {"name": "nested"}}
    assert render("{{user.name}}", context) == ("literal", ())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (42, "42"),
        (42.5, "42.5"),
        (-0.25, "-0.25"),
        (1e20, "1e+20"),
        (2**70, str(2**70)),
        ("", ""),
        ('naïve "quotes"', 'naïve "quotes"'),
        (["a", 1, True, None], '["a",1,true,null]'),
        ({"a": {"b": False}}, '{"a":{"b":false}}'),
    ],
)
def test_values_render_as_json_text(value: Any, text: str) -> None:
    assert to_text(value) == text
    assert render("{{v}}", {"v": value}) == (text, ())


def test_values_are_not_interpolated_again() -> None:
    assert render("{{a}}", {"a": "{{b}}", "b": "no"}) == ("{{b}}", ())


def test_template_variables_in_first_seen_order() -> None:
    assert compile_template("{{b}} {{a}} {{ b }} {{c.d}}").variables == ("b", "a", "c.d")


def test_rendering_reuses_the_compiled_template() -> None:
    template = compile_template("Hello {{name}}")
    assert template.render({"name": "A"}) == ("Hello A", ())
    assert template.render({"name": "B"}) == ("Hello B", ())
    assert template.render({}) == ("Hello {{name}}", ("name",))
