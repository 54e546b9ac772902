"""Each field of a request declared once: the check that runs and the JSON Schema that the
OpenAPI document publishes are both read from the same `Field`, so they cannot drift.

A `Body` (a JSON object, or a page form put in the same shape) and a `Query` (a list's
parameters) are tuples of fields. `parse` runs each field's `Kind` over its value with the
rules of `core.text`, and raises one ValidationFailed naming every field at fault;
`json_schema` and `parameters` give what the document publishes. A kind holds its check and
the schema of what that check accepts side by side; the limits, choices and bounds a check
reads are the field's, and so are the schema's. The declarations live with their domain
(`tickets.inputs`, `accounts`, `mail.outbound.deliveries`); `web` only publishes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from supportdesk.core.errors import ValidationFailed
from supportdesk.core.text import (
    WHOLE_NUMBER,
    Problems,
    clean_choice,
    clean_email,
    clean_line,
    clean_text,
)
from supportdesk.core.vocabulary import MAX_EMAIL

# (the field, its value, the problems so far, the values of the fields declared before it)
Check = Callable[["Field", Any, Problems, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Kind:
    """What a field holds: the JSON Schema of it and the check that enforces that schema."""

    schema: Mapping[str, Any]
    check: Check
    needs: tuple[str, ...] = ()  # the facts of a field its check reads (a limit, choices)


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    message: str = ""  # said when the value is missing or not of its kind
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    nullable: bool = False  # null is accepted and means "none"
    default: Any = None  # an optional field's value when it is absent or blank
    minimum: int | None = None
    maximum: int | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        """A declaration without a fact its check reads fails at import, not at a request."""
        missing = [fact for fact in self.kind.needs if getattr(self, fact) in (None, ())]
        if missing:
            raise TypeError(f"The field {self.name} needs {', '.join(missing)}.")

    def read(self, data: Mapping[str, Any], problems: Problems, values: Mapping[str, Any]) -> Any:
        """This field's value in `data`, checked; a problem goes into `problems`."""
        value = data.get(self.name)
        if self.default is not None and not value:
            return self.default
        if self.name not in data and not self.required:
            return None
        if value is None and self.nullable:
            if self.name not in data:
                problems[self.name] = self.message
            return None
        return self.kind.check(self, value, problems, values)

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the values this field accepts (without its description)."""
        schema = dict(self.kind.schema)
        facts = {
            "maxLength": self.max_length,
            "enum": list(self.choices) or None,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": self.default,
        }
        schema.update({key: value for key, value in facts.items() if value is not None})
        if self.nullable:
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
        return schema


@dataclass(frozen=True)
class Body:
    """A request body's fields; `name` is its schema's name in the OpenAPI document."""

    name: str
    fields: tuple[Field, ...]
    closed: bool = True  # a field not declared is refused (additionalProperties: false)
    at_least_one: str | None = None  # said (of the first field) when no field is given

    def parse(self, data: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
        """Every field's value (None or its default when absent), or one ValidationFailed
        naming each field at fault. `strict=False` lets a page form's other fields by."""
        problems: Problems = {}
        if strict and self.closed:
            for name in sorted(set(data) - {field.name for field in self.fields}):
                problems[name] = "Unknown field."
        if self.at_least_one and not data:
            problems[self.fields[0].name] = self.at_least_one
        values: dict[str, Any] = {}
        for field in self.fields:
            values[field.name] = field.read(data, problems, values)
        if problems:
            raise ValidationFailed(problems)
        return values

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object"}
        required = [field.name for field in self.fields if field.required]
        if required:
            schema["required"] = required
        if self.closed:
            schema["additionalProperties"] = False
        if self.at_least_one:
            schema["minProperties"] = 1
        schema["properties"] = {field.name: _described(field) for field in self.fields}
        return schema


def _described(field: Field) -> dict[str, Any]:
    schema = field.schema()
    if field.description:
        schema["description"] = field.description
    return schema


@dataclass(frozen=True)
class Query:
    """A list's query parameters: each given at most once, a blank one as if absent."""

    fields: tuple[Field, ...]
    # A rule across fields (how deep a page may be), run after each field's own.
    across: Callable[[Mapping[str, Any], Problems], None] | None = None
    message: str = "Some filters are not valid."

    def parse(self, params: Mapping[str, Any]) -> dict[str, Any]:
        problems: Problems = {}
        values: dict[str, Any] = {}
        for field in self.fields:
            raw = params.get(field.name)
            if isinstance(raw, list):
                problems[field.name] = "Give this parameter once."
                raw = None
            raw = raw.strip() if isinstance(raw, str) else None
            values[field.name] = field.kind.check(field, raw, problems, values) if raw else None
            if values[field.name] is None:
                values[field.name] = field.default
        if self.across is not None:
            self.across(values, problems)
        if problems:
            raise ValidationFailed(problems, self.message)
        return values

    def parameters(self) -> list[dict[str, Any]]:
        """The OpenAPI parameter objects, in the order declared."""
        return [
            {
                "name": field.name,
                "in": "query",
                "required": False,
                "description": field.description,
                "schema": field.schema(),
            }
            for field in self.fields
        ]


# --- the kinds every domain uses -----------------------------------------------------------


def _line(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> str:
    return clean_line(value, field.name, field.max_length or 0, problems, field.message)


def _text(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> str:
    return clean_text(value, field.name, field.max_length or 0, problems, field.message)


def _email(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> str:
    if field.message:
        return clean_email(value, problems, field.name, field.message)
    return clean_email(value, problems, field.name)


def _emails(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A JSON list of mailboxes, each lower-cased, once each, in the order given."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems[field.name] = field.message or "Give a list of email addresses."
        return None
    found: dict[str, None] = {}
    for item in value:
        one: Problems = {}
        email = clean_email(item, one, field.name)
        if one:
            problems[field.name] = f"{item.strip()[:MAX_EMAIL]!r} is not a valid email address."
            return None
        found.setdefault(email, None)
    return tuple(found)


def _choice(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> str | None:
    return clean_choice(value, field.name, field.choices, problems) or None


def _integer(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A JSON integer (not a boolean) within the field's bounds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (field.minimum is not None and value < field.minimum)
        or (field.maximum is not None and value > field.maximum)
    ):
        problems[field.name] = field.message
        return None
    return value


def _flag(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    if not isinstance(value, bool):
        problems[field.name] = field.message
        return None
    return value


def _query_integer(field: Field, value: str, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A query parameter's digits, from the field's minimum to its maximum."""
    low, high = field.minimum or 0, field.maximum or 0
    if not WHOLE_NUMBER.match(value) or not low <= int(value) <= high:
        problems[field.name] = f"Use a whole number from {low} to {high}."
        return None
    return int(value)


# One line of text (a name, a subject): blank is refused, whitespace runs become one space.
LINE = Kind({"type": "string", "minLength": 1}, _line, needs=("max_length",))
# Text of several lines (a message), kept as written.
TEXT = Kind({"type": "string", "minLength": 1}, _text, needs=("max_length",))
# One mailbox, lower-cased.
EMAIL = Kind({"type": "string", "format": "email", "maxLength": MAX_EMAIL}, _email)
# A list of mailboxes (the people copied on a reply), lower-cased, without repeats.
EMAILS = Kind(
    {"type": "array", "items": {"type": "string", "format": "email", "maxLength": MAX_EMAIL}},
    _emails,
)
# One of the field's choices, case-insensitively.
CHOICE = Kind({"type": "string"}, _choice, needs=("choices",))
# An id or a count sent as a JSON number.
INTEGER = Kind({"type": "integer"}, _integer)
FLAG = Kind({"type": "boolean"}, _flag)
# A number in a query string (`?page=2`).
QUERY_INTEGER = Kind({"type": "integer"}, _query_integer, needs=("minimum", "maximum"))
