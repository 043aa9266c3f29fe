"""`/zdm` commands and the check run's Approve button: who asked, whether they may, what it changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from redis import Redis

from bot.commands import HELP, Command, approval_marker, parse_commands
from bot.events import Work
from bot.github import GitHubAdapter
from bot.logs import log
from bot.report.pull_request import MAX_COMMENT, Approval, fit_blocks
from bot.settings import Settings
from workers.review import Inspection, inspect, publish, with_approval

WRITE_ROLES = ("write", "maintain", "admin")


def run_command(work: Work, settings: Settings, connection: Redis) -> None:
    assert work.pull_number is not None
    if work.actor_is_bot:
        log.info("command.ignored", reason="comment by a bot", actor=work.actor)
        return
    if work.kind == "approve-button":
        with GitHubAdapter(settings, connection, work.installation_id) as adapter:
            approve(adapter, work, Command("approve"), settings, connection)
        return
    commands = parse_commands(work.comment_body or "")
    if not commands:
        return  # `/zdm` inside a sentence or a quote: not a command
    with GitHubAdapter(settings, connection, work.installation_id) as adapter:
        if work.comment_id is not None:
            adapter.react(work.owner, work.repo, work.comment_id, "eyes")
        command = commands[0]
        if command.verb in ("help", "unknown"):
            prefix = "" if command.verb == "help" else f"`{command.argument}` is not a zdm command.\n\n"
            adapter.reply(work.owner, work.repo, work.pull_number, prefix + HELP)
        elif command.verb == "recheck":
            inspection = inspect(adapter, _current_head(work), settings, connection)
            if inspection is not None:
                publish(adapter, inspection)
                adapter.reply(
                    work.owner,
                    work.repo,
                    work.pull_number,
                    f"@{work.actor}: rechecked `{inspection.head[:7]}`: {inspection.report.title}.",
                )
        else:
            approve(adapter, work, command, settings, connection)


def _current_head(work: Work) -> Work:
    # Commands carry no commit: the review reads the pull request's current head and base.
    return replace(work, kind="review", head_sha=None, base_sha=None)


def refusal(adapter: GitHubAdapter, work: Work, inspection: Inspection) -> str | None:
    """Why the actor may not approve, or None when they may."""
    actor = work.actor or ""
    rules = inspection.config.approvals
    if actor.lower() == inspection.state.author.lower() and not rules.allow_author:
        return (
            "the author of a pull request cannot approve its own migration "
            "(`approvals.allow_author` in `.github/zdm.yml` allows it)"
        )
    role = adapter.permission(work.owner, work.repo, actor)
    if role not in WRITE_ROLES:
        return f"approving needs write, maintain or admin permission on this repository; yours is `{role}`"
    if rules.users or rules.teams:
        if actor.lower() in {u.lower() for u in rules.users}:
            return None
        for team in rules.teams:
            org, _, slug = team.partition("/")
            if slug and adapter.in_team(org, slug, actor):
                return None
        listed = ", ".join([*(f"@{u}" for u in rules.users), *(f"@{t}" for t in rules.teams)])
        return f"`.github/zdm.yml` limits approvals to {listed}"
    return None


def approve(
    adapter: GitHubAdapter, work: Work, command: Command, settings: Settings, connection: Redis
) -> None:
    assert work.pull_number is not None
    inspection = inspect(adapter, _current_head(work), settings, connection)
    if inspection is None:
        return
    who = f"@{work.actor}"
    # The reason is recorded twice in zdm's reply (in words and in the signed record): bounded, so both fit.
    reason = command.argument.strip()[:2_000] or (
        "via the Approve button" if work.kind == "approve-button" else ""
    )
    why_not = refusal(adapter, work, inspection)
    if why_not is not None:
        adapter.reply(work.owner, work.repo, work.pull_number, f"{who}: approval refused: {why_not}.")
        log.info("approval.refused", actor=work.actor, pull=work.pull_number, reason=why_not)
        return
    pending = inspection.report.unapproved
    if not pending:
        adapter.reply(
            work.owner,
            work.repo,
            work.pull_number,
            f"{who}: nothing to approve: no flagged statement is waiting.",
        )
        return
    if not reason:
        adapter.reply(
            work.owner,
            work.repo,
            work.pull_number,
            f"{who}: say why: `/zdm approve <reason>` (the reason is recorded).",
        )
        return
    approval = Approval(
        work.actor or "",
        reason,
        frozenset(f.digest for f in pending),
        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    record = approval_marker(approval, settings.approval_key(), f"{work.owner}/{work.repo}", work.pull_number)
    # The record must stay whole; the list of what it covers is cut to fit beside it.
    listed = "\n".join(
        fit_blocks(
            [f"- `{f.path}` line {f.line_start}: {', '.join(f.rule_ids)}" for f in pending],
            MAX_COMMENT - len(record) - len(reason) - 1_000,
            lambda n: f"- … {n} more: run `zdm check`",
        )
    )
    # The reply is the record: it lives on GitHub, signed, and is read back by every later review.
    adapter.reply(
        work.owner,
        work.repo,
        work.pull_number,
        f"{record}\nApproved by {who}: {reason}\n\nCovers these statements as they are now (changing one, or "
        f"adding another, needs a new approval):\n\n{listed}",
    )
    publish(adapter, with_approval(inspection, approval))
    log.info("approval.recorded", actor=work.actor, pull=work.pull_number, statements=len(pending))
