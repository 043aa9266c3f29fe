"""The fake GitHub keeps GitHub's rules that zdm depends on: logins as REST and GraphQL each spell them, 422 for
a body over 65,536 characters, `Blob.text` cut at 512,000 bytes, connections of at most 100 and the node limit,
a query too big to answer in time."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakegithub.harness import serve_in_thread
from tests.fakegithub.server import create_app
from tests.fakegithub.state import GitHubState, Repository, blob_oid

TOKEN = "ghs_fake_test_token"
INSTALLATION = 11
BIG = (
    "-- seed\n" + "INSERT INTO \"Seed\" VALUES (1, 'ü');\n" * 15_000 + 'CREATE INDEX "i" ON "Order"("id");\n'
)


@pytest.fixture
def github() -> Iterator[tuple[GitHubState, httpx.Client, Repository]]:
    state = GitHubState(1, "zdm-test", "unused")
    state.tokens[TOKEN] = INSTALLATION
    repo = state.add_repo("acme", "app", INSTALLATION)
    base = state.commit(repo, {"README.md": "# app\n"})
    head = state.commit(repo, {"db/migration.sql": BIG}, parent=base)
    state.open_pull(repo, "octo-dev", base, head)
    with (
        serve_in_thread(create_app(state)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"token {TOKEN}"}, timeout=30) as client,
    ):
        yield state, client, repo


def graphql(client: httpx.Client, query: str, **variables: Any) -> httpx.Response:
    answer = client.post("/graphql", json={"query": query, "variables": variables})
    return answer


def test_a_body_over_65536_characters_is_refused_as_github_refuses_it(
    github: tuple[GitHubState, httpx.Client, Repository],
) -> None:
    _, client, repo = github
    answer = client.post("/repos/acme/app/issues/1/comments", json={"body": "x" * 65_537})
    assert answer.status_code == 422
    assert answer.json()["message"] == "Validation Failed"
    (error,) = answer.json()["errors"]
    assert error == {
        "resource": "IssueComment",
        "code": "unprocessable",
        "field": "data",
        "message": "Body is too long (maximum is 65536 characters)",
    }
    assert client.post("/repos/acme/app/issues/1/comments", json={"body": "x" * 65_536}).status_code == 201
    pull = repo.pulls[1]
    review = {
        "commit_id": pull.head_sha,
        "event": "COMMENT",
        "comments": [{"path": "db/migration.sql", "line": 1, "side": "RIGHT", "body": "y" * 70_000}],
    }
    answer = client.post("/repos/acme/app/pulls/1/reviews", json=review)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["resource"] == "PullRequestReviewComment"
    assert repo.reviews == []  # all or nothing, as GitHub creates a review


def test_logins_follow_githubs_conventions(github: tuple[GitHubState, httpx.Client, Repository]) -> None:
    _, client, _ = github
    comment = client.post("/repos/acme/app/issues/1/comments", json={"body": "hello"}).json()
    assert (comment["user"]["login"], comment["user"]["type"]) == ("zdm-test[bot]", "Bot")
    data = graphql(
        client,
        'query($n: Int!) { repository(owner: "acme", name: "app") { pullRequest(number: $n) {'
        " comments(last: 10) { nodes { author { __typename login } } } } } }",
        n=1,
    ).json()["data"]
    (node,) = data["repository"]["pullRequest"]["comments"]["nodes"]
    assert node["author"] == {"__typename": "Bot", "login": "zdm-test"}


def test_blob_text_stops_at_512000_bytes_and_rest_serves_it_whole(
    github: tuple[GitHubState, httpx.Client, Repository],
) -> None:
    state, client, repo = github
    head = repo.pulls[1].head_sha
    data = graphql(
        client,
        'query($e: String!) { repository(owner: "acme", name: "app") { object(expression: $e) {'
        " ... on Blob { oid byteSize isTruncated text } } } }",
        e=f"{head}:db/migration.sql",
    ).json()["data"]["repository"]["object"]
    assert data["isTruncated"] is True
    assert data["byteSize"] == len(BIG.encode()) > 512_000
    assert len(data["text"].encode()) <= 512_000 and BIG.startswith(data["text"])
    assert data["oid"] == blob_oid(BIG)
    blob = client.get(f"/repos/acme/app/git/blobs/{data['oid']}").json()
    assert base64.b64decode(blob["content"]).decode() == BIG
    assert state.violations == []


def test_connections_are_paged_by_at_most_100_and_queries_kept_under_the_node_limit(
    github: tuple[GitHubState, httpx.Client, Repository],
) -> None:
    state, client, repo = github
    for n in range(250):
        state.user_comment(repo, 1, "octo-dev", f"comment {n}")
    too_many = graphql(
        client,
        '{ repository(owner: "acme", name: "app") { pullRequest(number: 1) {'
        " comments(first: 101) { nodes { body } } } } }",
    ).json()
    assert too_many["errors"][0]["type"] == "EXCESSIVE_PAGINATION"
    bodies: list[str] = []
    cursor = None
    while True:
        page = graphql(
            client,
            'query($c: String) { repository(owner: "acme", name: "app") { pullRequest(number: 1) {'
            " comments(last: 100, before: $c) { pageInfo { hasPreviousPage startCursor } nodes { body } } } } }",
            c=cursor,
        ).json()["data"]["repository"]["pullRequest"]["comments"]
        bodies = [n["body"] for n in page["nodes"]] + bodies
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        cursor = page["pageInfo"]["startCursor"]
    assert bodies == [f"comment {n}" for n in range(250)]
    nested = graphql(
        client,
        '{ repository(owner: "acme", name: "app") { pullRequest(number: 1) {'
        " reviews(first: 100) { nodes { comments(first: 100) { nodes { reactions(first: 100) { totalCount } } } } }"
        " } } }",
    ).json()
    assert nested["errors"][0]["type"] == "MAX_NODE_LIMIT_EXCEEDED"


def test_a_query_too_big_to_answer_in_time_gets_githubs_timeout(
    github: tuple[GitHubState, httpx.Client, Repository],
) -> None:
    state, client, repo = github
    state.graphql_response_limit = 100_000
    answer = graphql(
        client,
        'query($e: String!) { repository(owner: "acme", name: "app") { object(expression: $e) {'
        " ... on Blob { text } } } }",
        e=f"{repo.pulls[1].head_sha}:db/migration.sql",
    )
    assert answer.status_code == 502
    assert answer.json()["errors"][0]["message"].startswith("Something went wrong while executing your query")


def test_a_comparison_is_three_dot_and_capped_as_githubs(
    github: tuple[GitHubState, httpx.Client, Repository],
) -> None:
    from githubkit import GitHub

    state, client, repo = github
    base = repo.pulls[1].base_sha
    # The branch moves on after the pull request's base: BASE...HEAD diffs from their merge base, so a file
    # changed on the branch alone is not in the comparison.
    moved = state.commit(repo, {"CHANGELOG.md": "later\n"}, parent=base, message="On main")
    head = state.commit(
        repo,
        {f"docs/{n:03d}.md": f"{n}\n" for n in range(320)},
        parent=repo.pulls[1].head_sha,
        message="Docs",
    )
    answer = client.get(f"/repos/acme/app/compare/{moved}...{head}")
    assert answer.status_code == 200
    data = answer.json()
    assert (data["status"], data["ahead_by"], data["behind_by"], data["total_commits"]) == (
        "diverged",
        2,
        1,
        2,
    )
    assert data["merge_base_commit"]["sha"] == base
    assert [c["commit"]["message"] for c in data["commits"]] == ["Update files", "Docs"]
    assert len(data["files"]) == 300 and "CHANGELOG.md" not in {f["filename"] for f in data["files"]}
    # githubkit reads the answer as the description says it; paging shows files on the first page only.
    with GitHub(TOKEN, base_url=str(client.base_url)) as gh:
        parsed = gh.rest.repos.compare_commits("acme", "app", f"{moved}...{head}").parsed_data
        assert [c.sha for c in parsed.commits] == [repo.pulls[1].head_sha, head]
        second = gh.rest.repos.compare_commits("acme", "app", f"{moved}...{head}", page=2, per_page=1)
        assert [c.sha for c in second.parsed_data.commits] == [head] and not second.parsed_data.files
    assert client.get(f"/repos/acme/app/compare/{base}...{'0' * 40}").status_code == 404
    assert state.violations == []


def test_a_merge_queue_group_and_the_pull_requests_of_its_commits(
    github: tuple[GitHubState, httpx.Client, Repository],
) -> None:
    state, client, repo = github
    pull = repo.pulls[1]
    group = state.merge_group(repo, pull.base_sha, [pull], "merge")
    assert group.head_ref.endswith(f"/pr-{pull.number}-{pull.base_sha}")
    assert repo.parents[group.head_sha] == (pull.base_sha, pull.head_sha)
    # The pull request's own commit is associated with it; the merge queue's merge commit is not.
    own = client.get(f"/repos/acme/app/commits/{pull.head_sha}/pulls").json()
    assert [p["number"] for p in own] == [pull.number]
    assert client.get(f"/repos/acme/app/commits/{group.head_sha}/pulls").json() == []
    assert client.get(f"/repos/acme/app/commits/{'0' * 40}/pulls").status_code == 422
    assert state.violations == []


def test_an_unknown_pull_request_number_is_githubs_not_found_beside_the_rest(
    github: tuple[GitHubState, httpx.Client, Repository],
) -> None:
    _, client, _ = github
    answer = graphql(
        client,
        'query { repository(owner: "acme", name: "app") { a: pullRequest(number: 1) { number }'
        " b: pullRequest(number: 99) { number } } }",
    ).json()
    assert answer["data"]["repository"] == {"a": {"number": 1}, "b": None}
    (error,) = answer["errors"]
    assert error["type"] == "NOT_FOUND" and error["path"] == ["repository", "b"]
    assert error["message"] == "Could not resolve to a PullRequest with the number of 99."
