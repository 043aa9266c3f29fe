"""Resolvers for the part of GitHub's GraphQL schema zdm reads; the schema itself is GitHub's, so a query that
GitHub would refuse is refused here too. GitHub's own rules beyond the schema are kept as well: a connection
asks for `first` or `last`, at most 100; a query may ask for at most 500,000 nodes; `Blob.text` stops at
512,000 bytes, said only by `isTruncated`."""

from __future__ import annotations

import base64
from typing import Any

import graphql

from tests.fakegithub.state import GitHubState, Repository, blob_oid

_CHANGE_TYPES = {"added": "ADDED", "modified": "MODIFIED", "removed": "DELETED"}
BLOB_TEXT_BYTES = 512_000
PAGE_LIMIT = 100
NODE_LIMIT = 500_000


class GitHubQueryError(Exception):
    """An error GitHub reports in the answer's `errors`, with its `type`."""

    def __init__(self, message: str, type_: str) -> None:
        super().__init__(message)
        self.type = type_


def _actor(login: str, type_: str) -> dict[str, Any]:
    # GraphQL names an App's bot by its slug (typed Bot), where REST says `slug[bot]`.
    if type_ == "Bot":
        return {"__typename": "Bot", "login": login.removesuffix("[bot]")}
    return {"__typename": "User", "login": login}


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:{index}".encode()).decode()


def _position(cursor: str) -> int:
    return int(base64.b64decode(cursor).decode().split(":", 1)[1])


def _connection(
    name: str,
    items: list[Any],
    first: int | None = None,
    last: int | None = None,
    after: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """A page of a connection, as GitHub cuts it: `after`/`before` narrow the items, then `first` keeps the
    leading ones or `last` the trailing ones; the page says whether more lie beyond it."""
    if first is None and last is None:
        raise GitHubQueryError(
            f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.",
            "MISSING_PAGINATION_BOUNDARIES",
        )
    for argument, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= PAGE_LIMIT:
            raise GitHubQueryError(
                f"Requesting {value} records on the `{name}` connection exceeds the `{argument}` limit of "
                f"{PAGE_LIMIT} records.",
                "EXCESSIVE_PAGINATION",
            )
    start = _position(after) + 1 if after else 0
    end = _position(before) if before else len(items)
    window = list(range(start, max(start, end)))
    if first is not None:
        window = window[:first]
    if last is not None:
        window = window[-last:] if last else []
    return {
        "totalCount": len(items),
        "nodes": [items[i] for i in window],
        "pageInfo": {
            "hasNextPage": bool(window) and window[-1] + 1 < end if first is not None else False,
            "hasPreviousPage": bool(window) and window[0] > start if last is not None else False,
            "startCursor": _cursor(window[0]) if window else None,
            "endCursor": _cursor(window[-1]) if window else None,
        },
    }


def _blob(text: str, oid: str) -> dict[str, Any]:
    data = text.encode()
    cut = len(data) > BLOB_TEXT_BYTES
    return {
        "__typename": "Blob",
        "oid": oid,
        "byteSize": len(data),
        "isTruncated": cut,
        "isBinary": False,
        "text": data[:BLOB_TEXT_BYTES].decode(errors="ignore") if cut else text,
    }


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
            entries.append({"name": name, "type": "blob", "object": _blob(value, blob_oid(value))})
    return {"__typename": "Tree", "entries": entries}


def _object(
    state: GitHubState, repo: Repository, expression: str | None = None, oid: str | None = None
) -> dict[str, Any] | None:
    if oid is not None:
        if oid in repo.commits:
            return _commit(state, repo, oid)
        text = state.blobs.get(oid)
        if text is not None and any(text in files.values() for files in repo.commits.values()):
            return _blob(text, oid)
        return None
    assert expression is not None
    revision, _, path = expression.partition(":")
    files = repo.commits.get(revision)
    if files is None:
        return None
    if path in files:
        return _blob(files[path], blob_oid(files[path]))
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
                items = [
                    {"databaseId": r.id, "annotations": {"totalCount": len(r.annotations)}} for r in chosen
                ]
                return _connection("checkRuns", items, first=first)

            return resolve

        items = [{"checkRuns": check_runs(r)} for r in suites.values()]
        return _connection("checkSuites", items, first=first)

    return {"__typename": "Commit", "oid": sha, "checkSuites": check_suites}


def _review(review: Any) -> dict[str, Any]:
    def comments(info: Any, **page: Any) -> dict[str, Any]:
        items = [{"body": c.body, "path": c.path} for c in review.comments]
        return _connection("comments", items, **page)

    return {
        "__typename": "PullRequestReview",
        "id": review.node_id,
        "databaseId": review.id,
        "author": _actor(review.user.login, review.user.type),
        "comments": comments,
    }


def _pull_request(state: GitHubState, repo: Repository, number: int) -> dict[str, Any]:
    pull = repo.pulls.get(number)
    if pull is None:
        # GitHub answers an unknown number (or an issue's) with an error at the field, the rest of the data kept.
        raise GitHubQueryError(
            f"Could not resolve to a PullRequest with the number of {number}.", "NOT_FOUND"
        )

    def files(info: Any, **page: Any) -> dict[str, Any]:
        items = [{"path": p, "changeType": _CHANGE_TYPES[s]} for p, s in state.changed_files(repo, pull)]
        return _connection("files", items, **page)

    def comments(info: Any, **page: Any) -> dict[str, Any]:
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
        return _connection("comments", items, **page)

    def reviews(info: Any, author: str | None = None, **page: Any) -> dict[str, Any]:
        chosen = [r for r in repo.reviews if r.pull_number == number]
        if author is not None:
            # GitHub documents nothing of how `author:` treats an App's bot: the fake matches people only, so
            # nothing that works here depends on it.
            chosen = [r for r in chosen if r.user.type != "Bot" and r.user.login == author]
        return _connection("reviews", [_review(r) for r in chosen], **page)

    return {
        "__typename": "PullRequest",
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

    def node(info: Any, id: str) -> dict[str, Any] | None:
        for repo in state.repos.values():
            if repo.installation_id != installation:
                continue
            for review in repo.reviews:
                if review.node_id == id:
                    return _review(review)
        return None

    return {"repository": repository, "node": node}


def requested_nodes(document: graphql.DocumentNode, variables: dict[str, Any] | None) -> int:
    """GitHub's count of the nodes a query may return: each connection's `first` or `last`, times those of the
    connections it sits in, summed over the query."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)
    }

    def size(argument: graphql.ValueNode) -> int:
        if isinstance(argument, graphql.IntValueNode):
            return int(argument.value)
        if isinstance(argument, graphql.VariableNode):
            return int((variables or {}).get(argument.name.value) or 0)
        return 0

    def walk(selections: graphql.SelectionSetNode | None, multiplier: int) -> int:
        total = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, graphql.FragmentSpreadNode):
                total += walk(fragments[selection.name.value].selection_set, multiplier)
            elif isinstance(selection, graphql.InlineFragmentNode):
                total += walk(selection.selection_set, multiplier)
            elif isinstance(selection, graphql.FieldNode):
                page = [size(a.value) for a in selection.arguments or () if a.name.value in ("first", "last")]
                inner = multiplier * max(page) if page else multiplier
                total += inner if page else 0
                total += walk(selection.selection_set, inner)
        return total

    return sum(
        walk(d.selection_set, 1)
        for d in document.definitions
        if isinstance(d, graphql.OperationDefinitionNode)
    )
