"""What a review of a real corpus migration says, measured: comments posted, their sizes, and how often any
step of a file's plan is repeated. Shared by the review tests and `bench/app.py`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.analysis.config import RepoConfig
from bot.analysis.prisma import PrismaVersion
from bot.analysis.snapshot import RootSnapshot, analyze_root_snapshot
from bot.fixes.plan import FilePlan, plan_file
from bot.report.pull_request import ChangedMigration

CORPUS = Path(
    os.environ.get("ZDM_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus" / "prisma")
)
MIGRATIONS = "prisma/migrations"
PRISMA = "6.19.0"
# A typical reviewed file: 99 lines, about 20 statements that need action (blocking, breaking).
TYPICAL = "civitai__civitai/20250228013729_normalize"
# The corpus's largest review: 1,692 lines, 55 blocking statements, 316 that need action.
LARGEST = "bloom-housing__bloom/01_change_to_prisma"
# More corpus files that made the biggest reviews: the most blocking statements (70), the longest comment.
LARGE = (
    LARGEST,
    "charmverse__core/20221108103302_foreign_key_index",
    "documenso__documenso/20250522054050_add_organisations",
    "elie222__inbox-zero/20250429192105_mutli_email",
)


@dataclass(frozen=True)
class CorpusMigration:
    """A corpus migration as a pull request adding it would show it: its root's earlier migrations, itself."""

    folder: str
    text: str
    earlier: dict[str, str]

    @property
    def path(self) -> str:
        return f"{MIGRATIONS}/{self.folder}/migration.sql"

    def change(self) -> ChangedMigration:
        snapshot = RootSnapshot(
            MIGRATIONS,
            "postgresql",
            earlier=self.earlier,
            changed={self.folder: self.text},
            prisma=PrismaVersion.parse(PRISMA),
        )
        (result,) = analyze_root_snapshot(snapshot, RepoConfig())
        return ChangedMigration(result.path, self.text, result)

    def plan(self) -> FilePlan:
        return plan_file(self.folder, self.change().result, PrismaVersion.parse(PRISMA))


def corpus_migration(relative: str) -> CorpusMigration:
    directory = CORPUS / relative
    assert directory.is_dir(), f"corpus migration not found at {directory} (set ZDM_CORPUS)"
    root = directory.parent
    earlier = {
        d.name: (d / "migration.sql").read_text()
        for d in root.iterdir()
        if (d / "migration.sql").is_file() and d.name.encode() < directory.name.encode()
    }
    return CorpusMigration(directory.name, (directory / "migration.sql").read_text(), earlier)


def _flat(text: str) -> str:
    return " ".join(text.split())


def plan_repeats(plan: FilePlan, bodies: Sequence[str]) -> int:
    """How many times the plan's text is said more than it should be: each migration step's SQL belongs once in
    the summary, and once more in the inline comment of the statement it holds when it holds only one."""
    flat = [_flat(body) for body in bodies]
    repeats = 0
    for step in plan.steps:
        if step.migration is None:
            continue
        sql = _flat(step.migration.sql)
        allowed = 2 if len(step.statements) == 1 else 1
        repeats += max(0, sum(1 for body in flat if sql in body) - allowed)
    return repeats
