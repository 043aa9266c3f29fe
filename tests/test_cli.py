"""The `zdm` command line, on small repositories built in the test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.rules import ALL_RULES
from bot.rules.base import STANDARD_SETUP

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shop"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "rules"
CHANGE = "prisma/migrations/20240201000000_change/migration.sql"
runner = CliRunner()


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


def test_blocking_index_fails_the_check_with_its_lines_in_json(tmp_path: Path) -> None:
    repo = _repo(tmp_path, '-- CreateIndex\nCREATE INDEX "Tip_note_idx2"\n  ON "Tip"("note");\n')
    result = runner.invoke(app, ["check", "--format", "json", str(repo)])
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
    paths = [f["path"] for f in json.loads(result.stdout)["files"]]
    assert paths == ["prisma/migrations/20240101000000_init/migration.sql", CHANGE]


def test_one_migration_file_is_judged_against_the_earlier_ones(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n')
    result = runner.invoke(app, ["check", "--format", "json", str(repo / CHANGE)])
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
    change = next(f for f in json.loads(result.stdout)["files"] if f["path"] == CHANGE)
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


def test_check_does_not_load_the_github_app_stack(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX CONCURRENTLY "i" ON "Tip"("note");\n')
    code = (
        "import sys\n"
        "from bot.cli import main\n"
        f"sys.argv = ['zdm', 'check', '--format', 'json', {str(repo)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'githubkit', 'fastapi', 'starlette', 'uvicorn', 'httpx', 'psycopg'}\n"
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
    assert folders[1:] == [
        "20240301000000_orders_v2",
        "20240301000000_orders_v2_01_zdm",
        "20240301000000_orders_v2_02_zdm",
        "20240301000000_orders_v2_03_zdm",
        "20240301000000_orders_v2_04_zdm",
    ]
    # Prisma's own BEGIN ... COMMIT around the enum change stays one migration; the index is built alone.
    assert "CONCURRENTLY" in (repo / "prisma" / "migrations" / folders[4] / "migration.sql").read_text()
    after = json.loads(runner.invoke(app, ["check", "--format", "json", str(repo)]).stdout)
    still = {
        finding["rule"]
        for f in after["files"]
        for s in f["statements"]
        for finding in s["findings"]
        if finding["classification"] in ("blocking", "unknown") and not finding["suppressed"]
    }
    # What is left has no automatic rewrite: an int -> bigint rewrite and Prisma's enum rebuild.
    assert still == {"enum-rebuild", "change-column-type"}


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
