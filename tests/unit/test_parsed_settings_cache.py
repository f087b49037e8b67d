"""The store's cache of parsed documents shares what guilds share and stays bounded: every edit
makes a new document text, so an unbounded (or count-only) cache grows with the edit stream."""

from __future__ import annotations

import json

from guildkit.settings.model import DEFAULT_SETTINGS
from guildkit.settings.store import ParsedSettingsCache


def document(n: int, *, response_chars: int = 10) -> str:
    doc = DEFAULT_SETTINGS.to_json()
    doc["custom_commands"] = [{"name": "probe", "response": f"{n}".ljust(response_chars, "x")}]
    return json.dumps(doc)


def test_a_shared_document_is_parsed_once() -> None:
    cache = ParsedSettingsCache()
    text = json.dumps(DEFAULT_SETTINGS.to_json())
    assert cache(text) is cache(text)
    assert cache(text) == DEFAULT_SETTINGS and len(cache) == 1


def test_a_stream_of_edits_stays_within_the_entry_bound() -> None:
    cache = ParsedSettingsCache(max_entries=64, max_chars=10**9)
    shared = json.dumps(DEFAULT_SETTINGS.to_json())
    for n in range(5000):
        cache(document(n))
        if n % 10 == 0:
            cache(shared)  # still used: stays
        assert len(cache) <= 64
    assert len(cache) == 64
    assert cache(shared) is cache(shared)
    assert cache.chars == sum(len(document(n)) for n in range(4937, 5000)) + len(shared)


def test_large_documents_are_bounded_by_their_text_too() -> None:
    cache = ParsedSettingsCache(max_entries=1000, max_chars=50_000)
    for n in range(200):
        parsed = cache(document(n, response_chars=1900))
        assert parsed.custom_commands[0].response.startswith(str(n))
        assert cache.chars <= 50_000
    assert len(cache) == 50_000 // len(document(0, response_chars=1900))
    # A document larger than the whole budget is parsed but not kept.
    huge = ParsedSettingsCache(max_entries=10, max_chars=100)
    huge(document(1))
    assert len(huge) == 0 and huge.chars == 0
    huge.cache_clear()
    cache.cache_clear()
    assert len(cache) == 0 and cache.chars == 0
