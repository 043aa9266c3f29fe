"""The pre-commit hook (`.pre-commit-hooks.yaml`), installed and run by pre-commit itself.

`pre-commit try-repo` clones zdm's hook repository, builds the hook's environment from it (zdm and its
dependencies from the package index) and runs the hook on the files staged in a user's repository, exactly
as a `.pre-commit-config.yaml` entry would. It installs a fresh environment each time (about half a minute),
so one run covers the hook's whole contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.gitrepo import git

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "shop"
BLOCKING = "prisma/migrations/20240401000000_order_total/migration.sql"
SAFE = "prisma/migrations/20240402000000_user_note/migration.sql"
NOT_A_MIGRATION = "scripts/cleanup.sql"


def _hook_repository(tmp_path: Path) -> Path:
    """zdm's repository as pre-commit clones it: the hook manifest and the package it installs, committed."""
    repo = tmp_path / "zdm"
    repo.mkdir()
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(ROOT / name, repo / name)
    for package in ("bot", "workers"):
        shutil.copytree(ROOT / package, repo / package, ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "--quiet")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "zdm")
    return repo


def _user_repository(tmp_path: Path) -> Path:
    """The example app with a commit in preparation: a blocking migration, a safe one, and other SQL."""
    repo = tmp_path / "shop"
    shutil.copytree(EXAMPLE, repo)
    git(repo, "init", "--quiet")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "shop")
    staged = {
        BLOCKING: 'CREATE INDEX "Order_total_idx" ON "Order"("total");\n',
        SAFE: 'ALTER TABLE "User" ADD COLUMN "note" TEXT;\n',
        # Blocking too, but not a Prisma migration: the hook's `files` pattern leaves it out.
        NOT_A_MIGRATION: 'CREATE INDEX "User_name_idx" ON "User"("name");\n',
    }
    for path, sql in staged.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(sql)
    git(repo, "add", "-A")
    return repo


def test_hook_blocks_a_commit_adding_a_blocking_migration_and_reads_only_migrations(tmp_path: Path) -> None:
    hooks = _hook_repository(tmp_path)
    user = _user_repository(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PRE_COMMIT"))}
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "zdm"],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "- hook id: zdm" in output and "- exit code: 1" in output
    # zdm ran on the staged migrations (paths from the repository root, where pre-commit runs hooks),
    # replaying the example's earlier ones: "Order" is a live table.
    assert f"{BLOCKING}\n  line 1        blocking Order: SHARE, scans Order" in output
    assert "2 file(s), 2 statement(s)" in output
    assert NOT_A_MIGRATION not in output
