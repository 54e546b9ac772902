"""supportdesk.core.text's character rules, checked against Unicode itself."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from supportdesk.core.text import invalid_characters

INVALID, CONTROL = "Remove the invalid characters.", "Remove the control characters."


def expected(ch: str, multiline: bool) -> str | None:
    """The rule as written for people: NUL and lone surrogates cannot be stored; control
    characters (category Cc) are refused, except line breaks and tabs in several lines."""
    if ch == "\x00" or unicodedata.category(ch) == "Cs":
        return INVALID
    if unicodedata.category(ch) == "Cc" and not (multiline and ch in "\n\r\t"):
        return CONTROL
    return None


@pytest.mark.parametrize("multiline", [False, True])
def test_every_code_point_is_judged_as_unicode_says(multiline):
    wrong = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if invalid_characters(f"a{chr(code)}b", multiline=multiline)
        != expected(chr(code), multiline)
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "multiline", "why"),
    [
        ("fine\nlines\r\n\tand tabs", True, None),
        ("one line\n", False, CONTROL),
        ("bell\x07 then nul\x00", True, CONTROL),  # the first bad character decides
        ("nul\x00 then bell\x07", True, INVALID),
        ("x" * 100_000 + "\ud800", True, INVALID),
        ("", False, None),
    ],
)
def test_the_first_bad_character_names_the_problem(text, multiline, why):
    assert invalid_characters(text, multiline=multiline) == why
