"""History rules: an edited, renamed, deleted or reordered migration and a changed lock file, judged on the rules
alone and through `zdm check --base` on real git repositories (a base commit, then the change)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.analysis.config import RepoConfig, parse_config
from bot.analysis.history import Hazard, RootHistory, find_hazards, history_files
from bot.cli import app
from bot.rules import HISTORY_RULES
from bot.rules.migration_edited import checksum_matches
from bot.rules.migration_out_of_order import name_after
from tests.gitrepo import git

runner = CliRunner()
ROOT = "prisma/migrations"
LOCK = f"{ROOT}/migration_lock.toml"
INIT = "20240101000000_init"
LATER = "20240301000000_user_name"
INIT_SQL = 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT);\n'
LATER_SQL = 'ALTER TABLE "User" ADD COLUMN "name" TEXT;\n'
NEW_SQL = 'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");\n'


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    yield


def _history(
    base: dict[str, str],
    head: dict[str, str],
    base_lock: str | None = 'provider = "postgresql"\n',
    head_lock: str | None = 'provider = "postgresql"\n',
) -> RootHistory:
    return RootHistory(
        ROOT,
        base,
        head,
        {LOCK: base_lock} if base_lock is not None else {},
        {LOCK: head_lock} if head_lock is not None else {},
    )


def _rules(history: RootHistory, config: RepoConfig | None = None) -> list[str]:
    return [hazard.rule_id for hazard in find_hazards(history, config or RepoConfig())]


# -- the rules alone ---------------------------------------------------------------------------------------------


def test_every_history_rule_example_reports_what_its_page_says() -> None:
    for rule in HISTORY_RULES:
        for example in rule.examples:
            found = [h for h in find_hazards(example.history(), RepoConfig()) if h.rule_id == rule.id]
            assert len(found) == example.hazards, (rule.id, example.title)


def test_prisma_checksum_ignores_a_switch_of_line_endings_only() -> None:
    assert checksum_matches("a;\nb;\n", "a;\r\nb;\r\n")
    assert checksum_matches("a;\r\nb;\r\n", "a;\nb;\n")
    assert not checksum_matches("a;\nb;\n", "a;\nb;\n\n")
    assert not checksum_matches("a;\nb;\n", "a; \nb;\n")


def test_edit_of_an_applied_migration_points_at_its_first_changed_line() -> None:
    history = _history({INIT: INIT_SQL}, {INIT: INIT_SQL + NEW_SQL})
    [hazard] = find_hazards(history, RepoConfig())
    assert (hazard.rule_id, hazard.path, hazard.line) == (
        "migration-edited",
        f"{ROOT}/{INIT}/migration.sql",
        2,
    )
    assert "new migration" in hazard.fix
    assert "Only comments or whitespace" not in hazard.message


@pytest.mark.parametrize(
    "edited",
    [INIT_SQL.replace(" (", "  ("), "-- Users and their e-mail.\n" + INIT_SQL, INIT_SQL + "\n/* done */\n"],
)
def test_a_whitespace_or_comment_edit_still_changes_the_checksum_and_says_so(edited: str) -> None:
    [hazard] = find_hazards(_history({INIT: INIT_SQL}, {INIT: edited}), RepoConfig())
    assert hazard.rule_id == "migration-edited"
    assert "Only comments or whitespace changed" in hazard.message
    assert "SHA-256" in hazard.message


def test_a_rename_is_reported_once_on_the_new_folder_saying_where_it_came_from() -> None:
    renamed = "20240401000000_init"
    history = _history({INIT: INIT_SQL, LATER: LATER_SQL}, {renamed: INIT_SQL, LATER: LATER_SQL})
    [hazard] = find_hazards(history, RepoConfig())
    assert hazard.rule_id == "migration-edited"
    assert hazard.path == f"{ROOT}/{renamed}/migration.sql" and hazard.line == 1
    assert f"renamed from `{INIT}`" in hazard.message
    assert f"Rename the folder back to `{INIT}`" in hazard.fix


def test_a_deleted_migration_is_reported_on_its_base_path_with_no_line() -> None:
    [hazard] = find_hazards(_history({INIT: INIT_SQL, LATER: LATER_SQL}, {INIT: INIT_SQL}), RepoConfig())
    assert (hazard.rule_id, hazard.path, hazard.line) == (
        "migration-edited",
        f"{ROOT}/{LATER}/migration.sql",
        None,
    )
    assert "deletes it" in hazard.message


def test_out_of_order_names_the_folder_that_sorts_last() -> None:
    history = _history(
        {INIT: INIT_SQL, LATER: LATER_SQL},
        {
            INIT: INIT_SQL,
            LATER: LATER_SQL,
            "20240201000000_email_index": NEW_SQL,
            "20240202000000_b": NEW_SQL,
        },
    )
    hazards = find_hazards(history, RepoConfig())
    assert [h.rule_id for h in hazards] == ["migration-out-of-order"] * 2
    assert "`20240301000001_email_index`" in hazards[0].fix
    assert "`20240301000002_b`" in hazards[1].fix


def test_a_suggested_name_sorts_after_the_latest_whatever_its_naming() -> None:
    assert name_after("20241231235959_last", "20240101000000_x", set()) == "20250101000000_x"
    assert name_after("0007_last", "0003_x", set()) == "0008_x"
    assert name_after("init", "add_users", set()) == "init_add_users"
    assert name_after("20240301000000_a", "20240101000000_x", {"20240301000001_x"}) == "20240301000002_x"
    for latest, folder in [("20240301000000_a", "1_x"), ("zzz", "aaa"), ("9", "1_b")]:
        assert name_after(latest, folder, set()).encode() > latest.encode()


def test_a_new_migration_after_the_latest_and_an_untouched_root_have_no_hazard() -> None:
    assert _rules(_history({INIT: INIT_SQL}, {INIT: INIT_SQL, LATER: LATER_SQL})) == []
    assert _rules(_history({INIT: INIT_SQL}, {INIT: INIT_SQL})) == []
    assert _rules(_history({}, {INIT: INIT_SQL}, base_lock=None)) == []  # a new root


def test_lock_provider_change_and_deletion_are_hazards_on_the_lock_file() -> None:
    changed = find_hazards(
        _history({INIT: INIT_SQL}, {INIT: INIT_SQL}, head_lock='provider = "mysql"\n'), RepoConfig()
    )
    assert [(h.rule_id, h.path, h.line) for h in changed] == [("migration-lock-changed", LOCK, 1)]
    assert "`postgresql` to `mysql`" in changed[0].message and "P3019" in changed[0].message
    deleted = find_hazards(_history({INIT: INIT_SQL}, {INIT: INIT_SQL}, head_lock=None), RepoConfig())
    assert [(h.rule_id, h.line) for h in deleted] == [("migration-lock-changed", None)]
    reformatted = '# Please do not edit this file manually\nprovider = "postgresql"\n'
    assert _rules(_history({INIT: INIT_SQL}, {INIT: INIT_SQL}, head_lock=reformatted)) == []


def test_configured_severity_applies_and_off_drops_the_rule() -> None:
    history = _history({INIT: INIT_SQL}, {INIT: INIT_SQL + NEW_SQL})
    config = parse_config("rules:\n  migration-edited: warning\n")
    [hazard] = find_hazards(history, config)
    assert hazard.severity.value == "warning" and not hazard.fails_check
    assert find_hazards(history, parse_config('rules:\n  migration-edited: "off"\n')) == []


def test_an_approval_binds_to_the_content_the_hazard_judged() -> None:
    first = find_hazards(_history({INIT: INIT_SQL}, {INIT: INIT_SQL + NEW_SQL}), RepoConfig())[0]
    again = find_hazards(_history({INIT: INIT_SQL}, {INIT: INIT_SQL + NEW_SQL}), RepoConfig())[0]
    other = find_hazards(_history({INIT: INIT_SQL}, {INIT: INIT_SQL + LATER_SQL}), RepoConfig())[0]
    assert first.content_digest == again.content_digest != other.content_digest


def test_history_files_are_the_lock_the_schema_files_and_the_package_files() -> None:
    texts: dict[str, str | None] = {
        LOCK: "x",
        "prisma/schema.prisma": "x",
        "prisma/schema/models.prisma": "x",
        "prisma/node_modules/pkg/x.prisma": "x",
        f"{ROOT}/odd.prisma": "x",
        "package.json": "x",
        "prisma.config.ts": "x",
        "src/package.json": "x",
        "README.md": "x",
        "gone.prisma": None,
    }
    assert sorted(history_files(ROOT, texts)) == sorted(
        ["package.json", "prisma.config.ts", "prisma/schema.prisma", "prisma/schema/models.prisma", LOCK]
    )


# -- zdm check --base on real repositories ---------------------------------------------------------------------


def _write(repo: Path, files: dict[str, str | None]) -> None:
    for path, text in files.items():
        target = repo / path
        if text is None:
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode())


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`main`: the init migration and a later one; the working tree is on `feature`, where each test changes it.
    zdm runs from the repository's top, so text and JSON show repository paths."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "core.autocrlf", "false")
    _write(
        repo,
        {
            LOCK: 'provider = "postgresql"\n',
            f"{ROOT}/{INIT}/migration.sql": INIT_SQL,
            f"{ROOT}/{LATER}/migration.sql": LATER_SQL,
            "prisma/schema.prisma": 'datasource db {\n  provider = "postgresql"\n}\n',
        },
    )
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "base")
    git(repo, "switch", "--quiet", "-c", "feature")
    monkeypatch.chdir(repo)
    return repo


def _check(repo: Path, *options: str) -> tuple[int, str]:
    result = runner.invoke(app, ["check", "--base", "main", *options, str(repo)])
    return result.exit_code, result.stdout


def _history_of(repo: Path) -> tuple[int, list[dict[str, object]]]:
    code, out = _check(repo, "--format", "json")
    document = json.loads(out)
    assert document["fails_check"] == (code == 1)
    return code, document["history"]


@pytest.mark.parametrize(
    ("change", "rule", "path", "words"),
    [
        (
            {f"{ROOT}/{INIT}/migration.sql": INIT_SQL + NEW_SQL},
            "migration-edited",
            f"{ROOT}/{INIT}/migration.sql",
            "edits it",
        ),
        (
            {f"{ROOT}/{INIT}/migration.sql": INIT_SQL.replace("\n", "  \n")},
            "migration-edited",
            f"{ROOT}/{INIT}/migration.sql",
            "Only comments or whitespace changed",
        ),
        (
            {f"{ROOT}/{INIT}/migration.sql": "-- The users.\n" + INIT_SQL},
            "migration-edited",
            f"{ROOT}/{INIT}/migration.sql",
            "Only comments or whitespace changed",
        ),
        ({f"{ROOT}/{LATER}": None}, "migration-edited", f"{ROOT}/{LATER}/migration.sql", "deletes it"),
        (
            {f"{ROOT}/{LATER}": None, f"{ROOT}/20240401000000_user_name/migration.sql": LATER_SQL},
            "migration-edited",
            f"{ROOT}/20240401000000_user_name/migration.sql",
            f"renamed from `{LATER}`",
        ),
        (
            {f"{ROOT}/20240201000000_email_index/migration.sql": NEW_SQL},
            "migration-out-of-order",
            f"{ROOT}/20240201000000_email_index/migration.sql",
            "20240301000001_email_index",
        ),
        ({LOCK: 'provider = "sqlite"\n'}, "migration-lock-changed", LOCK, "`postgresql` to `sqlite`"),
    ],
    ids=["edit", "whitespace", "comment", "delete", "rename", "out-of-order", "lock-provider"],
)
def test_check_base_reports_each_history_hazard_and_fails(
    repo: Path, change: dict[str, str | None], rule: str, path: str, words: str
) -> None:
    _write(repo, change)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "change")
    code, history = _history_of(repo)
    assert code == 1
    assert [(h["rule"], h["path"]) for h in history] == [(rule, path)], history
    assert words in str(history[0]["message"]) + str(history[0]["fix"])
    code, text = _check(repo)
    assert code == 1
    assert text.startswith(f"{path}\n") and f"[{rule}]" in text
    assert "1 history finding(s)" in text and "1 need attention before merging" in text


def test_a_clean_change_a_new_migration_after_the_latest_gets_no_history_finding(repo: Path) -> None:
    _write(repo, {f"{ROOT}/20240401000000_email_index/migration.sql": NEW_SQL})  # not even committed
    code, history = _history_of(repo)
    assert (code, history) == (0, [])
    code, text = _check(repo)
    assert "history" not in text and code == 0


def test_a_deletion_left_uncommitted_in_the_working_tree_is_seen(repo: Path) -> None:
    _write(repo, {f"{ROOT}/{LATER}": None})
    code, history = _history_of(repo)
    assert code == 1 and [h["rule"] for h in history] == ["migration-edited"]


def test_line_endings_switched_by_git_are_not_an_edit(repo: Path) -> None:
    _write(repo, {f"{ROOT}/{INIT}/migration.sql": INIT_SQL.replace("\n", "\r\n")})
    assert _history_of(repo) == (0, [])


def test_history_hazards_reach_annotations_sarif_and_the_job_summary(repo: Path, tmp_path: Path) -> None:
    _write(repo, {f"{ROOT}/{INIT}/migration.sql": INIT_SQL + NEW_SQL, f"{ROOT}/{LATER}": None})
    code, annotations = _check(repo, "--format", "github")
    assert code == 1
    lines = annotations.splitlines()
    assert lines[0].startswith(
        f"::error file={ROOT}/{INIT}/migration.sql,line=2,title=zdm migration-edited::"
    )
    assert lines[1].startswith(f"::error file={ROOT}/{LATER}/migration.sql,title=zdm migration-edited::")
    sarif = json.loads(_check(repo, "--format", "sarif")[1])
    results = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "migration-edited"]
    assert [r["level"] for r in results] == ["error", "error"]
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {"startLine": 2}
    assert "migration-edited" in {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    summary = tmp_path / "summary.md"
    result = runner.invoke(
        app, ["check", "--base", "main", str(repo)], env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.exit_code == 1
    written = summary.read_text()
    assert written.startswith("### zdm: 2 problem(s) with the migration history (`migration-edited`)")
    assert "#### The migration history" in written and "**Fix:**" in written


def test_without_base_no_history_rule_runs(repo: Path) -> None:
    _write(repo, {f"{ROOT}/{INIT}/migration.sql": INIT_SQL + NEW_SQL})
    result = runner.invoke(app, ["check", "--format", "json", str(repo)])
    assert json.loads(result.stdout)["history"] == []


def test_a_change_to_the_schema_alone_reads_the_root_history(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        repo,
        {"prisma/schema.prisma": 'datasource db {\n  provider = "postgresql"\n}\nmodel A { id Int @id }\n'},
    )
    seen: list[RootHistory] = []
    import bot.analysis.history as history_module

    real = history_module.find_hazards

    def spy(history: RootHistory, config: RepoConfig, rules: object = None) -> list[Hazard]:
        seen.append(history)
        return real(history, config, [])

    monkeypatch.setattr(history_module, "find_hazards", spy)
    code, _ = _check(repo)
    assert code == 0
    [history] = seen
    assert set(history.base) == set(history.head) == {INIT, LATER}
    assert "model A" in history.head_files["prisma/schema.prisma"]
    assert "model A" not in history.base_files["prisma/schema.prisma"]
    assert history.base_files[LOCK] == history.head_files[LOCK]


# -- on a pull request ---------------------------------------------------------------------------------------------


def test_a_hazard_alone_fails_the_pull_request_and_an_approval_covers_exactly_its_content() -> None:
    from bot.report.pull_request import Approval, build_report

    deleted = find_hazards(_history({INIT: INIT_SQL, LATER: LATER_SQL}, {INIT: INIT_SQL}), RepoConfig())
    report = build_report([], None, hazards=deleted)
    assert report.conclusion == "failure"
    assert report.title == "1 problem(s) with the migration history"
    assert report.annotations == ()  # the file is gone at head: said in the summaries only
    assert "deletes it" in report.summary and "**Fix:** Restore" in report.summary_comment
    approval = Approval("dba", "never deployed", frozenset(f.digest for f in report.unapproved))
    assert build_report([], None, [approval], hazards=deleted).conclusion == "success"
    edited = find_hazards(_history({INIT: INIT_SQL}, {INIT: INIT_SQL + NEW_SQL}), RepoConfig())
    again = find_hazards(_history({INIT: INIT_SQL}, {INIT: INIT_SQL + LATER_SQL}), RepoConfig())
    first = build_report([], None, hazards=edited)
    assert (
        first.annotations[0].path == f"{ROOT}/{INIT}/migration.sql" and first.annotations[0].start_line == 2
    )
    approval = Approval("dba", "ok", frozenset(f.digest for f in first.unapproved))
    assert build_report([], None, [approval], hazards=edited).conclusion == "success"
    assert build_report([], None, [approval], hazards=again).conclusion == "failure"
