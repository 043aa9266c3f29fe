"""The `zdm` command line, on small repositories built in the test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import app
from bot.rules import ALL_RULES
from bot.rules.base import STANDARD_SETUP
from tests.gitrepo import git

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shop"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "rules"
CHANGE = "prisma/migrations/20240201000000_change/migration.sql"
runner = CliRunner()
# A committer for the repositories the tests build, whatever the machine's git configuration says.


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The suite may itself run in GitHub Actions: only the tests that set it write a job summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    yield


def _repo(
    tmp_path: Path,
    migration: str,
    provider: str = "postgresql",
    config: str | None = None,
    setup: str = STANDARD_SETUP,
) -> Path:
    """A repository: an init migration creating the live tables, then `migration`."""
    migrations = tmp_path / "prisma" / "migrations"
    (migrations / "20240101000000_init").mkdir(parents=True)
    (migrations / "20240101000000_init" / "migration.sql").write_text(setup)
    (migrations / "20240201000000_change").mkdir()
    (migrations / "20240201000000_change" / "migration.sql").write_text(migration)
    (migrations / "migration_lock.toml").write_text(f'provider = "{provider}"\n')
    (tmp_path / ".git").mkdir()
    if config is not None:
        (tmp_path / ".github").mkdir()
        (tmp_path / ".github" / "zdm.yml").write_text(config)
    return tmp_path


def test_blocking_index_fails_the_check_with_its_lines_in_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path, '-- CreateIndex\nCREATE INDEX "Tip_note_idx2"\n  ON "Tip"("note");\n')
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["check", "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    change = next(f for f in document["files"] if f["path"] == CHANGE)
    [statement] = change["statements"]
    assert statement["line_start"] == 2 and statement["line_end"] == 3
    assert statement["classification"] == "blocking"
    assert statement["locks"] == {"Tip": "SHARE"}
    assert statement["scan"] is True and statement["rewrite"] is False
    assert "create-index" in statement["rules"]
    migrations = [s["migration"] for s in statement["fix"]["steps"] if "migration" in s]
    assert any("CONCURRENTLY" in m["sql"] for m in migrations)


def test_concurrent_index_passes(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX CONCURRENTLY "Tip_note_idx2" ON "Tip"("note");\n')
    assert runner.invoke(app, ["check", str(repo)]).exit_code == 0


def test_suppression_with_a_reason_passes(tmp_path: Path) -> None:
    repo = _repo(tmp_path, '-- zdm:ignore create-index Tip has 40 rows\nCREATE INDEX "i" ON "Tip"("note");\n')
    result = runner.invoke(app, ["check", str(repo)])
    assert result.exit_code == 0
    assert "suppressed: Tip has 40 rows" in result.stdout


def test_non_postgresql_root_is_skipped_with_a_note(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n', provider="mysql")
    result = runner.invoke(app, ["check", str(repo)])
    assert result.exit_code == 0
    assert "not postgresql; skipped" in result.stdout


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "SELECT 1;\n", config="postgres_verison: 15\n")
    result = runner.invoke(app, ["check", str(repo)])
    assert result.exit_code == 2
    assert "postgres_verison: unknown key" in result.stderr


def test_missing_path_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr and "nope" in result.stderr


def test_sarif_output_is_structurally_valid(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n')
    result = runner.invoke(app, ["check", "--format", "sarif", str(repo)])
    assert result.exit_code == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "zdm"
    known = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    results = run["results"]
    assert {"create-index", "lock-timeout-missing"} <= {r["ruleId"] for r in results} <= known
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == CHANGE
    assert location["region"] == {"startLine": 1, "endLine": 1}


def test_github_format_annotates_lines_and_escapes_newlines(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n')
    result = runner.invoke(app, ["check", "--format", "github", str(repo)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"::error file={CHANGE},line=1,endLine=1,title=zdm create-index::")
    # Every annotation stays on one line: the "Instead:" part follows an escaped newline.
    assert all(line.startswith("::") for line in lines)
    assert "%0AInstead: CREATE INDEX CONCURRENTLY" in lines[0]


def test_no_path_checks_the_repository_around_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n')
    monkeypatch.chdir(repo / "prisma" / "migrations" / "20240201000000_change")
    result = runner.invoke(app, ["check", "--format", "json"])
    assert result.exit_code == 1
    # Shown from the current directory, as ruff and eslint show them.
    paths = [f["path"] for f in json.loads(result.stdout)["files"]]
    assert paths == ["../20240101000000_init/migration.sql", "migration.sql"]


def test_one_migration_file_is_judged_against_the_earlier_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n')
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["check", "--format", "json", CHANGE])
    assert result.exit_code == 1
    [file] = json.loads(result.stdout)["files"]
    assert file["path"] == CHANGE
    assert file["statements"][0]["classification"] == "blocking"


_VALIDATED_CHECK = (
    'ALTER TABLE "User" ADD CONSTRAINT "user_bio_nn" CHECK ("bio" IS NOT NULL) NOT VALID;\n'
    'ALTER TABLE "User" VALIDATE CONSTRAINT "user_bio_nn";\n'
)


def test_postgres_version_option_overrides_the_config(tmp_path: Path) -> None:
    # Since PostgreSQL 12 a validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan.
    repo = _repo(
        tmp_path,
        'ALTER TABLE "User" ALTER COLUMN "bio" SET NOT NULL;\n',
        config="postgres_version: 15\n",
        setup=STANDARD_SETUP + _VALIDATED_CHECK,
    )
    assert runner.invoke(app, ["check", str(repo)]).exit_code == 0
    result = runner.invoke(app, ["check", "--format", "json", "--postgres-version", "11", str(repo)])
    assert result.exit_code == 1
    change = next(f for f in json.loads(result.stdout)["files"] if f["path"].endswith(CHANGE))
    assert change["statements"][0]["classification"] == "blocking"


def test_postgres_version_out_of_range_exits_2(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "SELECT 1;\n")
    result = runner.invoke(app, ["check", "--postgres-version", "9", str(repo)])
    assert result.exit_code == 2
    assert "--postgres-version" in result.stderr


def test_config_error_is_reported_on_stderr_only(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "SELECT 1;\n", config="rules:\n  create-indx: off\n")
    result = runner.invoke(app, ["check", "--format", "json", str(repo)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert ".github/zdm.yml" in result.stderr and "create-indx" in result.stderr


def test_mysql_root_is_skipped_with_a_note_in_json(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n', provider="mysql")
    document = json.loads(runner.invoke(app, ["check", "--format", "json", str(repo)]).stdout)
    assert document["files"] == []
    assert any("'mysql', not postgresql; skipped" in note for note in document["notes"])


def test_check_loads_only_what_checking_needs(tmp_path: Path) -> None:
    # Start-up is most of what a pre-commit hook or a CI step waits for: no App stack, no configuration
    # validator without a zdm.yml, no process pool for a small repository.
    repo = _repo(tmp_path, 'CREATE INDEX CONCURRENTLY "i" ON "Tip"("note");\n')
    code = (
        "import os, sys\n"
        "from bot.cli import main\n"
        # `check` ends its process without the interpreter's teardown: raise instead, to look around after.
        "def no_teardown(code):\n    raise SystemExit(code)\n"
        "os._exit = no_teardown\n"
        f"sys.argv = ['zdm', 'check', '--format', 'json', {str(repo)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'githubkit', 'fastapi', 'starlette', 'uvicorn', 'httpx', 'psycopg', 'pydantic', 'yaml',\n"
        "         'rich', 'typer', 'multiprocessing', 'concurrent'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_rules_lists_every_rule_id_and_title() -> None:
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0
    for rule in ALL_RULES:
        assert any(
            line.startswith(rule.id + " ") and rule.title in line for line in result.stdout.splitlines()
        )


def test_fix_rewrites_the_example_and_the_result_no_longer_needs_the_fixable_steps(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    shutil.copytree(EXAMPLE, repo)
    (repo / ".git").mkdir()
    target = repo / "prisma" / "migrations" / "20240301000000_orders_v2"
    result = runner.invoke(app, ["fix", str(target)])
    assert result.exit_code == 0, result.stdout
    folders = sorted(p.name for p in (repo / "prisma" / "migrations").iterdir() if p.is_dir())
    assert folders[1] == "20240301000000_orders_v2"
    assert folders[2:] == [f"20240301000000_orders_v2_{n:02d}_zdm" for n in range(1, len(folders) - 1)]
    texts = [(repo / "prisma" / "migrations" / name / "migration.sql").read_text() for name in folders[1:]]
    # The index is built alone; "Order"."total" becomes an online column change, swapped in one DO block.
    assert any(t.strip().startswith("CREATE INDEX CONCURRENTLY") for t in texts)
    assert any('RENAME COLUMN "total_zdm_new" TO "total"' in t for t in texts)
    after = json.loads(runner.invoke(app, ["check", "--format", "json", str(repo)]).stdout)
    still = {
        finding["rule"]
        for f in after["files"]
        for s in f["statements"]
        for finding in s["findings"]
        if finding["classification"] in ("blocking", "unknown") and not finding["suppressed"]
    }
    # Nothing is left: the enum rebuild inside Prisma's own BEGIN ... COMMIT is an online change too, its
    # alone steps splitting that transaction.
    assert still == set()


def test_docs_are_up_to_date() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "rules"
    result = runner.invoke(app, ["docs", "--check", "--output", str(docs)])
    assert result.exit_code == 0, result.stderr


def test_docs_writes_the_committed_pages(tmp_path: Path) -> None:
    result = runner.invoke(app, ["docs", "--output", str(tmp_path / "rules")])
    assert result.exit_code == 0
    written = {p.name: p.read_text() for p in (tmp_path / "rules").iterdir()}
    committed = {p.name: p.read_text() for p in DOCS.iterdir()}
    assert written == committed


def test_docs_check_flags_pages_of_removed_rules_and_docs_removes_them(tmp_path: Path) -> None:
    output = tmp_path / "rules"
    shutil.copytree(DOCS, output)
    orphan = (DOCS / "create-index.md").read_text().replace("create-index", "old-rule")
    (output / "old-rule.md").write_text(orphan)
    (output / "notes.md").write_text("# Notes written by hand\n")
    result = runner.invoke(app, ["docs", "--check", "--output", str(output)])
    assert result.exit_code == 2 and "old-rule.md" in result.stderr
    assert runner.invoke(app, ["docs", "--output", str(output)]).exit_code == 0
    assert not (output / "old-rule.md").exists()
    assert (output / "notes.md").exists()
    assert runner.invoke(app, ["docs", "--check", "--output", str(output)]).exit_code == 0


# -- `--base`: what changed since the merge base -------------------------------------------------------------

_WIDER_NOTE = 'ALTER TABLE "Tip" ALTER COLUMN "note" TYPE VARCHAR(20);\n'


def _branched_repo(tmp_path: Path) -> Path:
    """`main` holds the init migration and a blocking one; branch `feature` adds a committed migration and
    one `prisma migrate dev` just wrote (untracked)."""
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n')
    shutil.rmtree(repo / ".git")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "init")
    git(repo, "switch", "--quiet", "-c", "feature")
    migrations = repo / "prisma" / "migrations"
    (migrations / "20240301000000_wider_note").mkdir()
    (migrations / "20240301000000_wider_note" / "migration.sql").write_text(_WIDER_NOTE)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "wider note")
    (migrations / "20240302000000_user_index").mkdir()
    (migrations / "20240302000000_user_index" / "migration.sql").write_text(
        'CREATE INDEX CONCURRENTLY "User_bio_idx" ON "User"("bio");\n'
    )
    return repo


def test_base_checks_only_the_migrations_changed_since_the_merge_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _branched_repo(tmp_path)
    monkeypatch.chdir(repo)
    assert runner.invoke(app, ["check"]).exit_code == 1  # main's blocking index, checked without --base
    result = runner.invoke(app, ["check", "--base", "main", "--format", "json"])
    assert result.exit_code == 0, result.stdout
    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    assert set(files) == {
        "prisma/migrations/20240301000000_wider_note/migration.sql",
        "prisma/migrations/20240302000000_user_index/migration.sql",
    }
    # Catalog-only, because the earlier migrations were replayed: alone, a type change on a column zdm never
    # saw is `unknown`.
    [widen] = files["prisma/migrations/20240301000000_wider_note/migration.sql"]["statements"]
    assert widen["classification"] == "brief"


def test_base_reports_a_blocking_change_and_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _branched_repo(tmp_path)
    (repo / "prisma/migrations/20240302000000_user_index/migration.sql").write_text(
        'CREATE INDEX "User_bio_idx" ON "User"("bio");\n'
    )
    monkeypatch.chdir(repo / "prisma")
    result = runner.invoke(app, ["check", "--base", "main"])
    assert result.exit_code == 1
    listed = [line for line in result.stdout.splitlines() if line.endswith("migration.sql")]
    assert listed == [
        "migrations/20240301000000_wider_note/migration.sql",
        "migrations/20240302000000_user_index/migration.sql",
    ]


def test_base_with_no_migration_changed_passes_and_says_so(tmp_path: Path) -> None:
    repo = _branched_repo(tmp_path)
    git(repo, "switch", "--quiet", "main")
    shutil.rmtree(repo / "prisma/migrations/20240302000000_user_index")
    (repo / "notes.txt").write_text("not a migration\n")
    result = runner.invoke(app, ["check", "--base", "main", str(repo)])
    assert result.exit_code == 0
    merge_base = git(repo, "rev-parse", "main").strip()
    assert f"no migration added or changed since {merge_base[:12]} (merge base with main)" in result.stdout


def test_base_that_git_cannot_find_exits_2(tmp_path: Path) -> None:
    repo = _branched_repo(tmp_path)
    result = runner.invoke(app, ["check", "--base", "no-such-branch", str(repo)])
    assert result.exit_code == 2
    assert "--base no-such-branch: no merge base" in result.stderr


# -- where paths are shown from ------------------------------------------------------------------------------


def test_text_shows_paths_from_the_current_directory_and_github_formats_from_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n')
    monkeypatch.chdir(repo / "prisma")
    text = runner.invoke(app, ["check"]).stdout
    assert text.startswith("migrations/20240201000000_change/migration.sql\n")
    annotations = runner.invoke(app, ["check", "--format", "github"]).stdout
    assert annotations.startswith(f"::error file={CHANGE},")
    sarif = json.loads(runner.invoke(app, ["check", "--format", "sarif"]).stdout)
    uris = {
        location["physicalLocation"]["artifactLocation"]["uri"]
        for result in sarif["runs"][0]["results"]
        for location in result["locations"]
    }
    assert uris == {CHANGE}
    monkeypatch.chdir(tmp_path.parent)
    elsewhere = runner.invoke(app, ["check", "--format", "json", str(repo)]).stdout
    assert {f["path"] for f in json.loads(elsewhere)["files"]} == {
        f"{tmp_path.name}/prisma/migrations/20240101000000_init/migration.sql",
        f"{tmp_path.name}/{CHANGE}",
    }


# -- the job summary GitHub Actions shows ---------------------------------------------------------------------


def test_github_step_summary_gets_the_apps_table_plan_and_checklist(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path / "repo", 'CREATE INDEX "i" ON "Tip"("note");\nALTER TABLE "Tip" DROP COLUMN "amount";\n'
    )
    summary = tmp_path / "step_summary.md"
    summary.write_text("An earlier step's summary.\n")
    result = runner.invoke(
        app, ["check", "--format", "github", str(repo)], env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.exit_code == 1
    written = summary.read_text()
    assert written.startswith("An earlier step's summary.\n### zdm: ")
    assert f"Run `zdm fix {CHANGE.rsplit('/', 1)[0]}` to write the safe plan" in written
    assert "-- zdm:ignore <rule-id> <reason>" in written
    assert "| Migration | Line | Statement | Class | Locks | Rules |" in written
    assert "| `20240201000000_change` | 1 | `CREATE INDEX" in written
    assert f"<details><summary>Safe plan for <code>{CHANGE}</code>" in written
    assert "CREATE INDEX CONCURRENTLY" in written
    assert "### Before deploying" in written and "- [ ] " in written
    # Nothing of the App's: no command to comment, no hidden marker.
    assert "/zdm approve" not in written and "<!--" not in written


def test_github_step_summary_when_nothing_changed(tmp_path: Path) -> None:
    repo = _branched_repo(tmp_path / "repo")
    git(repo, "switch", "--quiet", "main")
    shutil.rmtree(repo / "prisma/migrations/20240302000000_user_index")
    summary = tmp_path / "step_summary.md"
    result = runner.invoke(
        app, ["check", "--base", "main", str(repo)], env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.exit_code == 0
    assert summary.read_text().startswith(
        "### zdm: no Prisma migration for PostgreSQL to check\n- no migration"
    )


# -- output made in worker processes --------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["text", "json", "github", "sarif"])
def test_output_made_in_worker_processes_is_the_output_of_the_whole_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    # Each root's files are rendered in the worker that analysed them; the report must not tell.
    import bot.analysis.roots as roots
    from bot.analysis.config import RepoConfig
    from bot.report.github import render_github
    from bot.report.json_report import render_json
    from bot.report.sarif import render_sarif
    from bot.report.text import render_text

    for name in ("one", "two"):
        _repo(
            tmp_path / name, 'CREATE INDEX "i" ON "Tip"("note");\nALTER TABLE "Tip" DROP COLUMN "amount";\n'
        )
    monkeypatch.chdir(tmp_path)
    expected_files = roots.check_paths([Path(".")], RepoConfig(), Path("."), shown_from=tmp_path).files
    monkeypatch.setattr(roots, "_PARALLEL_FROM_FILES", 1)
    result = runner.invoke(app, ["check", "--format", output, "."])
    assert result.exit_code == 1
    if output == "json":
        from bot.analysis.prisma import PrismaVersion
        from bot.fixes.plan import plan_as_data, plan_file

        fixes = {
            f.path: plan_as_data(
                plan_file(Path(f.path).parent.name, f, PrismaVersion.parse(f.prisma_version or ""))
            )
            for f in expected_files
            if any(s.has_fix for s in f.statements)
        }
        assert json.loads(result.stdout) == json.loads(render_json(expected_files, fixes=fixes))
    elif output == "sarif":
        assert result.stdout == render_sarif(expected_files) + "\n"
    elif output == "github":
        assert result.stdout == render_github(expected_files)
    else:
        assert result.stdout == render_text(expected_files, width=None)
