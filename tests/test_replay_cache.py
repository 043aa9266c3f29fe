"""The App's replay cache: a second review of a root replays nothing it had, and reports the same."""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from bot.analysis.config import RepoConfig
from bot.analysis.schema import Schema
from bot.analysis.snapshot import RootSnapshot, analyze_root_snapshot
from workers.replay_cache import REPLAY_PREFIX, RedisSchemaStore, replay_keys_of

MIGRATIONS = Path(__file__).parent.parent / "examples" / "shop" / "prisma" / "migrations"


def _snapshot(changed: str) -> RootSnapshot:
    texts = {p.parent.name: p.read_text() for p in sorted(MIGRATIONS.glob("*/migration.sql"))}
    earlier = {name: text for name, text in texts.items() if name != changed}
    return RootSnapshot("prisma/migrations", "postgresql", earlier=earlier, changed={changed: texts[changed]})


def test_the_second_review_replays_nothing_and_reports_the_same(
    redis_server: str, parsed_statements: list[str]
) -> None:
    connection = Redis.from_url(redis_server)
    connection.delete(*connection.keys(replay_keys_of("acme/shop")) or ["none"])
    store = RedisSchemaStore(connection, "acme/shop", b"k" * 32)
    snapshot = _snapshot("20240301000000_orders_v2")
    without = analyze_root_snapshot(snapshot, RepoConfig())
    cold = analyze_root_snapshot(snapshot, RepoConfig(), store)
    parsed_statements.clear()
    parses = parsed_statements
    warm = analyze_root_snapshot(snapshot, RepoConfig(), store)
    changed_statements = len(snapshot.changed["20240301000000_orders_v2"].split(";")) - 1
    assert len(parses) <= changed_statements, "only the changed file is read"
    assert warm == cold == without
    (key,) = connection.keys(replay_keys_of("acme/shop"))
    name = key.decode() if isinstance(key, bytes) else str(key)
    assert name.startswith(REPLAY_PREFIX + "acme/shop:") and 0 < connection.ttl(name) <= 24 * 3600


def test_entries_signed_with_another_key_or_corrupt_are_replayed_again(redis_server: str) -> None:
    connection = Redis.from_url(redis_server)
    mine = RedisSchemaStore(connection, "acme/other", b"a" * 32)
    theirs = RedisSchemaStore(connection, "acme/other", b"b" * 32)
    theirs.put("k1", Schema())
    assert mine.get("k1") is None
    connection.set(REPLAY_PREFIX + "acme/other:k2", b"\0" * 40)
    assert mine.get("k2") is None
    mine.put("k3", Schema())
    assert isinstance(mine.get("k3"), Schema)
