"""The GitHub Action (`action.yml`), its `zdm check` step run the way the runner runs it.

The repository is checked out as actions/checkout does for a pull request (one commit of
`refs/pull/N/merge`, shallow), the step's script runs under `bash -eo pipefail` with the environment the
runner sets (`GITHUB_BASE_REF`, `GITHUB_STEP_SUMMARY`, `GITHUB_OUTPUT`, ...), and its inputs arrive as the
runner passes them. Steps that are other actions (setup-python, cache, upload-sarif) are GitHub's; their
wiring is checked against the metadata.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.rules.base import STANDARD_SETUP
from tests.gitrepo import git

ROOT = Path(__file__).resolve().parents[1]
ACTION: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
BLOCKING = "prisma/migrations/20240302000000_user_index/migration.sql"
CATALOG_ONLY = "prisma/migrations/20240301000000_wider_note/migration.sql"


def _write(repo: Path, path: str, text: str) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)


def _origin(tmp_path: Path, feature: dict[str, str]) -> Path:
    """A remote whose `main` holds two migrations (the second blocking), with pull request 1 adding `feature`
    (path -> SQL) on a branch, and GitHub's merge ref for it."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    work = tmp_path / "author"
    git(tmp_path, "clone", "--quiet", str(origin), str(work))
    _write(work, "prisma/migrations/migration_lock.toml", 'provider = "postgresql"\n')
    _write(work, "prisma/migrations/20240101000000_init/migration.sql", STANDARD_SETUP)
    _write(work, "prisma/migrations/20240201000000_old/migration.sql", 'CREATE INDEX "i" ON "Tip"("note");\n')
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "init")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    git(work, "switch", "--quiet", "-c", "feature")
    _write(work, "README.md", "A change besides the migrations.\n")
    for path, sql in feature.items():
        _write(work, path, sql)
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "feature")
    git(work, "push", "--quiet", "origin", "feature")
    # What GitHub builds for a pull request: the head merged into the base, under refs/pull/N/merge.
    git(work, "switch", "--quiet", "--detach", "main")
    git(work, "merge", "--quiet", "--no-ff", "-m", "Merge feature into main", "feature")
    git(work, "push", "--quiet", "origin", "HEAD:refs/pull/1/merge")
    return origin


def _checkout(tmp_path: Path, origin: Path) -> Path:
    """What actions/checkout does for `pull_request` with its default `fetch-depth: 1`."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    git(workspace, "init", "--quiet")
    git(workspace, "remote", "add", "origin", origin.as_uri())
    git(
        workspace,
        "fetch",
        "--quiet",
        "--no-tags",
        "--depth=1",
        "origin",
        "+refs/pull/1/merge:refs/remotes/pull/1/merge",
    )
    git(workspace, "checkout", "--quiet", "--detach", "refs/remotes/pull/1/merge")
    assert git(workspace, "rev-parse", "--is-shallow-repository").strip() == "true"
    return workspace


@dataclass
class StepRun:
    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _evaluate(text: str, inputs: dict[str, str], outputs: dict[str, dict[str, str]]) -> str:
    """The expressions the action's `run` steps use: `inputs.NAME` and `steps.ID.outputs.NAME`."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("inputs."):
            return inputs[expression.removeprefix("inputs.")]
        step_output = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
        assert step_output is not None, f"an expression this test does not evaluate: {expression}"
        step, name = step_output.groups()
        return outputs[step][name]

    return _EXPRESSION.sub(value, text)


def _run_step(
    step_id: str,
    workspace: Path,
    tmp_path: Path,
    with_inputs: dict[str, str],
    outputs: dict[str, dict[str, str]],
    event: dict[str, str],
) -> StepRun:
    [step] = [s for s in ACTION["runs"]["steps"] if s.get("id") == step_id]
    assert step["shell"] == "bash"
    inputs = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()} | with_inputs
    files = tmp_path / "runner" / step_id
    files.mkdir(parents=True)
    script = files / "script.sh"
    script.write_text(step["run"])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_OUTPUT": str(files / "output"),
        "GITHUB_STEP_SUMMARY": str(files / "summary"),
        "RUNNER_TEMP": str(tmp_path / "runner"),
        **event,
        **{name: _evaluate(str(value), inputs, outputs) for name, value in step.get("env", {}).items()},
    }
    cwd = workspace / _evaluate(step.get("working-directory", "."), inputs, outputs)
    # How the runner runs `shell: bash`.
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    written = (files / "output").read_text() if (files / "output").exists() else ""
    summary = (files / "summary").read_text() if (files / "summary").exists() else ""
    step_outputs = dict(line.split("=", 1) for line in written.splitlines() if "=" in line)
    return StepRun(done.returncode, done.stdout, done.stderr, step_outputs, summary)


def _zdm() -> str:
    found = shutil.which("zdm", path=str(Path(sys.executable).parent))
    assert found is not None, "zdm is not installed in this environment"
    return found


PULL_REQUEST = {
    "GITHUB_EVENT_NAME": "pull_request",
    "GITHUB_BASE_REF": "main",
    "GITHUB_HEAD_REF": "feature",
    "GITHUB_REF": "refs/pull/1/merge",
}


def test_pull_request_gets_annotations_summary_and_sarif_for_its_own_migrations_and_fails(
    tmp_path: Path,
) -> None:
    origin = _origin(
        tmp_path,
        {
            CATALOG_ONLY: 'ALTER TABLE "Tip" ALTER COLUMN "note" TYPE VARCHAR(20);\n',
            BLOCKING: 'CREATE INDEX "User_bio_idx" ON "User"("bio");\n',
        },
    )
    workspace = _checkout(tmp_path, origin)
    run = _run_step(
        "check",
        workspace,
        tmp_path,
        {"sarif-file": "zdm.sarif"},
        {"install": {"zdm": _zdm()}},
        PULL_REQUEST,
    )
    assert run.exit_code == 1, run.stderr
    assert run.outputs["exit-code"] == "1"
    # Annotations on the pull request's files only, by their path from the repository root.
    annotated = set(re.findall(r"^::\w+ file=([^,]+),", run.stdout, re.MULTILINE))
    assert annotated == {BLOCKING, CATALOG_ONLY}
    assert f"::error file={BLOCKING},line=1,endLine=1,title=zdm create-index::" in run.stdout
    # The earlier migrations were replayed: the type change is judged against varchar(10), catalog-only.
    assert f"::error file={CATALOG_ONLY}" not in run.stdout
    # The job summary: the App's verdict, table, plan and checklist.
    assert run.summary.startswith("### zdm: 1 statement blocks writes on `User`.")
    assert "| `20240302000000_user_index` | 1 |" in run.summary
    assert "### Before deploying" in run.summary
    assert run.summary.count("### zdm:") == 1
    # SARIF for code scanning, at the path the upload step is given.
    sarif = json.loads(Path(run.outputs["sarif-file"]).read_text())
    uris = {
        location["physicalLocation"]["artifactLocation"]["uri"]
        for result in sarif["runs"][0]["results"]
        for location in result["locations"]
    }
    assert uris == {BLOCKING, CATALOG_ONLY}
    assert Path(run.outputs["sarif-file"]) == (workspace / "zdm.sarif").resolve()
    # The shallow checkout was deepened and the base branch fetched, so git could find the merge base.
    assert git(workspace, "rev-parse", "--is-shallow-repository").strip() == "false"
    assert git(workspace, "rev-parse", "origin/main") == git(origin, "rev-parse", "main")


def test_pull_request_without_a_blocking_migration_passes(tmp_path: Path) -> None:
    origin = _origin(tmp_path, {CATALOG_ONLY: 'ALTER TABLE "Tip" ALTER COLUMN "note" TYPE VARCHAR(20);\n'})
    workspace = _checkout(tmp_path, origin)
    run = _run_step("check", workspace, tmp_path, {}, {"install": {"zdm": _zdm()}}, PULL_REQUEST)
    assert run.exit_code == 0, run.stderr
    assert run.outputs == {"exit-code": "0"}
    assert run.summary.startswith("### zdm: 1 statement(s) in 1 migration(s): nothing blocks.")


def test_pull_request_changing_no_migration_passes_and_says_so(tmp_path: Path) -> None:
    origin = _origin(tmp_path, {"docs/notes.md": "No migration here.\n"})
    workspace = _checkout(tmp_path, origin)
    run = _run_step("check", workspace, tmp_path, {}, {"install": {"zdm": _zdm()}}, PULL_REQUEST)
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    assert run.summary.startswith(
        "### zdm: no Prisma migration for PostgreSQL to check\n- no migration added"
    )


def test_a_bad_base_fails_the_step_with_zdms_usage_exit_code(tmp_path: Path) -> None:
    origin = _origin(tmp_path, {BLOCKING: 'CREATE INDEX "User_bio_idx" ON "User"("bio");\n'})
    workspace = _checkout(tmp_path, origin)
    run = _run_step(
        "check", workspace, tmp_path, {"base": "no-such-ref"}, {"install": {"zdm": _zdm()}}, PULL_REQUEST
    )
    assert run.exit_code == 2
    assert run.outputs == {"exit-code": "2"}
    assert "--base no-such-ref: no merge base" in run.stderr


def test_on_a_push_without_a_base_every_migration_is_checked(tmp_path: Path) -> None:
    origin = _origin(tmp_path, {CATALOG_ONLY: 'ALTER TABLE "Tip" ALTER COLUMN "note" TYPE VARCHAR(20);\n'})
    workspace = _checkout(tmp_path, origin)
    push = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"}
    run = _run_step("check", workspace, tmp_path, {}, {"install": {"zdm": _zdm()}}, push)
    # main's own blocking index is checked too.
    assert run.exit_code == 1
    assert "file=prisma/migrations/20240201000000_old/migration.sql" in run.stdout


@pytest.mark.parametrize("step_id", ["pip-cache", "install", "check"])
def test_run_steps_read_inputs_from_the_environment_not_from_the_script(step_id: str) -> None:
    # A branch name or path put into the script itself would run as shell.
    [step] = [s for s in ACTION["runs"]["steps"] if s.get("id") == step_id]
    assert "${{" not in step["run"]


def test_the_other_actions_are_wired_to_the_check() -> None:
    steps = ACTION["runs"]["steps"]
    assert ACTION["runs"]["using"] == "composite"
    [python] = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
    assert python["with"]["update-environment"] is False
    [cache] = [s for s in steps if s.get("uses", "").startswith("actions/cache@")]
    assert cache["with"]["path"] == "${{ steps.pip-cache.outputs.dir }}"
    [upload] = [s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    assert upload["with"]["sarif_file"] == "${{ steps.check.outputs.sarif-file }}"
    # Uploaded also when the check failed, which is when the findings matter.
    assert "!cancelled()" in upload["if"]
    assert ACTION["outputs"]["exit-code"]["value"] == "${{ steps.check.outputs.exit-code }}"
