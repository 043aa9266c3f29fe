"""Which webhook deliveries zdm acts on, and the small work item the receiver queues for each (pure).

The receiver keeps none of the payload but these fields: the worker reads everything else from GitHub at the
commits named here, so a queued job stays small and a redelivered event reads the same state.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from bot.merge_queue import queued_pull

REVIEW_ACTIONS = {"opened", "synchronize", "reopened", "ready_for_review"}
COMMIT_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
# The installation is gone, suspended, or lost repositories: zdm stops work for them and forgets them.
FORGET = "forget"
LIFECYCLE = {
    ("installation", "deleted"),
    ("installation", "suspend"),
    ("installation_repositories", "removed"),
}


@dataclass(frozen=True, slots=True)
class Work:
    kind: str  # review | command | approve-button | merge-group | forget
    delivery: str
    event: str
    action: str
    installation_id: int
    owner: str
    repo: str
    pull_number: int | None = None
    head_sha: str | None = None
    base_sha: str | None = None
    # A merge group's branch (`gh-readonly-queue/<base>/pr-<number>-<sha>`) and the branch it merges into.
    head_ref: str | None = None
    base_ref: str | None = None
    comment_id: int | None = None
    comment_body: str | None = None
    actor: str | None = None
    actor_is_bot: bool = False
    # Times the job was put off until a rate limit lifted.
    reschedules: int = 0
    # `forget`: the repositories ("owner/name") removed, or none for all of the account's (`owner`).
    repositories: tuple[str, ...] = ()

    def lock_key(self) -> str:
        """Jobs holding the same key run one at a time: one per pull request, one per merge group."""
        if self.kind == "merge-group":
            return f"zdm:lock:{self.owner}/{self.repo}@{self.head_sha}"
        return f"zdm:lock:{self.owner}/{self.repo}#{self.pull_number}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Work:
        return cls(**{**data, "repositories": tuple(data.get("repositories") or ())})


class EventError(ValueError):
    """A payload that claims to be an event zdm handles but lacks what it needs."""


def _work(kind: str, delivery: str, event: str, action: str, payload: dict[str, Any], **fields: Any) -> Work:
    """Work on the delivery's repository, as its installation."""
    repository = payload["repository"]
    return Work(
        kind,
        delivery,
        event,
        action,
        int(payload["installation"]["id"]),
        str(repository["owner"]["login"]),
        str(repository["name"]),
        **fields,
    )


def _pull_number_from_external_id(external_id: object) -> int | None:
    # zdm's check runs carry "pr:<number>" so a re-run finds its pull request even from a fork.
    if isinstance(external_id, str) and external_id.startswith("pr:"):
        number = external_id.split(":", 2)[1]
        if number.isdigit():
            return int(number)
    return None


def work_for(event: str, delivery: str, payload: dict[str, Any]) -> Work | None:
    """The work a delivery asks for, or None for events and actions zdm acknowledges and ignores.

    A payload missing or mistyping a field zdm reads raises EventError, whatever the field."""
    try:
        return _work_for(event, delivery, payload)
    except EventError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise EventError(f"{event} payload: unexpected shape ({type(error).__name__}: {error})") from error


def _work_for(event: str, delivery: str, payload: dict[str, Any]) -> Work | None:
    action = str(payload.get("action", ""))
    if (event, action) in LIFECYCLE:
        return _forget(delivery, event, action, payload)
    if event == "pull_request":
        pull = payload.get("pull_request") or {}
        if action == "edited" and "base" not in (payload.get("changes") or {}):
            return None
        if action not in REVIEW_ACTIONS and action != "edited":
            return None
        return _work(
            "review",
            delivery,
            event,
            action,
            payload,
            pull_number=int(payload.get("number") or pull["number"]),
            head_sha=str(pull["head"]["sha"]),
            base_sha=str(pull["base"]["sha"]),
        )
    # GitHub sends `rerequested` and `requested_action` only to the App that created the check run.
    if event == "check_run" and action in ("rerequested", "requested_action"):
        check_run = payload.get("check_run") or {}
        number = _pull_number_from_external_id(check_run.get("external_id"))
        if number is None:
            pulls = check_run.get("pull_requests") or []
            number = int(pulls[0]["number"]) if pulls else None
        if number is None:
            return None
        sender = payload.get("sender") or {}
        kind = "review"
        if action == "requested_action":
            if (payload.get("requested_action") or {}).get("identifier") != "approve":
                return None
            kind = "approve-button"
        return _work(
            kind,
            delivery,
            event,
            action,
            payload,
            pull_number=number,
            head_sha=str(check_run.get("head_sha") or "") or None,
            actor=sender.get("login"),
            actor_is_bot=sender.get("type") == "Bot",
        )
    if event == "check_suite" and action == "rerequested":
        suite = payload.get("check_suite") or {}
        pulls = suite.get("pull_requests") or []
        if not pulls:
            return None
        return _work(
            "review",
            delivery,
            event,
            action,
            payload,
            pull_number=int(pulls[0]["number"]),
            head_sha=str(suite.get("head_sha") or "") or None,
        )
    if event == "merge_group":
        return _merge_group(delivery, action, payload)
    if event == "issue_comment" and action == "created":
        issue = payload.get("issue") or {}
        comment = payload.get("comment") or {}
        if "pull_request" not in issue or "/zdm" not in str(comment.get("body") or ""):
            return None
        user = comment.get("user") or {}
        if user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]"):
            return None  # zdm's own replies, and other bots: never commands
        return _work(
            "command",
            delivery,
            event,
            action,
            payload,
            pull_number=int(issue["number"]),
            comment_id=int(comment["id"]),
            comment_body=str(comment.get("body") or ""),
            actor=user.get("login"),
        )
    return None


def _merge_group(delivery: str, action: str, payload: dict[str, Any]) -> Work | None:
    """`checks_requested`: GitHub's merge queue waits for the required checks on the group's head commit.
    `destroyed` (merged, dequeued or invalidated): nothing waits for zdm any more, and nothing is undone."""
    if action != "checks_requested":
        return None
    group = payload["merge_group"]
    head, base = str(group["head_sha"]), str(group["base_sha"])
    # Both go into request paths and query expressions: commit SHAs (SHA-1, or SHA-256 repositories) only.
    if not COMMIT_SHA.fullmatch(head) or not COMMIT_SHA.fullmatch(base):
        raise EventError("merge_group payload: head_sha and base_sha must be commit SHAs")
    head_ref = str(group.get("head_ref") or "")
    return _work(
        "merge-group",
        delivery,
        "merge_group",
        action,
        payload,
        pull_number=queued_pull(head_ref),
        head_sha=head,
        base_sha=base,
        head_ref=head_ref,
        base_ref=str(group.get("base_ref") or "").removeprefix("refs/heads/"),
    )


def _forget(delivery: str, event: str, action: str, payload: dict[str, Any]) -> Work | None:
    """An installation belongs to one account: deleted or suspended, all of the account's repositories go (the
    payload lists them only for a selection); `installation_repositories.removed` names the ones that go."""
    installation = payload["installation"]
    removed: tuple[str, ...] = ()
    if event == "installation_repositories":
        removed = tuple(str(r["full_name"]) for r in payload["repositories_removed"])
        if not removed:
            return None
    return Work(
        FORGET,
        delivery,
        event,
        action,
        int(installation["id"]),
        str(installation["account"]["login"]),
        "",
        repositories=removed,
    )
