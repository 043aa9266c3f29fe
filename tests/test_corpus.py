"""The analyzer over every real migration in ../shared/corpus/prisma, and its claims against a real server."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from bot.analysis.config import RepoConfig
from bot.analysis.roots import analyze_root, find_roots
from bot.verify.corpus import Agreement, compare_root
from bot.verify.server import Server

CORPUS = Path(
    os.environ.get("ZDM_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus" / "prisma")
)


def _corpus() -> Path:
    assert CORPUS.is_dir(), f"corpus not found at {CORPUS} (set ZDM_CORPUS)"
    return CORPUS


def test_every_corpus_statement_is_classified_and_unknowns_stay_rare() -> None:
    classes: Counter[str] = Counter()
    files = 0
    roots = find_roots(_corpus())
    for root in roots:
        for result in analyze_root(root, RepoConfig()):
            files += 1
            for statement in result.statements:
                assert statement.line_start <= statement.line_end
                classes[statement.classification.value] += 1
    total = sum(classes.values())
    print(f"\ncorpus: {len(roots)} roots, {files} files, {total} statements: {dict(classes)}")
    assert files == sum(len(r.migrations) for r in roots) >= 4900
    assert classes["unknown"] / total < 0.005


def test_corpus_claims_agree_with_postgresql(corpus_pg_server: Server) -> None:
    pg_server = corpus_pg_server
    total = Agreement()
    for root in find_roots(_corpus()):
        total.add(compare_root(pg_server, root))
    print(
        f"\nPostgreSQL {pg_server.major_version}: {total.statements} statements, {total.measured} compared, "
        f"{total.unmeasured_errors} failed on the server (missing extensions, roles), "
        f"{total.unmeasured_autocommit} autocommit not captured, {total.backfills} backfills (row locks)\n"
        f"{total.table()}\n"
        f"truly blocking: {total.truly_blocking}, called safe/brief: {len(total.missed)}; "
        f"called blocking: {total.claimed_blocking}, measured otherwise: {len(total.false_blocking)}; "
        f"exact agreement {total.exact / max(total.measured, 1):.2%}; "
        f"write-blocking locks (table -> mode) as measured: {total.measured - total.lock_mismatches} "
        f"({1 - total.lock_mismatches / max(total.measured, 1):.2%})"
    )
    for item in total.missed[:20] + total.false_blocking[:20]:
        print(f"  {item.path}:{item.line} claimed {item.claimed}, measured {item.measured}: {item.detail}")
    assert not total.missed, "every truly blocking statement must be called blocking or unknown"
    assert len(total.false_blocking) <= 0.01 * total.claimed_blocking
