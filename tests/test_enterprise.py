"""GitHub Enterprise Server: GITHUB_API_URL=https://HOST/api/v3, REST under it and GraphQL at /api/graphql."""

from __future__ import annotations

from pathlib import Path

from tests.fakegithub.harness import app_under_test
from tests.test_app import BLOCKING, MIGRATIONS, completed_run, new_repo, open_pull, pull_request_payload


def test_a_review_on_github_enterprise_server_paths(redis_server: str, tmp_path: Path) -> None:
    with app_under_test(tmp_path, redis_server, workers=1, enterprise=True) as ghes:
        assert ghes.github_url.endswith("/api/v3")
        repo, base = new_repo(ghes, "ghes")
        pull = open_pull(ghes, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
        ghes.deliver("pull_request", pull_request_payload(repo, pull))
        assert completed_run(ghes, repo, pull.head_sha).conclusion == "failure"
        assert len(ghes.github.review_comments(repo, pull.number)) == 2
        assert ghes.github.violations == []
        assert any(call.path == "/graphql" for call in ghes.github.calls)
