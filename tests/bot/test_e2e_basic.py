"""The real `guildkit bot` process: commands and live settings changes, without Redis."""

from __future__ import annotations

from guildkit.settings.process_status import ProcessRegistry
from tests.bot.harness import ChildFactory, Scene, bot_env, eventually, start_bot, wait_applied


async def test_ping_and_live_settings(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    bot = await start_bot(python_child, bot_env(scene.sandbox, bot_db))
    assert "pong" in (await scene.ask("!ping")).content

    # No GUILDKIT_SHARD_* set: the shards Discord recommended (/gateway/bot) are reported.
    async def recommended_shards_reported() -> bool | None:
        rows = await ProcessRegistry(scene.engine).live()
        return [(p.shard_ids, p.shard_count) for p in rows] == [((0,), 1)] or None

    await eventually(recommended_shards_reported, within=5.0, what="shards reported")

    # A new prefix.
    await wait_applied(scene.engine, await scene.patch({"prefix": "?"}))
    assert "pong" in (await scene.ask("?ping")).content
    old = await scene.say("!ping")
    await scene.no_reply_to(old, then="?ping")

    # `settings` shows where the values came from.
    summary = (await scene.ask("?settings")).content
    assert "Prefix `?`" in summary and "version 1" in summary

    # A disabled command is ignored silently.
    await wait_applied(scene.engine, await scene.patch({"disabled_commands": ["ping"]}))
    ignored = await scene.say("?ping")
    await scene.no_reply_to(ignored, then="?help")

    # A custom command.
    await wait_applied(
        scene.engine,
        await scene.patch({"custom_commands": [{"name": "rules", "response": "Be kind."}]}),
    )
    await scene.say("?rules")
    await scene.control.wait_for_message(scene.general, lambda m: m.content == "Be kind.")
    assert bot.alive()


async def test_welcome_and_auto_roles_on_join(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    await start_bot(python_child, bot_env(scene.sandbox, bot_db))
    result = await scene.patch(
        {
            "welcome": {
                "enabled": True,
                "channel_id": str(scene.welcome),
                "message": "Hi {user}, welcome to {server} (member #{member_count})",
            },
            "auto_roles": [str(scene.member_role)],
        }
    )
    await wait_applied(scene.engine, result)
    newcomer = await scene.control.member_join(scene.guild_id, "newcomer")
    welcome = await scene.control.wait_for_message(scene.welcome)
    assert (
        welcome.content == f"Hi <@{newcomer.id}>, welcome to Guildkit Demo (member #4)"
    )  # admin, member, the bot, newcomer
    await scene.control.wait_for_action(
        scene.guild_id, lambda a: a.kind == "role_added" and a.user_id == newcomer.id
    )
    assert scene.member_role in await scene.control.member_roles(scene.guild_id, newcomer.id)


async def test_anti_link_deletes_and_logs(
    scene: Scene, bot_db: str, python_child: ChildFactory
) -> None:
    await start_bot(python_child, bot_env(scene.sandbox, bot_db))
    result = await scene.patch(
        {"moderation": {"anti_link": True}, "log_channel_id": str(scene.mod_log)}
    )
    await wait_applied(scene.engine, result)
    posted = await scene.say("buy now at https://spam.example/deal")
    logged = await scene.control.wait_for_message(scene.mod_log)
    assert f"<@{scene.member}>" in logged.content and "link" in logged.content
    deleted = await scene.control.deleted_messages(scene.general)
    assert [m.id for m in deleted] == [posted.id]
    # A plain message is left alone and commands still work.
    assert "pong" in (await scene.ask("!ping")).content
