"""The refusals each route can answer with, declared so the OpenAPI spec is honest about them.

Bodies under /api are JSON `{"detail": ...}`; /auth answers failures with an HTML page.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Responses = dict[int | str, dict[str, Any]]


class ErrorOut(BaseModel):
    detail: Any


class ConflictOut(BaseModel):
    detail: str
    expected_version: int
    current_version: int


def _json(description: str, model: type[BaseModel] = ErrorOut) -> dict[str, Any]:
    return {"model": model, "description": description}


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


RATE_LIMITED = "too many writes from this session or address; see Retry-After"

SESSION: Responses = {
    401: _json("not logged in (no, a forged, an expired or a logged-out session)"),
}
# Reading a guild asks Discord for the user's rights (502 if it cannot) and reads PostgreSQL.
GUILD_READ: Responses = {
    **SESSION,
    403: _json("no rights on this server"),
    404: _json("not a server id, or not a server among the user's"),
    502: _json("Discord did not answer as expected"),
    503: _json("PostgreSQL is unreachable"),
}
GUILD_WRITE: Responses = {
    **GUILD_READ,
    403: _json("no rights on this server, or a missing/wrong X-CSRF-Token"),
    412: _json("If-Match names a version that is no longer current", ConflictOut),
    413: _json("request body too large"),
    429: _json(RATE_LIMITED),
    503: _json("PostgreSQL is unreachable; nothing was written"),
}
AUTH_PAGE: Responses = {
    400: _html("the login failed, expired or did not start here"),
    429: _html(RATE_LIMITED),
}
