"""The Jinja2 environment for pages and emails (templates/)."""

from __future__ import annotations

import jinja2

from supportdesk.config import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"


def make_templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(("html", "xml")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
