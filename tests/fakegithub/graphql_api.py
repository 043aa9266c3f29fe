"""Resolvers for the part of GitHub's GraphQL schema zdm reads; the schema itself is GitHub's, so a query that
GitHub would refuse is refused here too."""

from __future__ import annotations

from typing import Any

from tests.fakegithub.state import GitHubState, Repository

_CHANGE_TYPES = {"added": "ADDED", "modified": "MODIFIED", "removed": "DELETED"}


def _actor(login: str, type_: str) -> dict[str, Any]:
    if type_ == "Bot":
        return {"__typename": "Bot", "login": login.removesuffix("[bot]")}
    return {"__typename": "User", "login": login}


def _slice(
    items: list[Any], first: int | None = None, last: int | None = None, after: str | None = None
) -> tuple[list[Any], dict[str, Any]]:
    start = int(after) if after else 0
    rest = items[start:]
    if first is not None:
        chunk = rest[:first]
        end = start + len(chunk)
        return chunk, {"hasNextPage": end < len(items), "endCursor": str(end)}
    if last is not None:
        return rest[-last:], {"hasNextPage": False, "endCursor": str(len(items))}
    return rest, {"hasNextPage": False, "endCursor": str(len(items))}


def _tree(files: dict[str, str], prefix: str) -> dict[str, Any] | None:
    prefix = prefix.strip("/")
    children: dict[str, Any] = {}
    found = prefix == ""
    for path, text in files.items():
        if prefix and not path.startswith(prefix + "/"):
            continue
        found = True
        rest = path[len(prefix) + 1 :] if prefix else path
        name, _, below = rest.partition("/")
        if below:
            children.setdefault(name, "tree")
        else:
            children[name] = text
    if not found:
        return None
    entries = []
    for name, value in sorted(children.items()):
        full = f"{prefix}/{name}" if prefix else name
        if value == "tree":
            entries.append(
                {"name": name, "type": "tree", "object": lambda info, full=full: _tree(files, full)}
            )
        else:
            entries.append({"name": name, "type": "blob", "object": {"__typename": "Blob", "text": value}})
    return {"__typename": "Tree", "entries": entries}


def _object(
    state: GitHubState, repo: Repository, expression: str | None = None, oid: str | None = None
) -> dict[str, Any] | None:
    if oid is not None:
        if oid not in repo.commits:
            return None
        return _commit(state, repo, oid)
    assert expression is not None
    revision, _, path = expression.partition(":")
    files = repo.commits.get(revision)
    if files is None:
        return None
    if path in files:
        return {"__typename": "Blob", "text": files[path]}
    return _tree(files, path)


def _commit(state: GitHubState, repo: Repository, sha: str) -> dict[str, Any]:
    def check_suites(
        info: Any, first: int | None = None, filterBy: dict[str, Any] | None = None, **_: Any
    ) -> dict[str, Any]:
        runs = [c for c in repo.check_runs if c.head_sha == sha]
        if filterBy and filterBy.get("appId") is not None:
            runs = [c for c in runs if c.app_id == filterBy["appId"]]
        suites: dict[int, list[Any]] = {}
        for run in runs:
            suites.setdefault(run.suite_id, []).append(run)

        def check_runs(suite_runs: list[Any]) -> Any:
            def resolve(
                info: Any, first: int | None = None, filterBy: dict[str, Any] | None = None, **_: Any
            ) -> dict[str, Any]:
                chosen = suite_runs
                if filterBy and filterBy.get("checkName"):
                    chosen = [r for r in chosen if r.name == filterBy["checkName"]]
                return {
                    "nodes": [
                        {"databaseId": r.id, "annotations": {"totalCount": len(r.annotations)}}
                        for r in chosen[: first or 100]
                    ]
                }

            return resolve

        return {"nodes": [{"checkRuns": check_runs(r)} for r in list(suites.values())[: first or 100]]}

    return {"__typename": "Commit", "oid": sha, "checkSuites": check_suites}


def _pull_request(state: GitHubState, repo: Repository, number: int) -> dict[str, Any] | None:
    pull = repo.pulls.get(number)
    if pull is None:
        return None

    def files(info: Any, first: int | None = None, after: str | None = None, **_: Any) -> dict[str, Any]:
        items = [{"path": p, "changeType": _CHANGE_TYPES[s]} for p, s in state.changed_files(repo, pull)]
        nodes, page = _slice(items, first=first, after=after)
        return {"totalCount": len(items), "nodes": nodes, "pageInfo": page}

    def comments(info: Any, first: int | None = None, last: int | None = None, **_: Any) -> dict[str, Any]:
        items = [
            {
                "databaseId": c.id,
                "body": c.body,
                "createdAt": c.created_at,
                "lastEditedAt": c.updated_at if c.edited else None,
                "author": _actor(c.user.login, c.user.type),
            }
            for c in state.comments_on(repo, number)
        ]
        nodes, _page = _slice(items, first=first, last=last)
        return {"nodes": nodes}

    def reviews(
        info: Any, first: int | None = None, last: int | None = None, author: str | None = None, **_: Any
    ) -> dict[str, Any]:
        chosen = [r for r in repo.reviews if r.pull_number == number]
        if author is not None:
            chosen = [r for r in chosen if r.user.login.removesuffix("[bot]") == author.removesuffix("[bot]")]
        items = [
            {
                "comments": lambda info, first=None, r=r, **_: {
                    "nodes": [{"body": c.body, "path": c.path} for c in r.comments[: first or 100]]
                }
            }
            for r in chosen
        ]
        nodes, _page = _slice(items, first=first, last=last)
        return {"nodes": nodes}

    return {
        "id": pull.node_id,
        "number": number,
        "headRefOid": pull.head_sha,
        "baseRefOid": pull.base_sha,
        "author": _actor(pull.author.login, pull.author.type),
        "files": files,
        "comments": comments,
        "reviews": reviews,
    }


def root_value(state: GitHubState, installation: int | None) -> dict[str, Any]:
    def repository(info: Any, owner: str, name: str, **_: Any) -> dict[str, Any] | None:
        repo = state.repos.get(f"{owner}/{name}")
        if repo is None or repo.installation_id != installation:
            return None
        return {
            "pullRequest": lambda info, number: _pull_request(state, repo, number),
            "object": lambda info, expression=None, oid=None: _object(state, repo, expression, oid),
        }

    return {"repository": repository}
