"""What zdm says on a merge group's commit (pure): the pull request check's verdict, table and annotations for
the group as a whole, and which of its pull requests each finding comes from. A merge group has no
conversation: no review comments, no summary comment, and approvals are given on the pull requests.

An approval given on a pull request covers the flagged statements (by digest: their normalised SQL and rules)
in the files that pull request changes; a finding in a file no pull request of the group is found changing is
covered by none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from bot.analysis.history import Hazard
from bot.analysis.prisma import PrismaVersion
from bot.report.pull_request import (
    MAX_OUTPUT,
    Approval,
    ChangedMigration,
    Flagged,
    PullRequestReport,
    build_report,
    cap,
    fit_blocks,
)

ACCEPT = (
    "comment `/zdm approve <reason>` on the pull request they come from (write access), then queue it again."
)
BY_HAND = "Change them by hand (see the annotations)"
# The group's own lines stay short beside the verdict: the table and the list of findings follow.
_PREAMBLE_BUDGET = 6_000


def pulls_text(numbers: Sequence[int]) -> str:
    return ", ".join(f"#{n}" for n in numbers) if numbers else "no pull request zdm could name"


def no_migration_change(numbers: Sequence[int], base_ref: str) -> tuple[str, str]:
    """The check run's title and summary for a group that touches no migration: it passes at once."""
    return (
        "No migration changes",
        cap(
            f"**This merge group changes no Prisma migration for PostgreSQL.**\n\nIt holds {pulls_text(numbers)}, "
            f"queued on `{_branch(base_ref)}`.",
            MAX_OUTPUT,
        ),
    )


def scoped_approvals(
    flagged: Sequence[Flagged],
    origins: Mapping[str, Sequence[int]],
    approvals: Mapping[int, Sequence[Approval]],
) -> list[Approval]:
    """Each pull request's approvals, narrowed to the files that pull request changes (the same statement
    added by another pull request of the group was not approved), and kept when they cover something there."""
    scoped = []
    for number, given in sorted(approvals.items()):
        paths = frozenset(f.path for f in flagged if number in origins.get(f.path, ()))
        for approval in given:
            narrowed = replace(approval, paths=paths)
            if any(narrowed.covers(f) for f in flagged):
                scoped.append(narrowed)
    return scoped


def flagged_paths(changes: Sequence[ChangedMigration], hazards: Sequence[Hazard]) -> list[str]:
    """The files whose findings fail the check unless approved: those worth tracing to a pull request."""
    return sorted({f.path for f in build_report(changes, None, (), (), False, hazards).flagged})


def merge_group_report(
    changes: Sequence[ChangedMigration],
    prisma: PrismaVersion | None,
    hazards: Sequence[Hazard],
    notes: Sequence[str],
    origins: Mapping[str, Sequence[int]],
    approvals: Mapping[int, Sequence[Approval]],
    numbers: Sequence[int],
    base_ref: str,
    comment_on_brief: bool = False,
) -> PullRequestReport:
    """The group judged as the pull request check judges one pull request; its summary says, after the
    verdict, which pull requests the findings still needing attention come from."""
    if not changes and not hazards:
        title, summary = no_migration_change(numbers, base_ref)
        if notes:
            summary = cap(summary + "\n\n" + "\n".join(f"- {n}" for n in notes), MAX_OUTPUT)
        return PullRequestReport("success", title, summary, (), (), "", ())
    draft = build_report(changes, prisma, (), notes, comment_on_brief, hazards)
    scoped = scoped_approvals(draft.flagged, origins, approvals)
    pending = [f for f in draft.flagged if not any(a.covers(f) for a in scoped)]
    return build_report(
        changes,
        prisma,
        scoped,
        notes,
        comment_on_brief,
        hazards,
        accept=ACCEPT,
        by_hand=BY_HAND,
        preamble=_preamble(pending, origins, numbers, base_ref),
    )


def _preamble(
    pending: Sequence[Flagged], origins: Mapping[str, Sequence[int]], numbers: Sequence[int], base_ref: str
) -> list[str]:
    lines = [
        f"This merge group holds {pulls_text(numbers)}, queued on `{_branch(base_ref)}`: their migrations are "
        "judged together, replayed in order on the base branch's."
    ]
    if not pending:
        return lines
    by_origin: dict[tuple[int, ...], list[str]] = {}
    for item in pending:
        paths = by_origin.setdefault(tuple(origins.get(item.path, ())), [])
        if item.path not in paths:
            paths.append(item.path)
    blocks = []
    for found, paths in sorted(by_origin.items(), key=lambda entry: (not entry[0], entry[0])):
        files = ", ".join(f"`{p}`" for p in paths)
        if found:
            blocks.append(f"- from {pulls_text(found)}: {files}")
        else:
            blocks.append(
                f"- from no pull request of the group zdm could find (an approval cannot cover it): {files}"
            )
    listed = fit_blocks(blocks, _PREAMBLE_BUDGET, lambda n: f"- … {n} more: run `zdm check`")
    return [*lines, "", "Where the findings needing attention come from:", "", *listed]


def _branch(ref: str) -> str:
    return ref.removeprefix("refs/heads/") or "?"
