"""The merge queue on its own (pure): which deliveries become work, on GitHub's own `merge_group` payloads;
which pull requests a group holds and which of them changed each file; approvals narrowed to them; the
check run a group gets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource

from bot.events import EventError, Work, work_for
from bot.merge_queue import group_pulls, origins, pull_named, queued_pull, root_changes
from bot.report.merge_group import merge_group_report, scoped_approvals
from bot.report.pull_request import Approval, Flagged
from tests.fakegithub.spec import rest_description, webhook_example


def merge_group_payload(action: str = "checks_requested") -> dict[str, Any]:
    payload = webhook_example("merge_group", "checks_requested")
    payload["action"] = action
    payload["installation"] = {"id": 5, "node_id": "MDIz"}
    if action == "destroyed":
        # @octokit/webhooks-examples has no `destroyed` payload: GitHub's schema for it is the same group, with
        # why it was destroyed.
        payload["reason"] = "dequeued"
    return payload


def webhook_schema_errors(name: str, payload: dict[str, Any]) -> list[str]:
    """What GitHub's published schema for the webhook (`@octokit/openapi`'s `x-webhooks`) finds wrong."""
    description = rest_description()
    schema = description["x-webhooks"][name]["post"]["requestBody"]["content"]["application/json"]["schema"]
    resource = Resource.opaque(description)
    registry = Registry().with_resource("", resource)
    validator = OAS30Validator({**schema, "components": description["components"]}, registry=registry)
    return [error.message for error in validator.iter_errors(payload)]


def test_githubs_merge_group_example_becomes_merge_group_work() -> None:
    payload = merge_group_payload()
    assert webhook_schema_errors("merge-group-checks-requested", payload) == []
    work = work_for("merge_group", "d1", payload)
    assert isinstance(work, Work) and work.kind == "merge-group"
    group = payload["merge_group"]
    assert (work.head_sha, work.base_sha) == (group["head_sha"], group["base_sha"])
    # refs/heads/gh-readonly-queue/main/pr-104-929f…: the pull request whose queueing made the group.
    assert work.pull_number == 104 and work.base_ref == "main"
    assert work.lock_key() == f"zdm:lock:octo-org/octo-repo@{group['head_sha']}"
    assert Work.from_dict(work.as_dict()) == work


def test_a_destroyed_group_is_acknowledged_and_nothing_more() -> None:
    payload = merge_group_payload("destroyed")
    assert webhook_schema_errors("merge-group-destroyed", payload) == []
    assert work_for("merge_group", "d2", payload) is None


@pytest.mark.parametrize("sha", ["", "HEAD", "../../app/installations", "2ffea6db" * 6, "A" * 40])
def test_a_group_whose_commits_are_not_shas_is_refused(sha: str) -> None:
    payload = merge_group_payload()
    payload["merge_group"]["head_sha"] = sha
    with pytest.raises(EventError):
        work_for("merge_group", "d3", payload)


def test_the_groups_pull_requests_come_from_its_branch_and_commit_messages() -> None:
    assert (
        queued_pull("refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64")
        == 104
    )
    assert queued_pull("refs/heads/gh-readonly-queue/release/2.x/pr-7-abc123") == 7
    assert queued_pull("refs/heads/feature/pr-7-abc123") is None
    assert pull_named("Merge pull request #2048 from octo-repo/update-readme\n\nUpdate README.md") == 2048
    assert pull_named("Add the audit table (#12)\n\n* wip\n* Fixes #3") == 12
    assert pull_named("Fixes #3 in the parser") is None
    assert pull_named("Merge branch 'main' into feature") is None
    messages = [
        "Merge pull request #12 from acme/a",
        "wip",
        "Add audit (#13)",
        "Merge pull request #12 from acme/a",
    ]
    assert group_pulls("refs/heads/gh-readonly-queue/main/pr-14-0abc", messages) == [12, 13, 14]


def test_each_changed_file_is_traced_to_the_pull_requests_that_change_it() -> None:
    found = origins(
        ["m/1/migration.sql", "m/2/migration.sql", "m/3/migration.sql"],
        {12: ["m/1/migration.sql", "README.md"], 13: ["m/2/migration.sql", "m/1/migration.sql"]},
    )
    assert found == {"m/1/migration.sql": (12, 13), "m/2/migration.sql": (13,), "m/3/migration.sql": ()}


def test_migrations_changed_are_read_from_the_roots_trees() -> None:
    base = {"1_init": "a", "2_edit": "b", "3_gone": "c"}
    head = {"1_init": "a", "2_edit": "B", "4_new": "d"}
    assert root_changes("prisma/migrations", base, head) == {
        "prisma/migrations/2_edit/migration.sql": "MODIFIED",
        "prisma/migrations/3_gone/migration.sql": "DELETED",
        "prisma/migrations/4_new/migration.sql": "ADDED",
    }
    assert root_changes("m", None, {"1": "x"}) == {"m/1/migration.sql": "ADDED"}


def flagged(digest: str, path: str) -> Flagged:
    return Flagged(digest, path, 1, 1, ("create-index",), "CREATE INDEX ...")


def test_an_approval_covers_the_same_statements_in_the_files_its_pull_request_changes() -> None:
    items = [
        flagged("d1", "m/1/migration.sql"),
        flagged("d2", "m/2/migration.sql"),
        flagged("d1", "m/3/x.sql"),
    ]
    found = {"m/1/migration.sql": (12,), "m/2/migration.sql": (13,), "m/3/x.sql": ()}
    given = Approval("captain", "small table", frozenset({"d1", "d2", "old"}), "2024-01-01T00:00:00Z")
    scoped = scoped_approvals(items, found, {12: [given], 14: [given]})
    # #12 changed only the first file: its approval covers d1 there, not the same statement elsewhere; #14
    # changed none of them.
    assert scoped == [replace(given, paths=frozenset({"m/1/migration.sql"}))]
    assert [item.path for item in items if scoped[0].covers(item)] == ["m/1/migration.sql"]


def test_a_group_without_migration_changes_passes_naming_its_pull_requests() -> None:
    report = merge_group_report([], None, [], [], {}, {}, [12, 13], "main")
    assert report.conclusion == "success"
    assert report.title == "No migration changes"
    assert "#12, #13" in report.summary and "`main`" in report.summary
    assert report.annotations == () and report.comments == ()
