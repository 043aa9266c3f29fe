"""What zdm writes on a pull request, as pure functions of the analysis: short inline comments about their own
statement, the plan said once per file, GitHub's limits kept whatever the size (the corpus's largest
migrations), and comments never posted twice."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from bot.analysis.config import ConfigError, parse_config
from bot.analysis.engine import Analyzer
from bot.analysis.prisma import PrismaVersion
from bot.analysis.roots import find_roots, read_sql
from bot.fixes.plan import FilePlan, plan_file
from bot.report.pull_request import (
    FILE_COMMENT_THRESHOLD,
    FINDING_MARKER_PATTERN,
    INLINE_LIMIT,
    MAX_COMMENT,
    MAX_OUTPUT,
    MAX_TITLE,
    SUMMARY_MARKER,
    Approval,
    ChangedMigration,
    PullRequestReport,
    build_report,
    cap,
    comments_to_post,
    fit_blocks,
)
from tests.review_measures import CORPUS, LARGE, TYPICAL, corpus_migration, plan_repeats
from tests.test_app import BLOCKING, INITIAL, MIGRATIONS

PRISMA_6 = PrismaVersion(6, 19, 0)
PRISMA_74 = PrismaVersion(7, 4, 0)
BRIEF = """-- AlterTable
ALTER TABLE "User" ADD COLUMN "nickname" TEXT;

-- DropIndex
DROP INDEX "Order_old_idx";
"""


def _change(
    sql: str, prisma: PrismaVersion = PRISMA_6, name: str = "20240201000000_change"
) -> ChangedMigration:
    analyzer = Analyzer(prisma=prisma)
    analyzer.analyze(INITIAL + 'CREATE INDEX "Order_old_idx" ON "Order"("id");\n', "init.sql")
    path = f"{MIGRATIONS}/{name}/migration.sql"
    return ChangedMigration(path, sql, analyzer.analyze(sql, path))


def _fences_closed(text: str) -> bool:
    return text.count("```") % 2 == 0


def _verdict(body: str) -> list[str]:
    """The lines before the first blank line, the summary's hidden marker aside."""
    return [line for line in body.split("\n\n", 1)[0].splitlines() if line != SUMMARY_MARKER]


def _posted(report: PullRequestReport) -> list[str]:
    inline, files = comments_to_post(report.comments, set())
    return [c.body for c in inline] + [f.body for f in files]


@pytest.mark.parametrize("relative", [TYPICAL, *LARGE], ids=lambda r: r.split("/")[-1])
def test_corpus_reviews_keep_githubs_limits_and_say_each_plan_once(relative: str) -> None:
    migration = corpus_migration(relative)
    report = build_report([migration.change()], PRISMA_6)
    inline, files = comments_to_post(report.comments, set())
    bodies = [c.body for c in inline] + [f.body for f in files]
    assert len(inline) <= FILE_COMMENT_THRESHOLD
    for body in [*bodies, report.summary_comment]:
        assert len(body) <= MAX_COMMENT
        assert _fences_closed(body), body[-500:]
    assert len(report.summary) <= MAX_OUTPUT and _fences_closed(report.summary)
    assert len(report.title) <= MAX_TITLE
    for comment in inline:
        assert len(comment.body) <= INLINE_LIMIT or "```suggestion" in comment.body
    assert plan_repeats(migration.plan(), [*bodies, report.summary_comment, report.summary]) == 0
    # The verdict and what to do first, whatever the size; the checklist always at the end.
    verdict = _verdict(report.summary_comment)
    assert 1 <= len(verdict) <= 3 and verdict[0].startswith("### zdm: ")
    assert "zdm fix" in verdict[1] and "/zdm approve <reason>" in verdict[1]
    assert "### Before deploying" in report.summary_comment and "- [ ] " in report.summary_comment
    check = _verdict(report.summary)
    assert 1 <= len(check) <= 3 and check[0].startswith("**")


def test_a_typical_file_says_its_findings_in_at_most_15_kb() -> None:
    report = build_report([corpus_migration(TYPICAL).change()], PRISMA_6)
    inline, files = comments_to_post(report.comments, set())
    assert files == []
    assert 15 <= len(inline) <= 25
    assert sum(len(c.body) for c in inline) <= 15_000


def test_the_largest_corpus_migration_becomes_one_file_comment_and_a_shortened_plan() -> None:
    migration = corpus_migration(LARGE[0])
    report = build_report([migration.change()], PRISMA_6)
    inline, files = comments_to_post(report.comments, set())
    assert inline == []
    (file_comment,) = files
    assert len(file_comment.digests) == len(report.comments) > FILE_COMMENT_THRESHOLD
    assert set(FINDING_MARKER_PATTERN.findall(file_comment.body)[0].split()) == file_comment.digests
    assert f"zdm fix {MIGRATIONS}/{migration.folder}" in file_comment.body
    # The plan is what got shortened, with the command that prints all of it.
    assert "more step(s): `zdm fix" in report.summary_comment
    assert "--dry-run` prints the whole plan" in report.summary_comment


def test_an_inline_comment_speaks_of_its_own_statement_and_leaves_the_plan_to_the_summary() -> None:
    report = build_report([_change(BLOCKING)], PRISMA_6)
    by_line = {c.line: c.body for c in report.comments}
    index, not_null = by_line[2], by_line[5]
    assert "`SHARE` on `Order` (blocks writes, scans it)" in index
    assert 'CREATE INDEX CONCURRENTLY "Order_userId_idx"' in index
    assert re.search(r"step 1 of \d+; the whole plan is in the summary", index)
    assert "SET NOT NULL" not in index
    assert "Order_userId_idx" not in not_null
    assert "VALIDATE CONSTRAINT" in not_null
    assert report.summary_comment.count("CREATE INDEX CONCURRENTLY") == 1


def test_an_in_place_rewrite_is_a_suggestion_on_the_statement_lines() -> None:
    sql = 'CREATE INDEX "Order_userId_idx" ON "Order"("userId");\n'
    (comment,) = build_report([_change(sql, PRISMA_74)], PRISMA_74).comments
    suggestion = re.search(r"```suggestion\n(.*?)```", comment.body, re.DOTALL)
    assert suggestion is not None, comment.body
    assert suggestion.group(1).strip() == 'CREATE INDEX CONCURRENTLY "Order_userId_idx" ON "Order"("userId");'


def test_brief_locks_stay_in_the_summary_table_unless_the_repository_asks() -> None:
    change = _change(BRIEF)
    quiet = build_report([change], PRISMA_6)
    assert quiet.comments == ()
    assert '| 2 | `ALTER TABLE "User" ADD COLUMN' in quiet.summary_comment
    assert '| 5 | `DROP INDEX "Order_old_idx"` | brief' in quiet.summary_comment
    asked = build_report([change], PRISMA_6, comment_on_brief=True)
    assert [c.line for c in asked.comments] == [2, 5]


def test_the_reason_for_no_automatic_rewrite_is_in_the_comment(monkeypatch: pytest.MonkeyPatch) -> None:
    original = plan_file

    def with_reason(name: str, result: Any, prisma: PrismaVersion | None) -> FilePlan:
        plan = original(name, result, prisma)
        return dataclasses.replace(plan, no_rewrite={0: "the column's type changes; expand and contract"})

    monkeypatch.setattr("bot.report.pull_request.plan_file", with_reason)
    sql = 'ALTER TABLE "Order" ALTER COLUMN "userId" SET DATA TYPE BIGINT;\n'
    (comment,) = build_report([_change(sql)], PRISMA_6).comments
    # The type change has an online rewrite now: the reason shows beside the plan's steps, and nothing else
    # is proposed.
    assert "kept as written by zdm's plan: the column's type changes; expand and contract" in comment.body
    assert "Instead" not in comment.body


def test_a_crowded_file_gets_one_file_comment_and_nothing_is_posted_twice() -> None:
    many = "".join(f'CREATE INDEX "Order_{n}_idx" ON "Order"("userId", "id");\n' for n in range(45))
    report = build_report([_change(many)], PRISMA_6)
    assert len(report.comments) == 45
    inline, (file_comment,) = comments_to_post(report.comments, set())
    assert inline == [] and len(file_comment.digests) == 45
    assert "lines 1, 2, 3" in file_comment.body
    assert comments_to_post(report.comments, set(file_comment.digests)) == ([], [])
    # A push that adds a few more: only those, inline.
    posted = {c.digest for c in report.comments[:40]}
    inline, files = comments_to_post(report.comments, posted)
    assert [c.statement_line for c in inline] == [41, 42, 43, 44, 45] and files == []


def test_the_summary_names_approvals_and_a_green_verdict() -> None:
    change = _change(BLOCKING)
    flagged = build_report([change], PRISMA_6)
    approval = Approval("boss", "tiny tables", frozenset(f.digest for f in flagged.flagged))
    report = build_report([change], PRISMA_6, [approval])
    assert report.conclusion == "success"
    assert _verdict(report.summary_comment) == [
        "### zdm: 2 flagged statement(s) approved by @boss: nothing else blocks."
    ]
    assert "- Approved by @boss: tiny tables" in report.summary


def test_fitting_never_leaves_a_code_fence_open() -> None:
    blocks = [f"```sql\nSELECT {n};\n```" for n in range(100)]
    kept = fit_blocks(blocks, 200, lambda n: f"… {n} more")
    assert kept[-1].startswith("… ") and len("\n".join(kept)) <= 200
    assert _fences_closed("\n".join(kept))
    text = cap("intro\n```sql\n" + "SELECT 1;\n" * 10_000, MAX_COMMENT)
    assert len(text) <= MAX_COMMENT and _fences_closed(text) and "`zdm check`" in text


def test_the_review_setting_is_checked_like_every_other() -> None:
    assert parse_config("review:\n  comment_on_brief: true\n").review.comment_on_brief
    assert not parse_config("").review.comment_on_brief
    with pytest.raises(ConfigError, match=r"review\.comment_on_brif: unknown key"):
        parse_config("review:\n  comment_on_brif: true\n")


def _statement_of(comment_line: int, change: ChangedMigration) -> int:
    return next(s.index for s in change.result.statements if s.line_start == comment_line)


def test_inline_comments_and_plans_agree_for_every_corpus_statement() -> None:
    """One answer per statement, on every real migration: a comment shows a rewrite only where the plan applies
    one (its steps are the plan's, its suggestion the plan's SQL), and where the plan keeps the statement the
    comment says why and proposes nothing else."""
    checked = 0
    for root in find_roots(CORPUS):
        if root.provider != "postgresql":
            continue
        analyzer = Analyzer(prisma=PRISMA_6)
        for path in root.migrations:
            text = read_sql(path)
            change = ChangedMigration(str(path), text, analyzer.analyze(text, str(path)))
            report = build_report([change], PRISMA_6)
            if not report.comments:
                continue
            plan = plan_file(change.name, change.result, PRISMA_6)
            for comment in report.comments:
                index = _statement_of(comment.statement_line, change)
                numbers = plan.step_numbers(index)
                kept = plan.no_rewrite.get(index)
                steps = re.search(r"\*\*Its part of the safe plan\*\*: steps? ([\d, ]+) of", comment.body)
                suggestion = re.search(r"```suggestion\n(.*?)```", comment.body, re.DOTALL)
                if steps is not None:
                    assert [int(n) for n in steps.group(1).split(", ")] == list(numbers), comment.body
                if suggestion is not None:
                    (number,) = numbers
                    own = plan.steps[number - 1].sql_of(index)
                    assert suggestion.group(1).strip().endswith(own[-1]), comment.body
                if kept is not None:
                    assert kept[:200] in comment.body, comment.body
                if steps is None and suggestion is None:
                    # Nothing rewritten: the statement runs as written, where it was.
                    assert all(plan.steps[n - 1].migration is not None for n in numbers)
                    if kept is not None:
                        assert "Instead" not in comment.body, comment.body
                checked += 1
    assert checked > 2000, checked
