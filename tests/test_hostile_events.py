"""Hostile webhooks and comments: whatever arrives, the receiver answers 2xx, 400, 401 or 413, never 500,
and the event reader and command parser never raise anything but their own clear errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from bot.commands import parse_commands
from bot.events import EventError, work_for
from bot.settings import Settings
from bot.web import create_app
from tests.fakegithub.harness import sign
from tests.fakegithub.spec import webhook_example

SECRET = "hostile-test-secret"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
EVENTS = st.sampled_from(
    ["pull_request", "issue_comment", "check_run", "check_suite", "merge_group", "ping", "push", ""]
)


def mutated(event: str, payload: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    node: Any = payload
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return payload
        node = node[key]
    if isinstance(node, dict):
        node[path[-1]] = value
    return payload


@pytest.fixture(scope="module")
def client(redis_server: str) -> Iterator[TestClient]:
    settings = Settings.model_validate({"GITHUB_WEBHOOK_SECRET": SECRET, "ZDM_QUEUE": "hostile"})
    with TestClient(create_app(settings, Redis.from_url(redis_server))) as test_client:
        yield test_client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=EVENTS, payload=JSON)
def test_any_signed_json_gets_a_clean_answer(client: TestClient, event: str, payload: Any) -> None:
    body = json.dumps(payload).encode()
    answer = client.post(
        "/api/github/webhooks",
        content=body,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "fuzz",
            "X-Hub-Signature-256": sign(SECRET, body),
        },
    )
    assert answer.status_code in (200, 202, 400), answer.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=st.sampled_from(
        [
            ("pull_request", "opened"),
            ("issue_comment", "created"),
            ("check_run", "requested_action"),
            ("merge_group", "checks_requested"),
        ]
    ),
    path=st.lists(
        st.sampled_from(
            [
                "pull_request",
                "head",
                "sha",
                "number",
                "comment",
                "body",
                "user",
                "installation",
                "id",
                "repository",
                "owner",
                "issue",
                "check_run",
                "external_id",
                "merge_group",
                "head_sha",
                "base_sha",
                "head_ref",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
    value=JSON,
)
def test_githubs_payloads_with_any_field_broken_never_crash_the_reader(
    event: tuple[str, str], path: list[str], value: Any
) -> None:
    payload = mutated(event[0], webhook_example(*event), path, value)
    payload.setdefault("installation", {"id": 1})
    with contextlib.suppress(EventError):
        work_for(event[0], "d", payload)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_garbage_bodies_are_refused_cleanly(client: TestClient, body: bytes) -> None:
    answer = client.post(
        "/api/github/webhooks",
        content=body,
        headers={
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "g",
            "X-Hub-Signature-256": sign(SECRET, body),
        },
    )
    assert answer.status_code in (202, 400)


@given(st.text(max_size=300))
def test_the_command_parser_takes_any_comment(body: str) -> None:
    for command in parse_commands(body):
        assert command.verb in ("approve", "recheck", "help", "unknown")
