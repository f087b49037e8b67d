"""Rendering the welcome message's placeholders (DESIGN §4)."""

from __future__ import annotations


def render_welcome(template: str, *, user_mention: str, server: str, member_count: int) -> str:
    """Replace `{user}`, `{server}` and `{member_count}` and nothing else.

    Plain replacement, not `str.format`: the template is written by guild admins, and format
    would interpret any other braces (or attribute lookups such as `{user.__class__}`).
    """
    values = {"{user}": user_mention, "{server}": server, "{member_count}": str(member_count)}
    out: list[str] = []
    i = 0
    while i < len(template):
        for key, value in values.items():
            if template.startswith(key, i):
                out.append(value)
                i += len(key)
                break
        else:
            out.append(template[i])
            i += 1
    # One pass, so a server named "{user}" is not expanded a second time.
    return "".join(out)[:2000]
