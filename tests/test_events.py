"""Which deliveries become work (pure), on GitHub's own example payloads."""

from __future__ import annotations

from bot.events import Work, work_for
from bot.github import added_lines
from tests.fakegithub.spec import webhook_example


def with_installation(payload: dict[str, object]) -> dict[str, object]:
    payload["installation"] = {"id": 5}
    return payload


def test_review_actions_become_review_work_with_both_commits() -> None:
    for action in ("opened", "synchronize", "reopened", "ready_for_review"):
        payload = with_installation(webhook_example("pull_request", action))
        work = work_for("pull_request", "d1", payload)
        assert isinstance(work, Work) and work.kind == "review"
        assert work.head_sha and work.base_sha and work.pull_number


def test_an_edit_matters_only_when_the_base_changed() -> None:
    # GitHub's examples have no `edited` pull request: an `opened` one with the action changed.
    payload = with_installation(webhook_example("pull_request", "opened"))
    payload["action"] = "edited"
    payload["changes"] = {"title": {"from": "old"}}
    assert work_for("pull_request", "d", payload) is None
    payload["changes"] = {"base": {"ref": {"from": "develop"}, "sha": {"from": "0" * 40}}}
    assert work_for("pull_request", "d", payload) is not None


def test_a_rerun_finds_its_pull_request_from_the_check_runs_external_id() -> None:
    payload = with_installation(webhook_example("check_run", "rerequested"))
    payload["check_run"]["external_id"] = "pr:42"  # type: ignore[index]
    payload["check_run"]["pull_requests"] = []  # type: ignore[index]
    work = work_for("check_run", "d", payload)
    assert work is not None and work.pull_number == 42


def test_comments_without_a_command_or_by_bots_and_closed_pulls_are_not_work() -> None:
    comment = with_installation(webhook_example("issue_comment", "created"))
    comment["issue"]["pull_request"] = {"url": "x"}  # type: ignore[index]
    comment["comment"]["body"] = "looks good"  # type: ignore[index]
    assert work_for("issue_comment", "d", comment) is None
    comment["comment"]["body"] = "/zdm recheck"  # type: ignore[index]
    assert work_for("issue_comment", "d", comment) is not None
    comment["comment"]["user"]["type"] = "Bot"  # type: ignore[index]
    assert work_for("issue_comment", "d", comment) is None
    assert work_for("pull_request", "d", with_installation(webhook_example("pull_request", "closed"))) is None


def test_commentable_lines_are_the_head_side_of_the_hunks() -> None:
    patch = "@@ -1,3 +1,4 @@\n a\n-b\n+c\n+d\n e\n@@ -10,2 +11,2 @@\n x\n-y\n+z"
    assert added_lines(patch) == frozenset({1, 2, 3, 4, 11, 12})


def test_an_installation_deleted_or_suspended_forgets_its_account_repositories_removed_only_those() -> None:
    deleted = work_for("installation", "d", webhook_example("installation", "deleted"))
    assert deleted is not None and deleted.kind == "forget"
    assert (deleted.installation_id, deleted.owner, deleted.repositories) == (2, "octocat", ())
    suspended = work_for("installation", "d", webhook_example("installation", "suspend"))
    assert suspended is not None and suspended.kind == "forget"
    # An installation on all of an account's repositories: the payload lists none, the account is what goes.
    assert (suspended.owner, suspended.repositories) == ("Codertocat", ())
    removed = work_for(
        "installation_repositories", "d", webhook_example("installation_repositories", "removed")
    )
    assert removed is not None and removed.repositories == ("octocat/Hello-World",)
    assert Work.from_dict(removed.as_dict()) == removed  # as RQ stores it
    created = webhook_example("installation", "deleted")
    created["action"] = "created"
    assert work_for("installation", "d", created) is None
