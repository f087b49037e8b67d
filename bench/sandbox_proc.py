"""The Discord stand-in as a separate process for the dashboard benchmark (empty, no demo)."""

from __future__ import annotations

import argparse

from guildkit.sandbox import DEFAULT_BOT_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, serve

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(
        "127.0.0.1",
        args.port,
        DEFAULT_BOT_TOKEN,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        False,
        on_started=lambda running, _demo: print(f"sandbox ready {running.api_base}", flush=True),
    )
