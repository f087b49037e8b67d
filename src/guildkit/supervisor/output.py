"""Children's output, one line at a time, tagged with the child's name.

Text mode prefixes `name | `; JSON mode adds `"process": name` to each JSON line (wrapping any
line that is not JSON), so the combined stream stays one JSON object per line.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

_COLOURS = ("36", "35", "33", "32", "34", "31")


class OutputSink:
    def __init__(self, *, json_mode: bool, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        self._width = 9
        self._colour: dict[str, str] = {}
        try:
            self._tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self._tty = False

    def register(self, name: str) -> None:
        self._width = max(self._width, len(name))
        self._colour.setdefault(name, _COLOURS[len(self._colour) % len(_COLOURS)])

    def line(self, name: str, text: str) -> None:
        text = text.rstrip("\r\n")
        if self.json_mode:
            out = _tag_json(name, text)
        else:
            prefix = f"{name:<{self._width}} |"
            if self._tty:
                prefix = f"\x1b[{self._colour.get(name, '0')}m{prefix}\x1b[0m"
            out = f"{prefix} {text}"
        try:
            self.stream.write(out + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            # Our reader went away (`guildkit run | head`): keep draining the children's
            # pipes regardless, or a child would block on a full pipe and stop working.
            pass


def _tag_json(name: str, text: str) -> str:
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        parsed.setdefault("process", name)
        return json.dumps(parsed, ensure_ascii=False)
    return json.dumps({"process": name, "level": "info", "event": text}, ensure_ascii=False)
