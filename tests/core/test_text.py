"""supportdesk.core.text's character rules, checked against Unicode itself, and its two
forms of an email address."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supportdesk.core.text import EMAIL_ADDRESS, EMAIL_SHAPE, invalid_characters

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


@given(st.from_regex(EMAIL_ADDRESS, fullmatch=True))
def test_every_address_we_accept_has_the_shape_the_database_holds(address):
    assert EMAIL_SHAPE.match(address)


@pytest.mark.parametrize(
    ("text", "shape", "address"),
    [
        ("ana@example.com", True, True),
        ("ana.b+tag@mail.example.co", True, True),
        ("cléo@example.org", True, False),  # not ASCII: the database could hold it; we refuse it
        ("ana@example.c", True, False),  # a search for it is still an address search
        ("ana@localhost", False, False),
        ("a b@example.com", False, False),
        ("a@b@example.com", False, False),
        ("ana@example.com ", False, False),
    ],
)
def test_the_two_forms_of_an_address(text, shape, address):
    assert bool(EMAIL_SHAPE.match(text)) is shape
    assert bool(EMAIL_ADDRESS.match(text)) is address
