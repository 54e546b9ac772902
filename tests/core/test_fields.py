"""Declaring request fields (core/fields.py): a declaration its check cannot run fails when
it is made, not at the first request that reaches it."""

from __future__ import annotations

import pytest

from supportdesk.core.fields import CHOICE, LINE, QUERY_INTEGER, TEXT, Field


@pytest.mark.parametrize(
    ("kind", "missing"),
    [
        (LINE, "max_length"),
        (TEXT, "max_length"),
        (CHOICE, "choices"),
        (QUERY_INTEGER, "minimum, maximum"),
    ],
)
def test_a_field_without_the_fact_its_check_reads_is_refused(kind, missing):
    with pytest.raises(TypeError, match=f"The field note needs {missing}."):
        Field("note", kind, "Write a note.")
