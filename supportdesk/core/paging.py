"""A list's query parameters: each given at most once, and the page within bounds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from supportdesk.core.text import WHOLE_NUMBER

MAX_PER_PAGE = 100
MAX_OFFSET = 100_000  # deeper pages cost an index walk this long: narrow the filters instead


def query_reader(
    params: Mapping[str, Any], problems: dict[str, str]
) -> Callable[[str], str | None]:
    """`one(name)`: a query parameter given at most once, stripped; None when absent."""

    def one(name: str) -> str | None:
        value = params.get(name)
        if isinstance(value, list):
            problems[name] = "Give this parameter once."
            return None
        return value.strip() if isinstance(value, str) and value.strip() else None

    return one


def parse_page(
    one: Callable[[str], str | None], problems: dict[str, str], max_per_page: int
) -> tuple[int, int]:
    """`page` (from 1) and `per_page` (1..max) of a list, read with `one(name)`."""

    def number(name: str, default: int, low: int, high: int) -> int:
        raw = one(name)
        if raw is None:
            return default
        if not WHOLE_NUMBER.match(raw) or not low <= int(raw) <= high:
            problems[name] = f"Use a whole number from {low} to {high}."
            return default
        return int(raw)

    per_page = number("per_page", 25, 1, max_per_page)
    page = number("page", 1, 1, 10**9)
    if "page" not in problems and "per_page" not in problems and (page - 1) * per_page > MAX_OFFSET:
        problems["page"] = "That page is too deep; narrow the filters or search instead."
    return page, per_page
