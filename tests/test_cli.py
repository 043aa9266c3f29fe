"""The `zdm` command line, on small repositories built in the test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.rules.base import STANDARD_SETUP

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shop"
runner = CliRunner()


def _repo(tmp_path: Path, migration: str, provider: str = "postgresql", config: str | None = None) -> Path:
    migrations = tmp_path / "prisma" / "migrations"
    (migrations / "20240101000000_init").mkdir(parents=True)
    (migrations / "20240101000000_init" / "migration.sql").write_text(STANDARD_SETUP)
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
    change = next(f for f in document["files"] if f["path"].endswith("20240201000000_change/migration.sql"))
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


def test_sarif_and_github_formats(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'CREATE INDEX "i" ON "Tip"("note");\n')
    sarif = json.loads(runner.invoke(app, ["check", "--format", "sarif", str(repo)]).stdout)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert {"create-index", "lock-timeout-missing"} <= {r["ruleId"] for r in results}
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 1
    github = runner.invoke(app, ["check", "--format", "github", str(repo)]).stdout
    assert github.startswith("::error file=prisma/migrations/20240201000000_change/migration.sql,line=1,")
    assert "\n" not in github.strip().splitlines()[0][2:]


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
    ]
    assert "CONCURRENTLY" in (repo / "prisma" / "migrations" / folders[3] / "migration.sql").read_text()
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
