"""Jinja2 rendering for the pages. Autoescape is always on: every user text is escaped."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from guildkit.dashboard.access import known_session

TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
STATIC_DIR: Final = Path(__file__).resolve().parent / "static"

environment: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def show_value(value: Any, names: Mapping[str, str] | None = None) -> str:
    """A settings value for people: ids as channel/role names where known, the rest as JSON.

    Returns plain text, so autoescaping still applies (unlike the `tojson` filter's output).
    """
    lookup = names or {}
    if isinstance(value, str) and value in lookup:
        return lookup[value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v in lookup for v in value):
        return ", ".join(lookup[v] for v in value)
    return json.dumps(value, ensure_ascii=False)


environment.filters["show"] = show_value


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render_text(name: str, context: Mapping[str, Any]) -> str:
    return environment.get_template(name).render(**context)


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    dashboard = request.app.state.dashboard
    base = {
        "request": request,
        "session": known_session(request),
        "htmx": dashboard.options.htmx_path is not None and dashboard.options.htmx_path.is_file(),
    }
    return HTMLResponse(
        render_text(name, base | dict(context)),
        status_code=status_code,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
