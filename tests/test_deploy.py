"""`zdm deploy` on a real PostgreSQL: Prisma's bookkeeping, lock timeouts under a workload, the index process,
the emergency stop and the faults (kill, lost connection), and what the record says afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from bot.deploy.database_url import DatabaseUrlError, database_target, resolve_database_url
from bot.deploy.history import PRISMA_ADVISORY_LOCK, Progress
from bot.deploy.runner import Outcome, Timing
from bot.verify.server import Server, extra_bin_dirs, server_from_binaries
from tests.deploy_support import (
    INIT,
    OTHER,
    Workload,
    add_migration,
    deploy_while_other_is_held,
    new_database,
    rows,
    run_deploy,
    write_root,
)

INDEXES = """-- CreateIndex
CREATE INDEX "Item_n_idx" ON "Item"("n");

-- CreateIndex
CREATE INDEX "Item_label_idx" ON "Item"("label");
"""


def _fill(url: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            'INSERT INTO "Item" ("n", "label") SELECT g, md5(g::text) FROM generate_series(1, %s) g', (count,)
        )
        conn.execute('ANALYZE "Item"')


def _indexes(url: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = '\"Item\"'::regclass"
        ).fetchall()
    return {str(name): bool(valid) for name, valid in found}


# ------------------------------------------------------------------------------------------ bookkeeping
def test_records_each_migration_as_prisma_does_and_then_has_nothing_to_do(
    any_pg_server: Server, tmp_path: Path
) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT, "20240102000000_indexes": INDEXES})
    with new_database(any_pg_server) as url:
        result, _events = run_deploy(base, url)
        assert result.outcome is Outcome.APPLIED, result.message
        recorded = rows(url)
        assert [r[0] for r in recorded] == ["20240101000000_init", "20240102000000_indexes"]
        for (name, checksum, finished, rolled_back, logs, steps), sql in zip(
            recorded, sorted((base / "prisma/migrations").glob("*/migration.sql")), strict=True
        ):
            assert sql.parent.name == name
            assert checksum == hashlib.sha256(sql.read_bytes()).hexdigest()
            assert (finished, rolled_back, logs, steps) == (True, False, None, 1)
        assert _indexes(url) == {"Item_pkey": True, "Item_n_idx": True, "Item_label_idx": True}
        again, _ = run_deploy(base, url)
        assert again.outcome is Outcome.NOTHING_TO_DO
        assert len(rows(url)) == 2


def test_a_failed_migration_is_recorded_as_prisma_records_one_and_blocks_until_resolved(
    any_pg_server: Server, tmp_path: Path
) -> None:
    broken = 'ALTER TABLE "Item" ADD COLUMN "a" INTEGER;\nALTER TABLE "Missing" ADD COLUMN "b" INTEGER;\n'
    base = write_root(tmp_path, {"20240101000000_init": INIT, "20240102000000_broken": broken})
    with new_database(any_pg_server) as url:
        result, _ = run_deploy(base, url)
        assert result.outcome is Outcome.FAILED
        assert "42P01" in result.message and "none of its 2 statements is applied" in result.message
        name, _, finished, rolled_back, logs, steps = rows(url)[-1]
        assert (name, finished, rolled_back, steps) == ("20240102000000_broken", False, False, 0)
        assert logs is not None and 'relation "Missing" does not exist' in logs
        progress = Progress.read(logs)
        assert progress is not None and (progress.applied, progress.state) == (0, "failed")
        # Before Prisma 7.4 the file is one transaction: nothing of it stayed.
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE column_name = 'a'"
            ).fetchone() == (0,)
        # The file edited since it failed: zdm cannot know what the new text would have applied.
        add_migration(base, "20240102000000_broken", 'ALTER TABLE "Item" ADD COLUMN "a" INTEGER;\n')
        refused, _events = run_deploy(base, url)
        assert refused.outcome is Outcome.REFUSED
        assert "has changed since" in refused.message
        # Resolved as Prisma users do, it runs again.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL")
        fixed, _ = run_deploy(base, url)
        assert fixed.outcome is Outcome.APPLIED, fixed.message
        assert [r[2:4] for r in rows(url)] == [(True, False), (False, True), (True, False)]


def test_a_failure_of_someone_else_blocks_the_deploy_as_p3009(any_pg_server: Server, tmp_path: Path) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(any_pg_server) as url:
        run_deploy(base, url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES ('x', 'y', '20231231_other', 'boom')"
            )
        add_migration(base, "20240102000000_more", 'ALTER TABLE "Item" ADD COLUMN "b" TEXT;\n')
        result, _events = run_deploy(base, url)
        assert result.outcome is Outcome.REFUSED
        assert "20231231_other failed and is not resolved (Prisma's P3009)" in result.message


# ------------------------------------------------------------------------------------------ never queue traffic
def test_waits_for_a_long_transaction_under_lock_timeout_without_queueing_the_workload(
    any_pg_server: Server, tmp_path: Path
) -> None:
    """A long transaction holds a lock the ALTER conflicts with. Run plainly, the ALTER would wait in the
    queue and every query on the table behind it; under zdm deploy nothing waits longer than the lock timeout
    (plus 100 ms), and the migration completes once the long transaction ends."""
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    lock_timeout = 0.2
    with new_database(any_pg_server) as url:
        run_deploy(base, url)
        _fill(url, 10_000)
        add_migration(base, "20240102000000_column", 'ALTER TABLE "Item" ADD COLUMN "note" TEXT;\n')
        holder = psycopg.connect(url)
        holder.execute('SELECT count(*) FROM "Item"')  # ACCESS SHARE until the transaction ends
        release = threading.Timer(2.0, holder.rollback)
        with Workload(url, "Item", rows=10_000) as workload:
            release.start()
            result, events = run_deploy(
                base,
                url,
                timing=Timing(lock_timeout=lock_timeout, deadline=30, first_wait=0.1, longest_wait=0.4),
            )
        release.join()
        holder.close()
        assert result.outcome is Outcome.APPLIED, result.message
        retries = [e for e in events if e.kind == "retry"]
        assert retries, "the long transaction should have made the ALTER retry"
        assert any(b["pid"] for e in retries for b in e.data["blockers"]), "the blocker is named"
        assert not workload.errors
        assert workload.longest < lock_timeout + 0.1, f"a workload query waited {workload.longest:.3f} s"


def test_index_build_on_a_million_rows_blocks_no_writer(any_pg_server: Server, tmp_path: Path) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(any_pg_server) as url:
        run_deploy(base, url)
        _fill(url, 1_000_000)
        add_migration(base, "20240102000000_indexes", INDEXES)
        with Workload(url, "Item", rows=1_000_000) as workload:
            result, events = run_deploy(base, url)
        assert result.outcome is Outcome.APPLIED, result.message
        assert result.plans[0].rewritten
        assert all("CONCURRENTLY" in s.sql for s in result.plans[0].statements)
        assert any(e.kind == "index_progress" for e in events)
        assert not workload.errors
        # A plain CREATE INDEX would hold every writer for the whole build (about a second here).
        assert workload.longest < 0.3, f"a writer waited {workload.longest:.3f} s"
        assert _indexes(url) == {"Item_pkey": True, "Item_n_idx": True, "Item_label_idx": True}


def test_waits_for_prisma_advisory_lock_and_names_its_holder(any_pg_server: Server, tmp_path: Path) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(any_pg_server) as url, psycopg.connect(url, autocommit=True) as other:
        other.execute("SET application_name = 'prisma-migrate'")
        other.execute("SELECT pg_advisory_lock(%s)", (PRISMA_ADVISORY_LOCK,))
        threading.Timer(1.0, lambda: other.execute("SELECT pg_advisory_unlock_all()")).start()
        result, events = run_deploy(base, url)
        assert result.outcome is Outcome.APPLIED
        waiting = [e for e in events if e.kind == "advisory_lock"]
        assert waiting and "prisma-migrate" in waiting[0].message


# ------------------------------------------------------------------------------------------ stop and faults
def _deploy_process(base: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "deploy",
            str(base),
            "--database-url",
            url,
            "--format",
            "json",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )


@contextmanager
def _index_builds_pending(server: Server, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A table of a million rows, and a migration building two indexes on it not yet applied."""
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(server) as url:
        run_deploy(base, url)
        _fill(url, 1_000_000)
        add_migration(base, "20240102000000_indexes", INDEXES)
        yield base, url


def _wait_for_build(url: str, timeout: float = 60) -> int:
    """The pid of the backend building an index, once it is building."""
    until = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < until:
            row = conn.execute("SELECT pid FROM pg_stat_progress_create_index").fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.02)
    raise AssertionError("no index build started")


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGTERM", "SIGINT", "terminated backend"])
def test_a_build_interrupted_leaves_a_true_record_and_the_next_deploy_finishes(
    any_pg_server: Server, tmp_path: Path, fault: str
) -> None:
    with _index_builds_pending(any_pg_server, tmp_path) as (base, url):
        process = _deploy_process(base, url)
        try:
            backend = _wait_for_build(url)
            if fault == "terminated backend":
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("SELECT pg_terminate_backend(%s)", (backend,))
            else:
                process.send_signal(getattr(signal, fault))
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
        if fault == "SIGKILL":
            # The server notices the client is gone (client_connection_check_interval) and stops the build.
            until = time.monotonic() + 10
            while time.monotonic() < until and _wait_for_build_gone(url):
                time.sleep(0.1)
        else:
            events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            done = events[-1]
            assert process.returncode == 1, err
            assert done["event"] == "done" and done["outcome"] in ("stopped", "failed")
            assert "zdm deploy" in done["next_step"]
        name, _, finished, rolled_back, logs, steps = rows(url)[-1]
        assert (name, finished, rolled_back, steps) == ("20240102000000_indexes", False, False, 0)
        progress = Progress.read(logs)
        assert progress is not None and progress.applied == 0
        if fault != "SIGKILL":
            # zdm cleaned up what it started: no INVALID index stays behind.
            assert all(_indexes(url).values())
        result, events = run_deploy(base, url)
        assert result.outcome is Outcome.APPLIED, result.message
        assert _indexes(url) == {"Item_pkey": True, "Item_n_idx": True, "Item_label_idx": True}
        assert [r[2:] for r in rows(url)][-1] == (True, False, None, 1)


def _wait_for_build_gone(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_progress_create_index").fetchone() != (0,)


def test_stop_half_way_in_prisma_74_continues_from_the_next_statement(
    any_pg_server: Server, tmp_path: Path
) -> None:
    """From Prisma 7.4 each statement commits on its own: the record says which are applied, and the next
    run starts after them."""
    migration = (
        'ALTER TABLE "Item" ADD COLUMN "a" INTEGER;\n'
        'ALTER TABLE "Other" ADD COLUMN "b" INTEGER;\n'
        'ALTER TABLE "Item" ADD COLUMN "c" INTEGER;\n'
    )
    base = write_root(tmp_path, {"20240101000000_init": INIT, "20240101000001_other": OTHER}, prisma="7.4.0")
    with new_database(any_pg_server) as url:
        run_deploy(base, url)
        add_migration(base, "20240102000000_columns", migration)
        result = deploy_while_other_is_held(base, url, deadline=1.0)
        assert result.outcome is Outcome.FAILED
        assert (
            "gave up on line 2" in result.message
            and "its first 1 of 3 statements are applied" in result.message
        )
        progress = Progress.read(rows(url)[-1][4])
        assert progress is not None and progress.applied == 1
        result, events = run_deploy(base, url)
        assert result.outcome is Outcome.APPLIED, result.message
        assert [e.data["line"] for e in events if e.kind == "statement"] == [2, 3]
        with psycopg.connect(url) as conn:
            columns = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'Item' ORDER BY ordinal_position"
            ).fetchall()
        assert [c[0] for c in columns] == ["id", "n", "label", "a", "c"]


# ------------------------------------------------------------------------------------------ which database
def test_pooler_urls_are_refused_with_the_direct_url() -> None:
    with pytest.raises(DatabaseUrlError, match="pgbouncer=true"):
        database_target("postgresql://u:p@host:6432/db?pgbouncer=true", "DATABASE_URL")
    with pytest.raises(DatabaseUrlError, match=r"db\.abcd\.supabase\.co:5432"):
        database_target(
            "postgresql://postgres.abcd:secret@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
            "DATABASE_URL",
        )
    session_mode = database_target(
        "postgresql://postgres.abcd:secret@aws-0-eu-central-1.pooler.supabase.com:5432/postgres", "DIRECT_URL"
    )
    assert "secret" not in session_mode.shown


def test_prisma_options_become_libpq_ones() -> None:
    target = database_target("postgresql://u:p@h:5432/db?schema=app&connection_limit=1&sslmode=require", "x")
    assert "connection_limit" not in target.conninfo and "sslmode=require" in target.conninfo
    assert target.schema == "app" and "search_path%3Dapp" in target.conninfo


def test_the_direct_url_the_schema_names_wins_over_database_url(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    prisma = tmp_path / "prisma"
    prisma.mkdir()
    (prisma / "schema.prisma").write_text(
        'datasource db {\n  provider = "postgresql"\n  url = env("DATABASE_URL")\n  directUrl = env("DIRECT_URL")\n}\n'
    )
    env = {
        "DATABASE_URL": "postgresql://u@pooler:6543/db?pgbouncer=true",
        "DIRECT_URL": "postgresql://u@db:5432/db",
    }
    assert resolve_database_url(None, prisma, env).source == "DIRECT_URL"
    (prisma / "schema.prisma").write_text('datasource db {\n  provider = "postgresql"\n}\n')
    (tmp_path / "prisma.config.ts").write_text(
        'export default defineConfig({ datasource: { url: env("MIGRATE_URL") } })\n'
    )
    env["MIGRATE_URL"] = "postgresql://u@db:5432/other"
    assert resolve_database_url(None, prisma, env).source == "MIGRATE_URL"
    with pytest.raises(DatabaseUrlError, match="no database"):
        resolve_database_url(None, prisma, {})
    assert os.environ.get("ZDM_NEVER_SET") is None


@pytest.fixture(scope="module")
def restartable_server() -> Iterator[Server]:
    """A server this test may restart: started from a PostgreSQL installation (.ci/run installs Debian's)."""
    installations = extra_bin_dirs()
    if not installations:
        if os.environ.get("CI"):
            raise AssertionError("CI installs Debian's PostgreSQL: the restart test must run there")
        pytest.skip("no PostgreSQL installation to start a restartable server from")
    with server_from_binaries(installations[0]) as server:
        yield server


def test_the_database_restarted_mid_build_leaves_a_true_record_and_the_next_deploy_finishes(
    restartable_server: Server, tmp_path: Path
) -> None:
    server = restartable_server
    with _index_builds_pending(server, tmp_path) as (base, url):
        process = _deploy_process(base, url)
        try:
            _wait_for_build(url)
            server.restart()
            out, err = process.communicate(timeout=90)
        finally:
            process.kill()
        done = json.loads(out.splitlines()[-1])
        assert process.returncode == 1, err
        assert "lost the connection" in done["message"] and "zdm deploy" in done["next_step"]
        name, _, finished, rolled_back, logs, steps = rows(url)[-1]
        assert (name, finished, rolled_back, steps) == ("20240102000000_indexes", False, False, 0)
        assert "lost the connection" in logs
        progress = Progress.read(logs)
        assert progress is not None and progress.applied == 0
        # The build the crash interrupted left an INVALID index; zdm dropped it once the server was back.
        assert all(_indexes(url).values())
        result, _ = run_deploy(base, url)
        assert result.outcome is Outcome.APPLIED, result.message
        assert _indexes(url) == {"Item_pkey": True, "Item_n_idx": True, "Item_label_idx": True}


# ------------------------------------------------------------------------------------------ the command
def test_dry_run_changes_nothing_and_json_lines_and_the_job_summary_say_what_would_run(
    any_pg_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from bot.cli import app

    base = write_root(tmp_path / "project", {"20240101000000_init": INIT})
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    with new_database(any_pg_server) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        dry = CliRunner().invoke(app, ["deploy", str(base), "--dry-run", "--format", "json"])
        assert dry.exit_code == 0, dry.output
        events = [json.loads(line) for line in dry.output.splitlines()]
        assert {e["event"] for e in events} >= {"preflight", "plan", "rollback", "done"}
        assert 'DROP TABLE "Item"' in next(e for e in events if e["event"] == "rollback")["sql"]
        assert all("time" in e and "message" in e for e in events)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone() == (None,)
        applied = CliRunner().invoke(app, ["deploy", str(base)])
        assert applied.exit_code == 0, applied.output
        assert "Applied." in applied.output
        again = CliRunner().invoke(app, ["deploy", str(base), "--detailed-exitcode"])
        assert again.exit_code == 4 and "Nothing to do." in again.output
    text = summary.read_text()
    assert text.count("## zdm deploy:") == 3 and "## zdm deploy: applied" in text
    assert "| preflight | | answer |" in text


def test_preflight_refuses_a_long_blocking_statement_and_changes_nothing(
    any_pg_server: Server, tmp_path: Path
) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(any_pg_server) as url:
        run_deploy(base, url)
        _fill(url, 300_000)
        # A type change that rewrites the table: zdm fix's rewrite needs a deploy between its steps, so it
        # would run as written, under ACCESS EXCLUSIVE for as long as the rewrite takes.
        add_migration(
            base, "20240102000000_wider", 'ALTER TABLE "Item" ALTER COLUMN "n" SET DATA TYPE BIGINT;\n'
        )
        # The team's limit (the rewrite of 300,000 rows takes a few tenths of a second here).
        (base / ".github").mkdir()
        (base / ".github" / "zdm.yml").write_text("max_lock_seconds: 0.05\n")
        with psycopg.connect(url) as conn:
            conn.execute("BEGIN")
            conn.execute('SELECT 1 FROM "Item" LIMIT 1')
            result, events = run_deploy(base, url, as_written=True)
        assert result.outcome is Outcome.REFUSED
        checks = {e.data["check"]: e for e in events if e.kind == "preflight"}
        assert not checks["lock time"].data["go"]
        assert "line 1 blocks Item" in checks["lock time"].message
        # The open transaction on the table is named with what it holds.
        assert any(
            '"Item"' in t or t == "Item"
            for s in checks["long transactions"].data["sessions"]
            for t in s["tables"]
        )
        assert [r[0] for r in rows(url)] == ["20240101000000_init"]
        # Once the session is gone, the team may take the time under lock on purpose.
        allowed, _ = run_deploy(base, url, as_written=True, allow_blocking=True)
        assert allowed.outcome is Outcome.APPLIED, allowed.message


REWRITTEN = {
    "set not null": 'ALTER TABLE "Item" ALTER COLUMN "label" SET NOT NULL;\n',
    "foreign key": (
        'ALTER TABLE "Item" ADD COLUMN "otherId" INTEGER;\n\n'
        'ALTER TABLE "Item" ADD CONSTRAINT "Item_otherId_fkey" FOREIGN KEY ("otherId") REFERENCES "Other"("id")'
        " ON DELETE SET NULL ON UPDATE CASCADE;\n"
    ),
    # The drop waits for an application deploy in zdm fix's plan: the file runs as written, its index build
    # CONCURRENTLY where it stands.
    "index beside a drop": (
        'ALTER TABLE "Item" ADD COLUMN "note" TEXT;\n\nCREATE INDEX "Item_n_idx" ON "Item"("n");\n\n'
        'ALTER TABLE "Item" DROP COLUMN "label";\n'
    ),
    "unique index and check": (
        'CREATE UNIQUE INDEX "Item_label_key" ON "Item"("label");\n\n'
        'ALTER TABLE "Item" ADD CONSTRAINT "Item_n_check" CHECK ("n" >= 0);\n'
    ),
}


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
@pytest.mark.parametrize("change", sorted(REWRITTEN))
def test_a_rewritten_migration_ends_with_the_schema_the_file_writes(
    any_pg_server: Server, tmp_path: Path, change: str, prisma: str
) -> None:
    """zdm deploy runs zdm fix's plan instead of the file: the server ends with the same schema and the
    same record as when the file runs as written."""
    dumps = []
    for as_written in (True, False):
        base = write_root(
            tmp_path / str(as_written),
            {"20240101000000_init": INIT, "20240101000001_other": OTHER},
            prisma=prisma,
        )
        with new_database(any_pg_server) as url:
            run_deploy(base, url)
            _fill(url, 5_000)
            add_migration(base, "20240102000000_change", REWRITTEN[change])
            result, _ = run_deploy(base, url, as_written=as_written, allow_blocking=True)
            assert result.outcome is Outcome.APPLIED, result.message
            assert result.plans[0].rewritten is not as_written, result.plans[0].how
            assert as_written or not result.plans[0].residuals
            dumps.append((any_pg_server.pg_dump_schema(url), [r[1:] for r in rows(url)]))
    assert dumps[0] == dumps[1]


def test_gives_up_on_prisma_advisory_lock_after_its_limit_and_changes_nothing(
    pg_server: Server, tmp_path: Path
) -> None:
    base = write_root(tmp_path, {"20240101000000_init": INIT})
    with new_database(pg_server) as url, psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (PRISMA_ADVISORY_LOCK,))
        timing = Timing(lock_timeout=0.2, deadline=5, advisory_lock=0.5)
        result, _ = run_deploy(base, url, timing=timing)
        assert result.outcome is Outcome.FAILED
        assert "another `prisma migrate deploy` or `zdm deploy` is running" in result.message
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone() == (None,)


def test_a_stopped_migration_continues_only_as_it_was_planned(any_pg_server: Server, tmp_path: Path) -> None:
    """The progress counts the planned statements: run as written, the same file is other statements (the
    index built without CONCURRENTLY), so that run may not continue the stopped one."""
    migration = 'CREATE INDEX "Item_n_idx" ON "Item"("n");\nALTER TABLE "Other" ADD COLUMN "b" INTEGER;\n'
    base = write_root(tmp_path, {"20240101000000_init": INIT, "20240101000001_other": OTHER}, prisma="7.4.0")
    with new_database(any_pg_server) as url:
        run_deploy(base, url)
        _fill(url, 1_000)
        add_migration(base, "20240102000000_two", migration)
        result = deploy_while_other_is_held(base, url, deadline=0.5)
        assert result.outcome is Outcome.FAILED and "its first 1 of 2" in result.message
        refused, _ = run_deploy(base, url, as_written=True)
        assert refused.outcome is Outcome.REFUSED
        assert "planned otherwise than zdm plans it now" in refused.message
        continued, events = run_deploy(base, url)
        assert continued.outcome is Outcome.APPLIED, continued.message
        assert [e.data["line"] for e in events if e.kind == "statement"] == [2]
