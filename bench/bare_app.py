"""The framework ceiling: a bare FastAPI app serving the same JSON document shape as the
dashboard's settings endpoints, from memory, with no auth, database or cache.

Run: uvicorn bench.bare_app:app
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from guildkit.settings.merge_patch import apply_merge_patch
from guildkit.settings.model import GuildSettings

app = FastAPI()
_docs: dict[str, dict[str, Any]] = {}


def _doc(guild_id: str) -> dict[str, Any]:
    doc = _docs.get(guild_id)
    if doc is None:
        doc = _docs[guild_id] = {
            "guild_id": guild_id,
            "version": 0,
            "settings": GuildSettings().to_json(),
            "updated_at": None,
            "updated_by": None,
        }
    return doc


@app.get("/api/guilds/{guild_id}/settings")
async def get_settings(guild_id: str) -> Response:
    doc = _doc(guild_id)
    return JSONResponse(doc, headers={"ETag": f'"{doc["version"]}"'})


@app.patch("/api/guilds/{guild_id}/settings")
async def patch_settings(guild_id: str, request: Request) -> Response:
    doc = _doc(guild_id)
    patch = await request.json()
    doc["settings"] = apply_merge_patch(doc["settings"], patch)
    doc["version"] += 1
    return JSONResponse(doc, headers={"ETag": f'"{doc["version"]}"'})
