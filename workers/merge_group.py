"""Check a merge group: the pull request check, on the group's head commit. Orchestration only.

GitHub's merge queue waits for the required checks on each group it builds (`merge_group.checks_requested`),
so zdm's check run must be completed there too, or every pull request waits in the queue until it times out.
The group is judged as a whole, from its base commit to its head: its pull requests' migrations together,
replayed in order on the base's, so one pull request's migration is judged with the others' (a table another
creates, a column another drops). Approvals are given on the pull requests and cover the same migration
content here. A group that touches no migration passes at once.
"""

from __future__ import annotations

import json

from redis import Redis

from bot.commands import read_approvals
from bot.events import Work
from bot.github import DEFAULT_ROOTS, GitHubAdapter, MergeGroupState, history_roots
from bot.logs import log
from bot.merge_queue import group_pulls, origins, pull_named, root_changes
from bot.report.merge_group import flagged_paths, merge_group_report, no_migration_change
from bot.report.pull_request import Approval
from bot.settings import Settings
from workers.replay_cache import RedisSchemaStore
from workers.review import analyse, history_hazards, repo_config, roots_key

# Commits whose message names no pull request (the "rebase" method) are looked up one request each: at most
# this many, newest first, and only while a changed file is not yet traced to a pull request.
MAX_COMMIT_LOOKUPS = 10


def check_merge_group(work: Work, settings: Settings, connection: Redis) -> str:
    """Complete zdm's check run on the group's head commit; its conclusion."""
    assert work.head_sha is not None and work.base_sha is not None
    owner, repo, head, base = work.owner, work.repo, work.head_sha, work.base_sha
    base_ref = work.base_ref or ""
    with GitHubAdapter(settings, connection, work.installation_id) as adapter:
        comparison = adapter.compare(owner, repo, base, head)
        numbers = group_pulls(work.head_ref or "", (message for _, message in comparison.commits))
        known = connection.get(roots_key(work))
        roots = json.loads(known) if known else list(DEFAULT_ROOTS)
        touched = history_roots(comparison.files, roots)
        if not touched and comparison.files_complete:
            title, summary = no_migration_change(numbers, base_ref)
            adapter.publish_merge_group_check_run(owner, repo, head, base, "success", title, summary, [])
            log.info(
                "merge_group.done", repo=f"{owner}/{repo}", head=head, conclusion="success", migrations=0
            )
            return "success"
        wanted = sorted({*roots, *touched})
        state = adapter.read_merge_group(owner, repo, head, base, wanted, numbers, comparison)
        if set(wanted) - set(roots):
            connection.set(roots_key(work), json.dumps(wanted))
        for root in wanted:
            # The roots read whole at both commits say every migration that changed, whatever the
            # comparison's file list (300 files at most) left out.
            state.files.update(root_changes(root, state.base_roots.get(root), state.head_roots.get(root)))
        config, notes = repo_config(state)
        if not comparison.files_complete:
            notes.append(
                f"GitHub's comparison lists at most {len(comparison.files)} changed files and this group changes "
                f"more: its migrations were found by reading {', '.join(f'`{r}`' for r in wanted)} whole at "
                "both commits"
            )
        if comparison.total_commits > len(comparison.commits):
            notes.append(
                f"GitHub's comparison gives the newest {len(comparison.commits)} of the group's "
                f"{comparison.total_commits} commits: pull requests named only in older ones were not read"
            )
        schemas = RedisSchemaStore(connection, f"{work.owner}/{work.repo}", settings.approval_key())
        changes, prisma = analyse(state, config, notes, schemas)
        hazards = history_hazards(state, config)
        _trace_pulls(adapter, work, state, comparison.commits, flagged_paths(changes, hazards))
        changed = [*(c.path for c in changes), *(h.path for h in hazards)]
        found = origins(changed, {n: pull.files for n, pull in state.pulls.items()})
        report = merge_group_report(
            changes,
            prisma,
            hazards,
            notes,
            found,
            _approvals(adapter, work, state, settings),
            sorted(state.pulls) or numbers,
            base_ref,
            config.review.comment_on_brief,
        )
        adapter.publish_merge_group_check_run(
            owner, repo, head, base, report.conclusion, report.title, report.summary, report.annotations
        )
        log.info(
            "merge_group.done",
            repo=f"{owner}/{repo}",
            head=head,
            pulls=sorted(state.pulls),
            conclusion=report.conclusion,
            migrations=len(changes),
        )
        return report.conclusion


def _trace_pulls(
    adapter: GitHubAdapter,
    work: Work,
    state: MergeGroupState,
    commits: list[tuple[str, str]],
    paths: list[str],
) -> None:
    """Ask GitHub which pull requests hold the group's commits that name none (commits replayed by the
    "rebase" method), while a file with findings is traced to no pull request of the group: only a pull
    request's approval can cover its findings."""

    def untraced() -> bool:
        return any(not any(path in pull.files for pull in state.pulls.values()) for path in paths)

    unnamed = [sha for sha, message in reversed(commits) if pull_named(message) is None]
    for sha in unnamed[:MAX_COMMIT_LOOKUPS]:
        if not untraced():
            return
        new = [n for n in adapter.pulls_with_commit(work.owner, work.repo, sha) if n not in state.pulls]
        state.pulls.update(adapter.read_pulls(work.owner, work.repo, new))


def _approvals(
    adapter: GitHubAdapter, work: Work, state: MergeGroupState, settings: Settings
) -> dict[int, list[Approval]]:
    """Each pull request's approvals, from zdm's own comments on it (author and signature checked)."""
    bot = adapter.app_slug()
    repository = f"{work.owner}/{work.repo}"
    return {
        number: read_approvals(
            [c.body for c in pull.comments if c.author_is_bot and c.author == bot],
            settings.approval_key(),
            repository,
            number,
        )
        for number, pull in state.pulls.items()
    }


def report_failure(work: Work, settings: Settings, connection: Redis, reason: str) -> None:
    """The last attempt failed: fail the group's check closed, so the queue moves on instead of timing out."""
    if work.head_sha is None or work.base_sha is None:
        return
    with GitHubAdapter(settings, connection, work.installation_id) as adapter:
        adapter.publish_merge_group_check_run(
            work.owner,
            work.repo,
            work.head_sha,
            work.base_sha,
            "failure",
            "zdm could not finish",
            f"zdm could not check this merge group: `{reason}`.\n\nQueue the pull requests again once GitHub "
            "answers again. The check fails closed: a migration zdm has not read is not assumed safe.",
            [],
        )
