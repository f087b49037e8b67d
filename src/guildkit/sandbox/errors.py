"""Discord's JSON error bodies, raised anywhere and rendered by the app's middleware."""

from __future__ import annotations


class DiscordError(Exception):
    """An error Discord would answer with `{"message": ..., "code": ...}`."""

    def __init__(self, status: int, message: str, code: int) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> dict[str, object]:
        return {"message": self.message, "code": self.code}


def unauthorized() -> DiscordError:
    return DiscordError(401, "401: Unauthorized", 0)


def not_found_route() -> DiscordError:
    return DiscordError(404, "404: Not Found", 0)


def method_not_allowed() -> DiscordError:
    return DiscordError(405, "405: Method Not Allowed", 0)


def unknown(kind: str) -> DiscordError:
    """`unknown("Guild")` → 404 `{"message": "Unknown Guild", "code": 10004}`."""
    codes = {
        "Channel": 10003,
        "Guild": 10004,
        "Member": 10007,
        "Message": 10008,
        "Role": 10011,
        "User": 10013,
    }
    return DiscordError(404, f"Unknown {kind}", codes[kind])


def missing_access() -> DiscordError:
    return DiscordError(403, "Missing Access", 50001)


def missing_permissions() -> DiscordError:
    return DiscordError(403, "Missing Permissions", 50013)


def empty_message() -> DiscordError:
    return DiscordError(400, "Cannot send an empty message", 50006)


def invalid_form_body(detail: str) -> DiscordError:
    return DiscordError(400, f"Invalid Form Body: {detail}", 50035)
