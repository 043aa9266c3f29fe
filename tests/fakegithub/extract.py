"""Refresh the GitHub descriptions the fake is checked against, from GitHub's own npm packages.

    npm install --prefix /tmp/octokit @octokit/openapi @octokit/graphql-schema @octokit/webhooks-examples
    python tests/fakegithub/extract.py /tmp/octokit/node_modules/@octokit

The full REST description is 13 MB (385 MB with every GHES version): only the operations zdm calls, with
everything they reference, are kept. The GraphQL schema is kept whole (gzipped), the webhook payloads per
event and action zdm handles.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent / "spec"

OPERATIONS: dict[str, tuple[str, ...]] = {
    "/app": ("get",),
    "/app-manifests/{code}/conversions": ("post",),
    "/app/installations": ("get",),
    "/app/installations/{installation_id}/access_tokens": ("post",),
    "/app/hook/deliveries": ("get",),
    "/app/hook/deliveries/{delivery_id}/attempts": ("post",),
    "/repos/{owner}/{repo}/pulls/{pull_number}": ("get",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/files": ("get",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews": ("post",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/comments": ("post",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}": ("put",),
    "/repos/{owner}/{repo}/git/blobs/{file_sha}": ("get",),
    "/repos/{owner}/{repo}/compare/{basehead}": ("get",),
    "/repos/{owner}/{repo}/commits/{commit_sha}/pulls": ("get",),
    "/repos/{owner}/{repo}/check-runs": ("post",),
    "/repos/{owner}/{repo}/check-runs/{check_run_id}": ("patch",),
    "/repos/{owner}/{repo}/collaborators/{username}/permission": ("get",),
    "/repos/{owner}/{repo}/issues/{issue_number}/comments": ("post",),
    "/repos/{owner}/{repo}/issues/comments/{comment_id}": ("patch",),
    "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions": ("post",),
    "/orgs/{org}/teams/{team_slug}/memberships/{username}": ("get",),
}

WEBHOOKS: dict[str, tuple[str, ...]] = {
    "pull_request": ("opened", "synchronize", "reopened", "ready_for_review", "edited", "closed"),
    "issue_comment": ("created", "edited", "deleted"),
    "check_run": ("rerequested", "requested_action"),
    "check_suite": ("rerequested", "requested"),
    "merge_group": ("checks_requested", "destroyed"),
    "ping": (),
    # What zdm keeps for an installation goes when it is deleted or suspended, or loses a repository.
    "installation": ("deleted", "suspend"),
    "installation_repositories": ("removed",),
}

# Webhook payload schemas kept beside the examples: `@octokit/webhooks-examples` has no example of every action
# (none of `merge_group.destroyed`), so a test builds that payload and checks it against GitHub's schema.
WEBHOOK_SCHEMAS = ("merge-group-checks-requested", "merge-group-destroyed")


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def extract_openapi(full: dict[str, Any]) -> dict[str, Any]:
    paths = {path: {m: full["paths"][path][m] for m in methods} for path, methods in OPERATIONS.items()}
    for path, _methods in OPERATIONS.items():
        if "parameters" in full["paths"][path]:
            paths[path]["parameters"] = full["paths"][path]["parameters"]
    webhooks = {name: full["x-webhooks"][name] for name in WEBHOOK_SCHEMAS}
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    _refs(webhooks, pending)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        node = full["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        _refs(node, pending)
    return {
        "openapi": full["openapi"],
        "info": full["info"],
        "servers": full.get("servers", []),
        "paths": paths,
        "x-webhooks": webhooks,
        "components": components,
    }


def main(octokit: Path) -> None:
    full = json.loads((octokit / "openapi/generated/api.github.com.json").read_text())
    subset = extract_openapi(full)
    (HERE / "rest-openapi.json.gz").write_bytes(
        gzip.compress(json.dumps(subset, sort_keys=True).encode(), mtime=0)
    )
    schema = (octokit / "graphql-schema/schema.graphql").read_bytes()
    (HERE / "schema.graphql.gz").write_bytes(gzip.compress(schema, mtime=0))
    examples = json.loads((octokit / "webhooks-examples/api.github.com/index.json").read_text())
    kept: dict[str, list[Any]] = {}
    for entry in examples:
        actions = WEBHOOKS.get(entry["name"])
        if actions is None:
            continue
        kept[entry["name"]] = [e for e in entry["examples"] if not actions or e.get("action") in actions]
    (HERE / "webhook-examples.json.gz").write_bytes(
        gzip.compress(json.dumps(kept, sort_keys=True).encode(), mtime=0)
    )
    versions = {
        name: json.loads((octokit / name / "package.json").read_text())["version"]
        for name in ("openapi", "graphql-schema", "webhooks-examples")
    }
    (HERE / "VERSIONS.json").write_text(json.dumps(versions, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
