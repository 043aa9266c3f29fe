"""The only module that talks to GitHub (githubkit): reads a pull request's state and files, writes the check
run, the review and the summary comment. Everything it returns is the project's own plain data.

Reads are batched into one GraphQL query per review (files, comments, earlier reviews, the check run, and the
text of every migration root at both commits); content at a commit SHA is immutable, so it is cached in Redis
by SHA and left out of later queries.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import httpx
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import RedisCacheStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestFailed, RequestTimeout
from githubkit.typing import RetryOption
from redis import Redis

from bot import metrics
from bot.analysis.config import CONFIG_PATH, STATS_PATH
from bot.analysis.snapshot import lock_file_path, migration_root_of, package_files
from bot.report.pull_request import FINDING_MARKER_PATTERN, SUMMARY_MARKER, Annotation, InlineComment
from bot.settings import CHECK_NAME, Settings

ANNOTATIONS_PER_REQUEST = 50
DEFAULT_ROOTS = ("prisma/migrations",)
TREE_CACHE_SECONDS = 7 * 24 * 3600
_ROOT_TREE = """entries { name type object { ... on Blob { text } ... on Tree { entries { name object {
  ... on Blob { text } } } } } }"""


@dataclass(frozen=True, slots=True)
class IssueComment:
    id: int
    body: str
    author: str
    author_is_bot: bool
    created_at: str
    edited: bool


@dataclass
class PullRequestState:
    """A pull request as zdm needs it: its files and zdm's own earlier output."""

    node_id: str
    number: int
    author: str
    head_sha: str
    base_sha: str
    # path -> GraphQL changeType (ADDED, MODIFIED, DELETED, RENAMED, COPIED, CHANGED)
    files: dict[str, str]
    comments: list[IssueComment]
    commented_digests: set[str]
    check_run_id: int | None
    # Annotations the existing check run already holds: a re-run sends only the ones after them.
    check_run_annotations: int = 0
    # path -> text at head / at base, for what was asked
    head_texts: dict[str, str | None] = field(default_factory=dict)
    base_texts: dict[str, str | None] = field(default_factory=dict)
    # root -> {folder: migration.sql text} at base and at head
    base_roots: dict[str, dict[str, str] | None] = field(default_factory=dict)
    head_roots: dict[str, dict[str, str] | None] = field(default_factory=dict)
    # path -> head-side line numbers inside the diff, for modified files
    diff_lines: dict[str, frozenset[int]] = field(default_factory=dict)

    def changed_migrations(self) -> list[str]:
        """The migration.sql files the pull request adds or changes (deleted ones are not reviewed)."""
        return [path for path, kind in self.files.items() if kind != "DELETED" and migration_root_of(path)]


def _count_response(connection: Redis) -> Callable[[httpx.Response], None]:
    def hook(response: httpx.Response) -> None:
        method = response.request.method
        kind = "graphql" if response.request.url.path.endswith("/graphql") else "rest"
        metrics.count(
            connection, "zdm_github_api_calls", method=method, kind=kind, status=str(response.status_code)
        )
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            metrics.gauge(connection, "zdm_github_rate_limit_remaining", float(remaining))

    return hook


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs ~20 ms; httpx would do it for every client githubkit makes.
    return ssl.create_default_context()


def warm_up() -> None:
    """Import and build, once in the worker's parent process, what each forked job would otherwise redo:
    githubkit loads its endpoint groups and response models lazily, and httpx its CA bundle."""
    from githubkit.versions.latest import models  # type: ignore[import-not-found]

    _tls()
    client = GitHub("warm-up")
    for group in ("apps", "checks", "issues", "pulls", "reactions", "repos", "teams"):
        getattr(client.rest, group)
    for name in (
        "CheckRun",
        "PullRequestReview",
        "IssueComment",
        "Reaction",
        "DiffEntry",
        "PullRequest",
        "Integration",
    ):
        getattr(models, name)


class RetryPolicy:
    """What githubkit retries inside the job: rate limits that lift soon, and server errors and timeouts of
    requests that are safe to repeat. A write that timed out or got a 5xx may have landed: the job fails
    instead, and its retry reads GitHub again before writing (every write is found by its marker)."""

    def __init__(self, attempts: int = 3, base_delay: float = 0.5, max_inline_wait: float = 20.0) -> None:
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_inline_wait = max_inline_wait

    def __call__(self, error: GitHubException, count: int) -> RetryOption:
        if count >= self.attempts:
            return RetryOption(False)
        if isinstance(error, RateLimitExceeded):
            wait = error.retry_after.total_seconds()
            return RetryOption(wait <= self.max_inline_wait, error.retry_after)
        retryable = isinstance(error, RequestTimeout) or (
            isinstance(error, RequestFailed) and error.response.status_code >= 500
        )
        if retryable and _repeatable(error):
            return RetryOption(True, timedelta(seconds=self.base_delay * 2**count))
        return RetryOption(False)


def _repeatable(error: GitHubException) -> bool:
    request = None
    if isinstance(error, RequestFailed):
        request = error.response.raw_request
    elif isinstance(error, RequestTimeout):
        try:
            request = error.exc.request
        except RuntimeError:  # httpx raises when the exception carries no request
            return False
    if request is None:
        return False
    # GraphQL reads are POSTs; zdm sends no GraphQL mutation.
    return request.method in ("GET", "PATCH", "PUT") or request.url.path.endswith("/graphql")


def _client_options(settings: Settings, connection: Redis) -> dict[str, Any]:
    return {
        "auto_retry": RetryPolicy(max_inline_wait=settings.max_inline_wait_seconds),
        "ssl_verify": _tls(),
        "base_url": settings.github_api_url,
        "cache_strategy": RedisCacheStrategy(connection, prefix="zdm:githubkit"),
        "http_cache": False,
        "event_hooks": {"response": [_count_response(connection)]},
        "timeout": settings.github_timeout_seconds,
        "user_agent": "zdm",
    }


def app_client(settings: Settings, connection: Redis) -> GitHub[AppAuthStrategy]:
    return GitHub(
        AppAuthStrategy(settings.app_id(), settings.private_key()), **_client_options(settings, connection)
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    guid: str
    status_code: int
    delivered_at: str


class AppAdapter:
    """GitHub as the App itself (JWT): its webhook deliveries."""

    def __init__(self, settings: Settings, connection: Redis) -> None:
        self.gh = app_client(settings, connection)

    def __enter__(self) -> AppAdapter:
        self.gh.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.gh.__exit__(*exc)

    def recent_deliveries(self, since: str, max_pages: int = 10) -> list[Delivery]:
        """Deliveries newest first, back to `since` (ISO time), following GitHub's cursor."""
        found: list[Delivery] = []
        cursor: str | None = None
        for _ in range(max_pages):
            response = (
                self.gh.rest.apps.list_webhook_deliveries(per_page=100, cursor=cursor)
                if cursor
                else self.gh.rest.apps.list_webhook_deliveries(per_page=100)
            )
            page = response.parsed_data
            for item in page:
                delivered = item.delivered_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                found.append(Delivery(item.id, item.guid, item.status_code, delivered))
            if not page or found[-1].delivered_at < since:
                break
            link = httpx.Response(200, headers=response.headers).links.get("next")
            if not link:
                break
            cursor = httpx.URL(link["url"]).params.get("cursor")
            if not cursor:
                break
        return [d for d in found if d.delivered_at >= since]

    def redeliver(self, delivery_id: int) -> None:
        self.gh.rest.apps.redeliver_webhook_delivery(delivery_id)


def added_lines(patch: str) -> frozenset[int]:
    """Head-side line numbers a review comment may sit on: added and context lines of the diff's hunks."""
    lines: set[int] = set()
    number = 0
    for line in patch.splitlines():
        if line.startswith("@@"):
            # @@ -a,b +c,d @@
            plus = line.split("+", 1)[1].split(" ", 1)[0]
            number = int(plus.split(",", 1)[0])
            continue
        if line.startswith("-"):
            continue
        if line.startswith("\\"):
            continue
        lines.add(number)
        number += 1
    return frozenset(lines)


def _quote(value: str) -> str:
    return json.dumps(value)


def _folders(tree: dict[str, Any] | None) -> dict[str, str] | None:
    if tree is None:
        return None
    folders: dict[str, str] = {}
    for entry in tree.get("entries") or []:
        obj = entry.get("object") or {}
        for inner in obj.get("entries") or []:
            if inner.get("name") == "migration.sql":
                text = (inner.get("object") or {}).get("text")
                if isinstance(text, str):
                    folders[entry["name"]] = text
    return folders


class GitHubAdapter:
    """One installation's view of GitHub."""

    def __init__(self, settings: Settings, connection: Redis, installation_id: int) -> None:
        self.settings = settings
        self.connection = connection
        self.gh = GitHub(
            AppInstallationAuthStrategy(settings.app_id(), settings.private_key(), installation_id),
            **_client_options(settings, connection),
        )

    # One HTTP client (kept-alive connections) for the whole job, not one per request.
    def __enter__(self) -> GitHubAdapter:
        self.gh.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.gh.__exit__(*exc)

    @functools.cached_property
    def _slug(self) -> str:
        key = f"zdm:app-slug:{self.settings.app_id()}"
        cached = self.connection.get(key)
        if isinstance(cached, bytes):
            return cached.decode()
        client = app_client(self.settings, self.connection)
        app = client.rest.apps.get_authenticated().parsed_data
        slug = str(app.slug if app else "zdm")
        self.connection.set(key, slug, ex=24 * 3600)
        return slug

    def app_slug(self) -> str:
        """The App's login on GitHub (without `[bot]`): Redis once per job, GitHub once a day."""
        return self._slug

    def pull_request_commits(self, owner: str, repo: str, number: int) -> tuple[str, str]:
        pull = self.gh.rest.pulls.get(owner, repo, number).parsed_data
        return pull.head.sha, pull.base.sha

    # -- reading ----------------------------------------------------------------------------------------------

    def read_pull_request(
        self,
        owner: str,
        repo: str,
        number: int,
        head: str,
        base: str,
        roots: Sequence[str],
    ) -> PullRequestState:
        """Everything one review needs in one GraphQL query: more only for >100 files (pages) or for migration
        roots other than the ones guessed (`read_roots`)."""
        bot = self.app_slug()
        content = _Content(self, owner, repo, head, base, roots, with_config=True)
        query = (
            "query ZdmReview($owner: String!, $name: String!, $number: Int!, $head: GitObjectID!, $appId: Int!,"
            " $bot: String!) {\n  repository(owner: $owner, name: $name) {\n"
            "    pullRequest(number: $number) {\n"
            "      id number headRefOid baseRefOid author { login }\n"
            "      files(first: 100) { pageInfo { hasNextPage endCursor } nodes { path changeType } }\n"
            "      comments(last: 100) { nodes { databaseId body createdAt lastEditedAt author { __typename login } } }\n"
            "      reviews(last: 100, author: $bot) { nodes { comments(first: 100) { nodes { body } } } }\n"
            "    }\n"
            "    headCommit: object(oid: $head) { ... on Commit { checkSuites(first: 10, filterBy: {appId: $appId}) {"
            f" nodes {{ checkRuns(first: 10, filterBy: {{checkName: {_quote(CHECK_NAME)}}}) {{ nodes {{ databaseId annotations {{ totalCount }} }} }} }} }} }} }}\n"
            + content.fields()
            + "  }\n}"
        )
        variables = {
            "owner": owner,
            "name": repo,
            "number": number,
            "head": head,
            "appId": self.settings.app_id(),
            "bot": bot,
        }
        repository = self.gh.graphql.request(query, variables)["repository"]
        pull = repository["pullRequest"]
        files = {node["path"]: node["changeType"] for node in pull["files"]["nodes"]}
        page = pull["files"]["pageInfo"]
        while page["hasNextPage"]:
            page_data = self.gh.graphql.request(
                "query ZdmFiles($owner: String!, $name: String!, $number: Int!, $after: String!) {"
                " repository(owner: $owner, name: $name) { pullRequest(number: $number) {"
                " files(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { path changeType } } } } }",
                {"owner": owner, "name": repo, "number": number, "after": page["endCursor"]},
            )
            more = page_data["repository"]["pullRequest"]["files"]
            files.update({node["path"]: node["changeType"] for node in more["nodes"]})
            page = more["pageInfo"]
        comments = [
            IssueComment(
                int(node["databaseId"]),
                node["body"],
                (node.get("author") or {}).get("login") or "ghost",
                (node.get("author") or {}).get("__typename") == "Bot",
                node.get("createdAt") or "",
                node.get("lastEditedAt") is not None,
            )
            for node in pull["comments"]["nodes"]
        ]
        digests = {
            match
            for review in pull["reviews"]["nodes"]
            for comment in review["comments"]["nodes"]
            for match in FINDING_MARKER_PATTERN.findall(comment["body"])
        }
        check_runs = [
            (run["databaseId"], (run.get("annotations") or {}).get("totalCount", 0))
            for suite in ((repository.get("headCommit") or {}).get("checkSuites") or {}).get("nodes", [])
            for run in suite["checkRuns"]["nodes"]
        ]
        latest_run = max(check_runs) if check_runs else None
        state = PullRequestState(
            node_id=pull["id"],
            number=pull["number"],
            author=(pull.get("author") or {}).get("login") or "ghost",
            head_sha=pull["headRefOid"],
            base_sha=pull["baseRefOid"],
            files=files,
            comments=comments,
            commented_digests=digests,
            check_run_id=latest_run[0] if latest_run else None,
            check_run_annotations=latest_run[1] if latest_run else 0,
        )
        content.parse(repository, state)
        return state

    def read_roots(self, owner: str, repo: str, state: PullRequestState, roots: Sequence[str]) -> None:
        """Add roots the first query did not guess (a second query, only then)."""
        content = _Content(self, owner, repo, state.head_sha, state.base_sha, roots, with_config=False)
        query = (
            "query ZdmRoots($owner: String!, $name: String!) {\n  repository(owner: $owner, name: $name) {\n"
            + content.fields()
            + "  }\n}"
        )
        content.parse(self.gh.graphql.request(query, {"owner": owner, "name": repo})["repository"], state)

    def _tree_key(self, owner: str, repo: str, sha: str, root: str) -> str:
        return f"zdm:tree:{owner}/{repo}:{sha}:{root}"

    def _cached_tree(self, owner: str, repo: str, sha: str, root: str) -> dict[str, str] | None:
        raw = self.connection.get(self._tree_key(owner, repo, sha, root))
        if raw is None:
            return None
        value = json.loads(raw)
        return dict(value) if isinstance(value, dict) else {}

    def _cache_tree(self, owner: str, repo: str, sha: str, root: str, tree: dict[str, str] | None) -> None:
        # A missing root is cached as empty: the commit cannot change.
        self.connection.set(
            self._tree_key(owner, repo, sha, root), json.dumps(tree or {}), ex=TREE_CACHE_SECONDS
        )

    def diff_lines(
        self, owner: str, repo: str, number: int, paths: Iterable[str]
    ) -> dict[str, frozenset[int]]:
        """Commentable lines of modified files, from the REST diff (GraphQL has no patches)."""
        wanted = set(paths)
        found: dict[str, frozenset[int]] = {}
        entry: Any
        for entry in self.gh.rest.paginate(
            self.gh.rest.pulls.list_files, owner=owner, repo=repo, pull_number=number, per_page=100
        ):
            if entry.filename in wanted:
                found[entry.filename] = added_lines(entry.patch or "")
        return found

    # -- writing ----------------------------------------------------------------------------------------------

    def publish_check_run(
        self,
        owner: str,
        repo: str,
        existing: int | None,
        head: str,
        number: int,
        conclusion: str,
        title: str,
        summary: str,
        annotations: Sequence[Annotation],
        actions: Sequence[dict[str, str]] = (),
        annotations_present: int = 0,
    ) -> int:
        """Create the head's check run (or complete the existing one); annotations go 50 per request.

        GitHub appends annotations and cannot remove them, so an existing run gets only those it lacks (the
        report lists them in a stable order)."""
        if existing is not None:
            annotations = annotations[annotations_present:]
        batches = [
            list(annotations[i : i + ANNOTATIONS_PER_REQUEST])
            for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)
        ] or [[]]
        body: dict[str, Any] = {
            "name": CHECK_NAME,
            "head_sha": head,
            "external_id": f"pr:{number}",
            "status": "completed",
            "conclusion": conclusion,
            "output": {
                "title": title,
                "summary": summary,
                "annotations": [_annotation(a) for a in batches[0]],
            },
        }
        if actions:
            body["actions"] = list(actions)
        if existing is None:
            run_id = int(self.gh.rest.checks.create(owner, repo, data=cast(Any, body)).parsed_data.id)
        else:
            update = {k: v for k, v in body.items() if k != "head_sha"}
            run_id = int(
                self.gh.rest.checks.update(owner, repo, existing, data=cast(Any, update)).parsed_data.id
            )
        for batch in batches[1:]:
            self.gh.rest.checks.update(
                owner,
                repo,
                run_id,
                data=cast(
                    Any,
                    {
                        "output": {
                            "title": title,
                            "summary": summary,
                            "annotations": [_annotation(a) for a in batch],
                        }
                    },
                ),
            )
        return run_id

    def post_review(
        self, owner: str, repo: str, number: int, head: str, comments: Sequence[InlineComment]
    ) -> None:
        """One COMMENT review holding every new inline comment (the check run gates merging, not the review)."""
        if not comments:
            return
        self.gh.rest.pulls.create_review(
            owner,
            repo,
            number,
            data=cast(
                Any,
                {
                    "commit_id": head,
                    "event": "COMMENT",
                    "body": "",
                    "comments": [_review_comment(c) for c in comments],
                },
            ),
        )

    def upsert_summary(
        self, owner: str, repo: str, number: int, existing: IssueComment | None, body: str
    ) -> None:
        if existing is None:
            self.gh.rest.issues.create_comment(owner, repo, number, body=body)
        elif existing.body != body:
            self.gh.rest.issues.update_comment(owner, repo, existing.id, body=body)

    def permission(self, owner: str, repo: str, login: str) -> str:
        """admin, maintain, write, triage, read or none (custom roles answer with their base role)."""
        data = self.gh.rest.repos.get_collaborator_permission_level(owner, repo, login).parsed_data
        role = getattr(data, "role_name", None) or data.permission
        return str(role) if role in ("admin", "maintain", "write", "triage", "read") else str(data.permission)

    def in_team(self, org: str, team: str, login: str) -> bool:
        try:
            membership = self.gh.rest.teams.get_membership_for_user_in_org(org, team, login).parsed_data
        except RequestFailed as error:
            if error.response.status_code == 404:
                return False
            raise
        return membership.state == "active"

    def react(self, owner: str, repo: str, comment_id: int, content: str = "eyes") -> None:
        self.gh.rest.reactions.create_for_issue_comment(owner, repo, comment_id, content=cast(Any, content))

    def reply(self, owner: str, repo: str, number: int, body: str) -> None:
        self.gh.rest.issues.create_comment(owner, repo, number, body=body)

    def summary_comment(self, state: PullRequestState, bot: str) -> IssueComment | None:
        for comment in state.comments:
            if comment.author_is_bot and comment.author == bot and SUMMARY_MARKER in comment.body:
                return comment
        return None


def _annotation(annotation: Annotation) -> dict[str, Any]:
    return {
        "path": annotation.path,
        "start_line": annotation.start_line,
        "end_line": annotation.end_line,
        "annotation_level": annotation.level,
        "title": annotation.title[:255],
        "message": annotation.message[:64000],
    }


def _review_comment(comment: InlineComment) -> dict[str, Any]:
    data: dict[str, Any] = {"path": comment.path, "line": comment.line, "side": "RIGHT", "body": comment.body}
    if comment.start_line is not None and comment.start_line < comment.line:
        data["start_line"] = comment.start_line
        data["start_side"] = "RIGHT"
    return data


class _Content:
    """The GraphQL fields reading migration roots (at both commits) and package and config files."""

    def __init__(
        self,
        adapter: GitHubAdapter,
        owner: str,
        repo: str,
        head: str,
        base: str,
        roots: Sequence[str],
        with_config: bool,
    ) -> None:
        self.adapter = adapter
        self.owner, self.repo, self.head, self.base = owner, repo, head, base
        self.roots = list(roots)
        self.cached = {root: adapter._cached_tree(owner, repo, base, root) for root in self.roots}
        self.head_paths = sorted(
            {*(lock_file_path(r) for r in roots), *(p for r in roots for p in package_files(r))}
        )
        self.base_paths = [CONFIG_PATH, STATS_PATH] if with_config else []

    def fields(self) -> str:
        fields = []
        for index, root in enumerate(self.roots):
            if self.cached[root] is None:
                fields.append(
                    f"base_{index}: object(expression: {_quote(f'{self.base}:{root}')}) {{ ... on Tree {{ {_ROOT_TREE} }} }}"
                )
            fields.append(
                f"head_{index}: object(expression: {_quote(f'{self.head}:{root}')}) {{ ... on Tree {{ {_ROOT_TREE} }} }}"
            )
        for index, path in enumerate(self.head_paths):
            fields.append(
                f"hf_{index}: object(expression: {_quote(f'{self.head}:{path}')}) {{ ... on Blob {{ text }} }}"
            )
        for index, path in enumerate(self.base_paths):
            fields.append(
                f"bf_{index}: object(expression: {_quote(f'{self.base}:{path}')}) {{ ... on Blob {{ text }} }}"
            )
        return "".join(f"    {f}\n" for f in fields)

    def parse(self, repository: dict[str, Any], state: PullRequestState) -> None:
        for index, root in enumerate(self.roots):
            cached = self.cached[root]
            if cached is None:
                tree = _folders(repository.get(f"base_{index}"))
                self.adapter._cache_tree(self.owner, self.repo, self.base, root, tree)
                state.base_roots[root] = tree
            else:
                state.base_roots[root] = cached or None
            state.head_roots[root] = _folders(repository.get(f"head_{index}"))
        for index, path in enumerate(self.head_paths):
            state.head_texts[path] = (repository.get(f"hf_{index}") or {}).get("text")
        for index, path in enumerate(self.base_paths):
            state.base_texts[path] = (repository.get(f"bf_{index}") or {}).get("text")
