"""The App on pull requests that change a root's history: an applied migration edited or deleted, the lock file's
provider changed, and a clean pull request, end to end through the fake GitHub (real Redis, real workers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.github import PullRequestState
from tests.fakegithub.harness import AppUnderTest, checked_app, wait_for
from tests.fakegithub.state import PullRequest, Repository
from tests.test_app import (
    INITIAL,
    MIGRATIONS,
    SAFE,
    completed_run,
    new_repo,
    open_pull,
    pull_request_payload,
    queue_is_idle,
)
from tests.test_commands import WRITER, say, wait_reply

INIT_PATH = f"{MIGRATIONS}/20240101000000_init/migration.sql"
LOCK_PATH = f"{MIGRATIONS}/migration_lock.toml"


@pytest.fixture(scope="module")
def zdm(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppUnderTest]:
    with checked_app(tmp_path_factory.mktemp("history"), redis_server, workers=2) as under_test:
        yield under_test


def reviewed(
    zdm: AppUnderTest, name: str, files: dict[str, str], before: dict[str, str] | None = None
) -> tuple[Repository, PullRequest]:
    """A pull request changing `files` (\"\" deletes one) on a base holding the init migration and `before`."""
    repo, base = new_repo(zdm, name)
    if before:
        base = zdm.github.commit(repo, before, parent=base)
    pull = open_pull(zdm, repo, base, files)
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    completed_run(zdm, repo, pull.head_sha)
    return repo, pull


def summary_of(zdm: AppUnderTest, repo: Repository, pull: PullRequest) -> str:
    (summary,) = [
        c.body for c in zdm.github.comments_on(repo, pull.number) if "<!-- zdm:summary -->" in c.body
    ]
    return summary


def test_an_edited_applied_migration_fails_the_check_until_approved(zdm: AppUnderTest) -> None:
    edited = INITIAL + '\n-- CreateIndex\nCREATE INDEX "User_email_idx" ON "User"("email");\n'
    repo, pull = reviewed(zdm, "history-edit", {INIT_PATH: edited})
    repo.permissions.update({WRITER: "write"})
    (run,) = zdm.github.check_runs_for(repo, pull.head_sha)
    assert run.conclusion == "failure"
    assert run.output["title"] == "1 problem(s) with the migration history"
    [hazard] = [a for a in run.annotations if a["title"] == "zdm migration-edited"]
    assert (hazard["path"], hazard["start_line"], hazard["annotation_level"]) == (
        INIT_PATH,
        len(INITIAL.splitlines()) + 1,
        "failure",
    )
    assert "Fix: Revert the edit" in hazard["message"]
    assert "#### The migration history" in run.output["summary"]
    assert "**Fix:** Revert the edit" in run.output["summary"]
    assert any(action["identifier"] == "approve" for action in run.actions)
    summary = summary_of(zdm, repo, pull)
    verdict = summary.splitlines()[1]
    assert verdict.startswith("### zdm: 1 problem(s) with the migration history (`migration-edited`)")
    # The history section comes right after the verdict, before what is said of the statements.
    assert summary.index("#### The migration history") < summary.index("safe statement(s)")

    say(zdm, repo, pull, WRITER, "/zdm approve staging only; production never ran it")
    reply = wait_reply(zdm, repo, pull)
    assert "Approved by @release-captain" in reply and "migration-edited" in reply
    wait_for(
        lambda: zdm.github.check_runs_for(repo, pull.head_sha)[0].conclusion == "success",
        what="the approved check run",
    )


def test_a_pull_request_that_only_deletes_a_migration_is_reviewed_and_fails(zdm: AppUnderTest) -> None:
    audit = f"{MIGRATIONS}/20240201000000_audit/migration.sql"
    repo, pull = reviewed(zdm, "history-delete", {audit: ""}, before={audit: SAFE})
    (run,) = zdm.github.check_runs_for(repo, pull.head_sha)
    assert run.conclusion == "failure"
    assert run.output["title"] == "1 problem(s) with the migration history"
    # The file is gone at head: no annotation on it, the summaries say it.
    assert run.annotations == []
    assert f"`{audit}`" in run.output["summary"] and "deletes it" in run.output["summary"]
    assert "deletes it" in summary_of(zdm, repo, pull)


def test_a_lock_provider_change_fails_the_check_on_the_lock_file(zdm: AppUnderTest) -> None:
    repo, pull = reviewed(zdm, "history-lock", {LOCK_PATH: 'provider = "cockroachdb"\n'})
    (run,) = zdm.github.check_runs_for(repo, pull.head_sha)
    assert run.conclusion == "failure"
    [hazard] = run.annotations
    assert (hazard["path"], hazard["title"]) == (LOCK_PATH, "zdm migration-lock-changed")
    assert "`postgresql` to `cockroachdb`" in summary_of(zdm, repo, pull)


def test_a_clean_pull_request_gets_no_history_finding(zdm: AppUnderTest) -> None:
    repo, pull = reviewed(zdm, "history-clean", {f"{MIGRATIONS}/20240201000000_audit/migration.sql": SAFE})
    (run,) = zdm.github.check_runs_for(repo, pull.head_sha)
    assert run.conclusion == "success"
    assert "migration history" not in run.output["summary"]
    assert "migration history" not in summary_of(zdm, repo, pull)


def test_the_roots_a_pull_request_touches_include_deletions_lock_files_and_schema_files() -> None:
    def touched(files: dict[str, str], known: tuple[str, ...] = (MIGRATIONS,)) -> list[str]:
        state = PullRequestState("PR_1", 1, "octo", "head", "base", files, [], set(), None)
        return state.history_roots(known)

    assert touched({INIT_PATH: "DELETED"}) == [MIGRATIONS]
    assert touched({"db/migrations/migration_lock.toml": "MODIFIED"}) == ["db/migrations"]
    assert touched({"prisma/schema.prisma": "MODIFIED"}) == [MIGRATIONS]
    assert touched({"prisma/schema/models.prisma": "ADDED"}) == [MIGRATIONS]
    assert (
        touched({"other/schema.prisma": "MODIFIED", "README.md": "MODIFIED", "package.json": "MODIFIED"})
        == []
    )


def test_schema_files_are_found_in_the_listing_of_the_roots_parent() -> None:
    from bot.github import _schema_files

    def blob(oid: str) -> dict[str, object]:
        return {"oid": oid, "byteSize": 10}

    listing = {
        "entries": [
            {"name": "schema.prisma", "type": "blob", "object": blob("a")},
            {"name": "seed.ts", "type": "blob", "object": blob("b")},
            {
                "name": "schema",
                "type": "tree",
                "object": {"entries": [{"name": "user.prisma", "object": blob("c")}]},
            },
            {
                "name": "migrations",
                "type": "tree",
                "object": {"entries": [{"name": "odd.prisma", "object": blob("d")}]},
            },
            {
                "name": "node_modules",
                "type": "tree",
                "object": {"entries": [{"name": "x.prisma", "object": blob("e")}]},
            },
        ]
    }
    found = _schema_files(MIGRATIONS, listing)
    assert {path: b.oid for path, b in found.items()} == {
        "prisma/schema.prisma": "a",
        "prisma/schema/user.prisma": "c",
    }


def test_a_pull_request_changing_only_the_schema_is_reviewed_with_its_schema_files_read(
    zdm: AppUnderTest,
) -> None:
    schema = 'datasource db {\n  provider = "postgresql"\n  url = env("DATABASE_URL")\n}\n'
    repo, base = new_repo(zdm, "history-schema")
    base = zdm.github.commit(repo, {"prisma/schema.prisma": schema}, parent=base)
    pull = open_pull(
        zdm,
        repo,
        base,
        {
            "prisma/schema.prisma": schema + "model A {\n  id Int @id\n}\n",
            "prisma/schema/b.prisma": "model B {\n  id Int @id\n}\n",
        },
    )
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    before = sum(1 for call in zdm.github.calls if call.kind == "graphql")
    zdm.deliver("pull_request", pull_request_payload(repo, pull))
    run = completed_run(zdm, repo, pull.head_sha)
    assert "could not finish" not in run.output["title"]
    wait_for(lambda: queue_is_idle(zdm), what="the queue to drain")
    # The review's query reads `prisma/schema.prisma` by path; `prisma/schema/b.prisma`, found in the listing of
    # `prisma/`, has its text read in one more query.
    assert sum(1 for call in zdm.github.calls if call.kind == "graphql") - before == 2
