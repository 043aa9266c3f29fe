"""`zdm fix` on real corpus migrations: one file per migration root whose blocking statements all have a
rewrite, replayed on its root's earlier migrations, fixed for both of Prisma's execution models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.analysis.prisma import PrismaVersion
from bot.fixes.plan import plan_file
from bot.verify.corpus_fixes import fix_cases
from bot.verify.fixcheck import check_fix
from bot.verify.server import Server

CORPUS = Path(
    os.environ.get("ZDM_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus" / "prisma")
)


@pytest.mark.parametrize("prisma", ["6.19.0", "7.4.0"])
def test_fixes_of_real_corpus_migrations_keep_the_schema_and_block_nothing(
    pg_server: Server, prisma: str
) -> None:
    assert CORPUS.is_dir(), f"corpus not found at {CORPUS} (set ZDM_CORPUS)"
    version = PrismaVersion.parse(prisma)
    assert version is not None
    cases = fix_cases(CORPUS)
    assert len(cases) >= 20
    problems = []
    for case in cases:
        plan = plan_file(case.path.parent.name, case.result, version)
        check = check_fix(pg_server, case.earlier, case.text, plan, version.splits_statements)
        if not check.ok:
            problems.append(
                f"{case.path}: same schema={check.same_schema} failures={check.failures} "
                f"blocking={check.blocking[:3]} original error={check.original_error}"
            )
    print(f"\nPrisma {prisma}: {len(cases)} corpus migrations fixed, {len(cases) - len(problems)} proven")
    assert problems == [], "\n".join(problems)
