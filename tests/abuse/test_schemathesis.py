"""schemathesis against the dashboard's own OpenAPI spec, logged in (cookie + CSRF header).

In-process: the app, the sandbox and the database engine live on one event loop owned by the
test, and hypothesis drives it case by case, so asyncpg's connections never cross loops.
Checks: no 5xx, every status code declared, content types and bodies as declared.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from guildkit.dashboard.context import DashboardOptions
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import run_sandbox
from tests.dashboard.conftest import BASE_URL, Built, build, client_for, login, reseeded

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 400


class World:
    """Everything one fuzzing run needs, set up on the runner's loop."""

    def __init__(self, database_url: str, *, as_member: bool = False) -> None:
        self.database_url = database_url
        # A member without rights: every guild route must refuse, whatever is sent.
        self.as_member = as_member
        self.stack = contextlib.AsyncExitStack()
        self.built: Built | None = None
        self.client: httpx.AsyncClient | None = None
        self.csrf = ""
        self.guild = 0
        self.seen: set[tuple[str, int]] = set()

    async def start(self) -> None:
        sandbox = reseeded(await self.stack.enter_async_context(run_sandbox()))
        control = await self.stack.enter_async_context(SandboxClient(sandbox.base_url))
        owner = await control.create_user("fuzzer")
        guild = await control.create_guild("Fuzzed", owner.id)
        await control.create_channel(guild.id, "general")
        self.guild = guild.id
        # Fuzzing is not flooding: the rate limit has its own tests.
        built = build(self.database_url, sandbox, options=DashboardOptions(write_burst=1_000_000))
        self.built = built
        self.stack.push_async_callback(built.close)
        self.client = await self.stack.enter_async_context(client_for(built.app))
        user = owner
        if self.as_member:
            user = await control.create_user("member")
            await control.add_member(guild.id, user.id)
        self.csrf = await login(self.client, user.id)

    async def call(self, kwargs: dict[str, Any]) -> httpx.Response:
        assert self.client is not None
        headers = {**kwargs.get("headers", {}), "X-CSRF-Token": self.csrf}
        url = str(kwargs["url"]).removeprefix(BASE_URL)
        body: dict[str, Any] = {}
        if "json" in kwargs:
            body["json"] = kwargs["json"]
        elif "data" in kwargs:
            data = kwargs["data"]
            body["content" if isinstance(data, bytes | str) else "data"] = data
        response = await self.client.request(
            kwargs["method"], url, params=kwargs.get("params"), headers=headers, **body
        )
        self.seen.add((str(kwargs["method"]).upper(), response.status_code))
        return response


@pytest.mark.parametrize("as_member", [False, True], ids=["owner", "member"])
def test_the_spec_holds_under_fuzzing(database_url: str, as_member: bool) -> None:
    with asyncio.Runner() as runner:
        world = World(database_url, as_member=as_member)
        runner.run(world.start())
        try:
            assert world.built is not None
            spec = world.built.app.openapi()
            schema = schemathesis.openapi.from_dict(spec)
            guild = {"guild_id": str(world.guild)}
            # Mostly the logged-in user's own guild (to get past authorization), some anything.
            results = list(schema.get_all_operations())
            # The spec must load whole: an operation schemathesis cannot read is a failure too.
            assert all(isinstance(r, Ok) for r in results), results
            operations = [r.ok() for r in results if isinstance(r, Ok)]
            with_guild = [
                op.as_strategy(path_parameters=guild)
                for op in operations
                if "{guild_id}" in op.path
            ]
            # The spec says only "an object" for the merge patch; these bodies are valid ones,
            # so successful writes (and their response schema) get fuzzed too.
            patches = st.fixed_dictionaries(
                {},
                optional={
                    "prefix": st.text(alphabet="!?$.#<>&'\"", min_size=1, max_size=5),
                    "welcome": st.fixed_dictionaries(
                        {}, optional={"enabled": st.booleans(), "message": st.text(max_size=80)}
                    ),
                    "moderation": st.fixed_dictionaries(
                        {}, optional={"anti_link": st.booleans() | st.none()}
                    ),
                },
            )
            patch_operation = schema["/api/guilds/{guild_id}/settings"]["PATCH"]
            valid_patches = patches.flatmap(
                lambda body: patch_operation.as_strategy(
                    path_parameters=guild, body=body, media_type="application/merge-patch+json"
                )
            )
            with_guild.append(valid_patches)
            # Logging out would end the fuzzing session; test_identities covers logout.
            others = [op for op in operations if op.path != "/auth/logout"]
            anything = [op.as_strategy() for op in others]
            negative = [
                op.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)
                for op in others
            ]
            strategy = st.one_of(*with_guild, *anything, *negative)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def fuzz(case: Any) -> None:
                kwargs = case.as_transport_kwargs(base_url=BASE_URL)
                response = runner.run(world.call(kwargs))
                case.validate_response(response, checks=CHECKS)
                if world.as_member and f"/guilds/{world.guild}/" in str(kwargs["url"]):
                    assert response.status_code >= 400, (kwargs, response.text[:200])

            fuzz()
            if world.as_member:
                assert {("GET", 403), ("PATCH", 403)} <= world.seen, world.seen
            else:
                # The fuzzing got past authorization, to successful reads and writes.
                assert {("GET", 200), ("PATCH", 200)} <= world.seen, world.seen
                assert any(m == "PATCH" and 400 <= s < 500 for m, s in world.seen), world.seen
        finally:
            runner.run(world.stack.aclose())


@pytest.mark.parametrize("path", ["/openapi.json"])
async def test_every_operation_declares_its_refusals(path: str, built: Built) -> None:
    async with client_for(built.app) as client:
        spec = (await client.get(path)).json()
    for template, methods in spec["paths"].items():
        for method, operation in methods.items():
            declared = set(operation["responses"])
            if template.startswith("/api/"):
                assert {"401"} <= declared, (method, template, declared)
            if "{guild_id}" in template:
                assert {"403", "404"} <= declared, (method, template, declared)
            if method in ("post", "patch", "put", "delete"):
                assert {"403", "413", "429"} <= declared, (method, template, declared)


# The pages are not in the spec; their forms get the same treatment with hand-made strategies.
FORM_FIELDS = {
    "general": ["prefix", "log_channel_id", "disabled_commands"],
    "welcome": ["welcome.enabled", "welcome.channel_id", "welcome.message", "auto_roles"],
    "moderation": [
        "moderation.anti_link",
        "moderation.spam_max_messages",
        "moderation.spam_window_seconds",
        "moderation.blocked_words",
        "moderation.exempt_role_ids",
    ],
    "commands": ["cmd_name", "cmd_response"],
    "leveling": ["leveling.enabled", "leveling.announce_channel_id"],
}
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            "{{7*7}}",
            "'; DROP TABLE guild_settings;--",
            "${7*7}",
            "on",
            "a\x00b",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def test_the_pages_forms_hold_under_fuzzing(database_url: str) -> None:
    with asyncio.Runner() as runner:
        world = World(database_url)
        runner.run(world.start())
        try:
            cases = st.sampled_from(sorted(FORM_FIELDS)).flatmap(
                lambda section: st.tuples(
                    st.just(section),
                    st.dictionaries(
                        st.sampled_from([*FORM_FIELDS[section], "version"]),
                        HOSTILE_TEXT,
                        max_size=6,
                    ),
                )
            )

            async def post(section: str, form: dict[str, str]) -> httpx.Response:
                assert world.client is not None
                path = f"/guilds/{world.guild}" + ("" if section == "general" else f"/{section}")
                return await world.client.post(path, data={**form, "csrf_token": world.csrf})

            @settings(
                max_examples=150,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=cases)
            def fuzz(case: tuple[str, dict[str, str]]) -> None:
                section, form = case
                response = runner.run(post(section, form))
                assert response.status_code in (200, 412, 422), (case, response.text[:300])
                assert "text/html" in response.headers["content-type"]
                for value in form.values():
                    if "<" in value:
                        assert value not in response.text, (case, "shown unescaped")

            fuzz()
        finally:
            runner.run(world.stack.aclose())
