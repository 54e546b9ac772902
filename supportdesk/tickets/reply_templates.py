"""Saved replies' placeholders (DESIGN.md section 12): a small, safe template language.

A saved reply's body is a Jinja template that staff write and other staff render into the
reply box, so it is held to two gates:

1. **What it may say, checked when it is saved and again before each render.** Only
   `{{ ... }}` outputs and `{% if %}`/`{% elif %}`/`{% else %}`, over the placeholders of
   `PLACEHOLDERS` (`{{ customer.first_name }}`), string and number literals, comparisons,
   `and`/`or`/`not`, `~` (joining text), the `... if ... else ...` expression, the tests
   `defined`, `none`, `eq`, `ne`, and the filters of `FILTERS` (none of which can make the
   text much longer than what it is given). No loop, no call, no `set`, no macro, no
   include, no attribute but a placeholder's, no other name. The cost of a render is
   therefore linear in the body's length: there is nothing to repeat (`range(10**9)` is a
   call, refused; `'x' * 10**9` is an operator, refused). A body outside this language is a
   422 naming the line. An unknown placeholder (a typo) is such a 422 too: a reply that
   would silently lose a word is worse than a message at save time.
2. **How it runs: Jinja's `ImmutableSandboxedEnvironment`** (`ReplySandbox`, which also
   refuses `*`, `**`, `%`, `/` and `//`), with no globals at all (no `range`, `cycler`,
   `lipsum`, `namespace`), autoescape off (the text goes into a plain
   text reply box, and is escaped where the page shows it), `StrictUndefined` (a missing
   value is an error, never a silent blank), over plain dicts of strings built for this
   render (never a database row or a model object). A body that got past gate 1 and
   misbehaves anyway is a 422, never a 500 nor an object's internals.

The rendered text is at most MAX_BODY characters (what a message may hold); longer is a 422.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from supportdesk.core.errors import ValidationFailed
from supportdesk.core.vocabulary import MAX_BODY

log = logging.getLogger(__name__)

# Every placeholder: {{ <group>.<name> }}, with what it holds (README "Saved replies").
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "customer": {
        "name": "the requester's name",
        "first_name": "the first word of the requester's name",
        "email": "the requester's email address",
    },
    "ticket": {
        "pid": "the ticket number, as 202612-00042",
        "subject": "the ticket's subject",
        "status": "its status (OPEN, IN_PROGRESS, WAITING, RESOLVED, CLOSED)",
        "priority": "its priority (LOW, NORMAL, HIGH, URGENT)",
    },
    "agent": {
        "name": "the name of the staff member inserting the reply",
        "first_name": "the first word of that name",
        "email": "that staff member's email address",
    },
}
# Filters that never make text much longer than their input (no replace, wordwrap, center,
# indent, format: each can multiply it).
FILTERS = frozenset(
    {"default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate", "length"}
)
TESTS = frozenset({"defined", "undefined", "none", "eq", "ne", "equalto", "string"})
# The nodes of the language (gate 1); each name and attribute is checked besides.
_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.Name, nodes.Getattr,
    nodes.Const, nodes.Filter, nodes.Test, nodes.Compare, nodes.Operand, nodes.And,
    nodes.Or, nodes.Not, nodes.CondExpr, nodes.Concat,
)  # fmt: skip


def _empty_for_none(value: Any) -> Any:
    return "" if value is None else value


class ReplySandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox that also refuses the operators that multiply text or
    numbers (`'x' * 10**9`, `'%s' % ...`): gate 1 never lets them by; this holds if it did."""

    intercepted_binops = frozenset({"*", "**", "%", "//", "/"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        raise SecurityError(f"the operator {operator} is not available")


def _environment() -> ImmutableSandboxedEnvironment:
    env = ReplySandbox(
        autoescape=False,
        undefined=StrictUndefined,
        finalize=_empty_for_none,
        keep_trailing_newline=True,
    )
    env.globals.clear()  # no range, cycler, joiner, lipsum, dict, namespace
    env.filters = {name: f for name, f in env.filters.items() if name in FILTERS}
    env.tests = {name: t for name, t in env.tests.items() if name in TESTS}
    return env


ENVIRONMENT = _environment()


def _refusal(line: int | None, text: str) -> ValidationFailed:
    where = f"Line {line}: " if line else ""
    return ValidationFailed({"body": f"{where}{text}"}, "The saved reply's template has an error.")


def _check_node(node: nodes.Node) -> None:
    """Raise the 422 for a node outside the language (gate 1)."""
    line = getattr(node, "lineno", None)
    if not isinstance(node, _ALLOWED_NODES):
        what = {
            nodes.For: "loops are not available",
            nodes.Call: "calls are not available",
            nodes.Assign: "{% set %} is not available",
            nodes.Getitem: "use a placeholder such as {{ customer.name }}, not [...]",
        }.get(type(node), f"{type(node).__name__.lower()} is not available")
        raise _refusal(line, f"{what}; see the placeholders in the README.")
    if isinstance(node, nodes.Name) and node.name not in PLACEHOLDERS:
        raise _refusal(line, f"unknown placeholder {node.name!r}; {_known()}.")
    if isinstance(node, nodes.Getattr):
        group = node.node.name if isinstance(node.node, nodes.Name) else None
        if group is None or node.attr not in PLACEHOLDERS.get(group, {}):
            shown = f"{group}.{node.attr}" if group else node.attr
            raise _refusal(line, f"unknown placeholder {shown!r}; {_known()}.")
    if isinstance(node, nodes.Const) and not isinstance(node.value, str | int | float | None):
        raise _refusal(line, "only text and numbers may be written as values.")
    if isinstance(node, nodes.Filter) and node.name not in FILTERS:
        raise _refusal(line, f"the filter {node.name!r} is not available.")
    if isinstance(node, nodes.Test) and node.name not in TESTS:
        raise _refusal(line, f"the test {node.name!r} is not available.")
    if isinstance(node, nodes.Filter | nodes.Test) and (node.dyn_args or node.dyn_kwargs):
        raise _refusal(line, "* and ** arguments are not available.")


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _known() -> str:
    names = [f"{group}.{name}" for group, fields in PLACEHOLDERS.items() for name in fields]
    return "the placeholders are " + ", ".join(names)


def check_template(body: str) -> None:
    """Raise ValidationFailed (field `body`, naming the line) unless the body is a template
    of the saved replies' language."""
    try:
        tree = ENVIRONMENT.parse(body)
    except TemplateSyntaxError as error:
        raise _refusal(error.lineno, error.message or "this does not read as a template.") from None
    for node in _walk(tree):
        _check_node(node)


def render_template(body: str, context: Mapping[str, Mapping[str, str]]) -> str:
    """The body with its placeholders filled from `context` (plain strings only), at most
    MAX_BODY characters; a ValidationFailed for anything else. Both gates."""
    check_template(body)
    return sandboxed_render(body, context)


def sandboxed_render(body: str, context: Mapping[str, Mapping[str, str]]) -> str:
    """Gate 2 alone: the body run in the sandbox over plain strings, bounded; whatever goes
    wrong there is a ValidationFailed, never an exception of Jinja's or Python's."""
    plain = {group: {k: str(v) for k, v in values.items()} for group, values in context.items()}
    try:
        return _bounded(ENVIRONMENT.from_string(body).generate(plain))
    except ValidationFailed:
        raise
    except TemplateError as error:  # SecurityError, UndefinedError: gate 2 held
        raise _refusal(None, f"this reply cannot be filled in ({error.message}).") from None
    except Exception:  # what gate 1 refuses (no loader to include from, ...)
        log.warning("a saved reply's template failed past the check", exc_info=True)
        raise _refusal(None, "this reply cannot be filled in.") from None


def _bounded(chunks: Iterator[str]) -> str:
    """The chunks joined, stopping as soon as they pass MAX_BODY characters."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_BODY:
            raise ValidationFailed(
                {"body": f"Filled in, this reply would be longer than {MAX_BODY:,} characters."}
            )
        parts.append(chunk)
    return "".join(parts)


def first_name(name: str) -> str:
    words = name.split()
    return words[0] if words else ""
