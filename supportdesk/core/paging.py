"""A list's paging: the `page` and `per_page` parameters, declared once for every list, and
how deep a page may go."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supportdesk.core.fields import QUERY_INTEGER, Field
from supportdesk.core.text import Problems

MAX_PER_PAGE = 100
MAX_OFFSET = 100_000  # deeper pages cost an index walk this long: narrow the filters instead

PAGE = Field("page", QUERY_INTEGER, minimum=1, maximum=10**9, default=1, description="from 1")
PER_PAGE = Field(
    "per_page",
    QUERY_INTEGER,
    minimum=1,
    maximum=MAX_PER_PAGE,
    default=25,
    description=f"1-{MAX_PER_PAGE}",
)


def not_too_deep(values: Mapping[str, Any], problems: Problems) -> None:
    """A page past MAX_OFFSET rows is refused (a Query's rule across its fields)."""
    if "page" in problems or "per_page" in problems:
        return
    if (values["page"] - 1) * values["per_page"] > MAX_OFFSET:
        problems["page"] = "That page is too deep; narrow the filters or search instead."
