"""Review a pull request: read it from GitHub, analyse its migrations, report back. Orchestration only."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from redis import Redis

from bot.analysis.config import CONFIG_PATH, STATS_PATH, ConfigError, RepoConfig, parse_config, with_stats
from bot.analysis.history import Hazard, RootHistory, find_hazards, history_files
from bot.analysis.model import FileResult
from bot.analysis.prisma import PrismaVersion, lock_file_path
from bot.analysis.roots import provider_of
from bot.analysis.snapshot import (
    RootSnapshot,
    SchemaStore,
    analyze_root_snapshot,
    prisma_version_from,
    roots_of,
)
from bot.commands import read_approvals
from bot.events import Work
from bot.github import DEFAULT_ROOTS, CommitRange, GitHubAdapter, PullRequestState
from bot.logs import log
from bot.queue import superseded
from bot.report.pull_request import (
    Approval,
    ChangedMigration,
    PullRequestReport,
    build_report,
    comments_to_post,
)
from bot.settings import Settings
from workers.replay_cache import RedisSchemaStore

APPROVE_ACTION = {
    "label": "Approve",
    "description": "Approve these findings (write access)",
    "identifier": "approve",
}


def roots_key(work: Work) -> str:
    return f"zdm:roots:{work.owner}/{work.repo}"


def repo_config(state: CommitRange) -> tuple[RepoConfig, list[str]]:
    """The repository's settings at the base commit: a pull request (or a merge group) cannot loosen its own
    gate."""
    notes: list[str] = []
    text = state.base_texts.get(CONFIG_PATH)
    try:
        config = parse_config(text, CONFIG_PATH) if text is not None else RepoConfig()
    except ConfigError as error:
        notes.append(f"{error} (using the defaults)")
        config = RepoConfig()
    stats = state.base_texts.get(STATS_PATH)
    if stats is not None:
        try:
            config = with_stats(config, stats)
        except ConfigError as error:
            notes.append(str(error))
    return config, notes


def analyse(
    state: CommitRange, config: RepoConfig, notes: list[str], schemas: SchemaStore | None = None
) -> tuple[list[ChangedMigration], PrismaVersion | None]:
    changes: list[ChangedMigration] = []
    prisma: PrismaVersion | None = None
    for root, folders in sorted(roots_of(state.changed_migrations()).items()):
        provider = provider_of(state.head_texts.get(lock_file_path(root)))
        if provider != "postgresql":
            notes.append(f"`{root}`: provider is {provider!r}, not postgresql; not reviewed")
            continue
        if not config.wants_root(root):
            continue
        head_root = state.head_roots.get(root) or {}
        earlier = dict(state.base_roots.get(root) or {})
        snapshot = RootSnapshot(
            root,
            provider,
            earlier={name: text for name, text in earlier.items() if name not in folders},
            changed={name: head_root[name] for name in folders if name in head_root},
            prisma=prisma_version_from(root, state.head_texts.get),
        )
        prisma = prisma or snapshot.prisma
        results: list[FileResult] = analyze_root_snapshot(snapshot, config, schemas)
        for result in results:
            folder = result.path.rsplit("/", 2)[-2]
            commentable = (
                state.diff_lines.get(result.path) if state.files.get(result.path) != "ADDED" else None
            )
            changes.append(ChangedMigration(result.path, snapshot.changed[folder], result, commentable))
    return changes, prisma


def history_hazards(state: CommitRange, config: RepoConfig) -> list[Hazard]:
    """What the pull request does to the history of each PostgreSQL root it touches (an applied migration
    edited, renamed or deleted, one added out of order, the lock file changed)."""
    hazards: list[Hazard] = []
    for root in state.history_roots(state.head_roots):
        if not config.wants_root(root):
            continue
        history = RootHistory(
            root,
            state.base_roots.get(root) or {},
            state.head_roots.get(root) or {},
            history_files(root, state.base_texts),
            history_files(root, state.head_texts),
            postgres_version=config.postgres_version,
        )
        providers = {
            provider_of(history.base_files.get(history.lock_path)),
            provider_of(history.head_files.get(history.lock_path)),
        }
        if "postgresql" in providers:
            hazards.extend(find_hazards(history, config))
    return hazards


@dataclass
class Inspection:
    """A pull request read and analysed, before anything is written."""

    work: Work
    head: str
    state: PullRequestState
    config: RepoConfig
    changes: list[ChangedMigration]
    prisma: PrismaVersion | None
    notes: list[str]
    bot: str
    approvals: list[Approval]
    report: PullRequestReport
    hazards: list[Hazard]


def review(work: Work, settings: Settings, connection: Redis) -> PullRequestReport | None:
    with GitHubAdapter(settings, connection, work.installation_id) as adapter:
        inspection = inspect(adapter, work, settings, connection)
        if inspection is None:
            return None
        publish(adapter, inspection)
        return inspection.report


def approvals_in(state: PullRequestState, bot: str, settings: Settings, repository: str) -> list[Approval]:
    """Approvals recorded in zdm's own comments (author and signature both checked)."""
    mine = [c.body for c in state.comments if c.author_is_bot and c.author == bot]
    return read_approvals(mine, settings.approval_key(), repository, state.number)


def inspect(adapter: GitHubAdapter, work: Work, settings: Settings, connection: Redis) -> Inspection | None:
    assert work.pull_number is not None
    owner, repo, number = work.owner, work.repo, work.pull_number
    head, base = work.head_sha, work.base_sha
    if head is None or base is None:
        head, base = adapter.pull_request_commits(owner, repo, number)
    known = connection.get(roots_key(work))
    roots = json.loads(known) if known else list(DEFAULT_ROOTS)
    state = adapter.read_pull_request(owner, repo, number, head, base, roots)
    if state.head_sha != head:
        log.info("review.outdated", pull=number, head=head, current=state.head_sha)
        if work.kind == "review" and work.event == "pull_request":
            if superseded(connection, work):
                return None  # the push that moved the head has its own delivery, queued after this one
            # The latest delivery for the pull request reviews its current head: deliveries may arrive out of
            # order, and one for a newer head that arrived before this one was passed over as superseded.
            head, base = state.head_sha, state.base_sha
            state = adapter.read_pull_request(owner, repo, number, head, base, roots)
        head = state.head_sha
    changed_paths = state.changed_migrations()
    missing = [r for r in state.history_roots(state.head_roots) if r not in state.head_roots]
    if missing:
        adapter.read_roots(owner, repo, state, missing)
        connection.set(roots_key(work), json.dumps(sorted({*roots, *missing})))
    modified = [p for p in changed_paths if state.files[p] != "ADDED"]
    if modified:
        state.diff_lines = adapter.diff_lines(owner, repo, number, modified)
    config, notes = repo_config(state)
    schemas = RedisSchemaStore(connection, f"{owner}/{repo}", settings.approval_key())
    changes, prisma = analyse(state, config, notes, schemas)
    hazards = history_hazards(state, config)
    bot = adapter.app_slug()
    approvals = approvals_in(state, bot, settings, f"{owner}/{repo}")
    report = build_report(changes, prisma, approvals, notes, config.review.comment_on_brief, hazards=hazards)
    return Inspection(work, head, state, config, changes, prisma, notes, bot, approvals, report, hazards)


def with_approval(inspection: Inspection, approval: Approval) -> Inspection:
    approvals = [*inspection.approvals, approval]
    report = build_report(
        inspection.changes,
        inspection.prisma,
        approvals,
        inspection.notes,
        inspection.config.review.comment_on_brief,
        hazards=inspection.hazards,
    )
    return replace(inspection, approvals=approvals, report=report)


def publish(adapter: GitHubAdapter, inspection: Inspection) -> None:
    work, state, report = inspection.work, inspection.state, inspection.report
    owner, repo, number = work.owner, work.repo, state.number
    inline, files = comments_to_post(report.comments, state.commented_digests)
    # Comments first, the check run last: a retried job finds what it already posted and adds only the rest.
    adapter.post_review(owner, repo, number, inspection.head, inline)
    state.commented_digests |= {c.digest for c in inline}
    for file_comment in files:
        adapter.post_file_comment(owner, repo, number, inspection.head, file_comment)
        state.commented_digests |= file_comment.digests
    summary = adapter.summary_comment(state, inspection.bot)
    if inspection.changes or inspection.hazards or summary is not None:
        adapter.upsert_summary(owner, repo, number, summary, report.summary_comment)
    adapter.publish_check_run(
        owner,
        repo,
        state.check_run_id,
        inspection.head,
        number,
        report.conclusion,
        report.title,
        report.summary,
        report.annotations,
        [APPROVE_ACTION] if report.conclusion == "failure" else [],
        state.check_run_annotations,
    )
    state.check_run_annotations = max(state.check_run_annotations, len(report.annotations))
    log.info(
        "review.done",
        repo=f"{owner}/{repo}",
        pull=number,
        head=inspection.head,
        conclusion=report.conclusion,
        migrations=len(inspection.changes),
        comments=len(inline),
        file_comments=len(files),
    )
