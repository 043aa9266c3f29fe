"""The only module that talks to GitHub (githubkit): reads a pull request's state and files, writes the check
run, the review and the summary comment. Everything it returns is the project's own plain data.

Reads are batched into one GraphQL query per review (files, comments, earlier reviews, the check run, the
text of every migration root at both commits, and the files of each root's history: its lock file, its schema
files and package files); content at a commit SHA is immutable, so it is cached in Redis
by SHA and left out of later queries. What does not fit in that query is read after it: further pages of files,
comments, zdm's earlier reviews and their comments; blobs GitHub's GraphQL cut short (`Blob.text` stops at
512,000 bytes and says so only in `isTruncated`), through the REST Git blobs API; and, for a repository whose
migrations are too much for one query, the texts in bounded batches after the trees.
"""

from __future__ import annotations

import base64
import functools
import json
import posixpath
import ssl
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, cast

import httpx
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import RedisCacheStrategy
from githubkit.exception import (
    GitHubException,
    GraphQLFailed,
    RateLimitExceeded,
    RequestFailed,
    RequestTimeout,
)
from githubkit.typing import RetryOption
from redis import Redis

from bot import metrics
from bot.analysis.config import CONFIG_PATH, STATS_PATH
from bot.analysis.history import PACKAGE_FILES, is_schema_path
from bot.analysis.prisma import LOCK_FILE, lock_file_path, package_directories
from bot.analysis.snapshot import migration_root_of, package_files
from bot.logs import log
from bot.report.pull_request import (
    FINDING_MARKER_PATTERN,
    MAX_COMMENT,
    MAX_OUTPUT,
    MAX_TITLE,
    SUMMARY_MARKER,
    Annotation,
    FileComment,
    InlineComment,
    cap,
)
from bot.settings import CHECK_NAME, Settings, StoredApp

ANNOTATIONS_PER_REQUEST = 50
DEFAULT_ROOTS = ("prisma/migrations",)
TREE_CACHE_SECONDS = 7 * 24 * 3600
# GitHub's GraphQL gives a blob's text up to this many bytes; the REST Git blobs API serves up to 100 MB.
GRAPHQL_TEXT_BYTES = 512_000
# Texts read per query once a repository's migrations are too much for one: bounded so each answers quickly.
TEXT_BATCH_BYTES = 500_000
TEXT_BATCH_FILES = 100
# How long zdm remembers that a repository needs its texts read in batches.
SPLIT_READ_SECONDS = 7 * 24 * 3600
_BLOB = "... on Blob { oid byteSize isTruncated text }"
_BLOB_META = "... on Blob { oid byteSize }"
# GitHub's answer to a query that ran out of time (a 502, or a 200 with errors): asking again is no use.
_QUERY_TOO_BIG = (
    "Something went wrong while executing your query",
    "couldn't respond to your request in time",
)
_TOO_BIG_TYPES = {"MAX_NODE_LIMIT_EXCEEDED", "RESOURCE_LIMITS_EXCEEDED"}
_REVIEWS = (
    "reviews(first: 100{after}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ id author {{ __typename login }}"
    " comments(first: 100) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ body }} }} }} }}"
)
_COMMENTS = (
    "comments(last: 100{before}) {{ pageInfo {{ hasPreviousPage startCursor }}"
    " nodes {{ databaseId body createdAt lastEditedAt author {{ __typename login }} }} }}"
)
_FILES = "files(first: 100{after}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ path changeType }} }}"

_PULL_QUERY = (
    "query {name}($owner: String!, $name: String!, $number: Int!, $cursor: String) {{"
    " repository(owner: $owner, name: $name) {{ pullRequest(number: $number) {{ {connection} }} }} }}"
)
_FILES_QUERY = _PULL_QUERY.format(name="ZdmFiles", connection=_FILES.format(after=", after: $cursor"))
_COMMENTS_QUERY = _PULL_QUERY.format(
    name="ZdmComments", connection=_COMMENTS.format(before=", before: $cursor")
)
_REVIEWS_QUERY = _PULL_QUERY.format(name="ZdmReviews", connection=_REVIEWS.format(after=", after: $cursor"))
_REVIEW_COMMENTS_QUERY = (
    "query ZdmReviewComments($id: ID!, $cursor: String) { node(id: $id) { ... on PullRequestReview {"
    " comments(first: 100, after: $cursor) { pageInfo { hasNextPage endCursor } nodes { body } } } } }"
)


def _root_tree(blob: str) -> str:
    return f"entries {{ name type object {{ {blob} ... on Tree {{ entries {{ name object {{ {blob} }} }} }} }} }}"


# A root's parent directory two levels down, blobs described but not read: where its `*.prisma` files are.
_SCHEMA_TREE = f"entries {{ name type object {{ {_BLOB_META} ... on Tree {{ entries {{ name type object {{ {_BLOB_META} }} }} }} }} }}"


def _history_paths(root: str) -> list[str]:
    """Files of a root's history read at both commits by path (the schema's usual place among them, so the
    common case needs no second query for its text)."""
    parent = posixpath.dirname(root)
    return [
        lock_file_path(root),
        posixpath.join(parent, "schema.prisma"),
        *(
            posixpath.join(directory, name)
            for directory in package_directories(root)
            for name in PACKAGE_FILES
        ),
    ]


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
        return changed_migrations(self.files)

    def history_roots(self, known: Iterable[str]) -> list[str]:
        """The roots whose history the pull request touches: it adds, changes or deletes one of their
        migrations or their lock file, or a `*.prisma` file under one of the `known` roots' parent."""
        return history_roots(self.files, known)


def changed_migrations(files: dict[str, str]) -> list[str]:
    """The migration.sql files among `files` (path -> GraphQL changeType) added or changed, not deleted."""
    return [path for path, kind in files.items() if kind != "DELETED" and migration_root_of(path)]


def history_roots(files: Iterable[str], known: Iterable[str]) -> list[str]:
    """The roots whose history a change of `files` touches: one of their migrations or their lock file, or a
    `*.prisma` file under one of the `known` roots' parent."""
    paths = list(files)
    roots = {found[0] for path in paths if (found := migration_root_of(path)) is not None}
    roots |= {posixpath.dirname(path) for path in paths if posixpath.basename(path) == LOCK_FILE}
    schemas = [path for path in paths if path.endswith(".prisma")]
    roots |= {root for root in {*known, *roots} for path in schemas if is_schema_path(root, path)}
    return sorted(roots)


class CommitRange(Protocol):
    """Two commits as the analysis reads them: what changed between them, and the migration roots and the
    files of their history at both (a pull request, or a merge group)."""

    head_sha: str
    base_sha: str
    files: dict[str, str]
    head_texts: dict[str, str | None]
    base_texts: dict[str, str | None]
    base_roots: dict[str, dict[str, str] | None]
    head_roots: dict[str, dict[str, str] | None]
    diff_lines: dict[str, frozenset[int]]

    def changed_migrations(self) -> list[str]: ...

    def history_roots(self, known: Iterable[str]) -> list[str]: ...


# A comparison's status for a file, as GraphQL's changeType names it (zdm's one vocabulary for changes).
_CHANGE_TYPES = {
    "added": "ADDED",
    "removed": "DELETED",
    "modified": "MODIFIED",
    "renamed": "RENAMED",
    "copied": "COPIED",
    "changed": "CHANGED",
}
# GitHub lists at most this many files of a comparison.
COMPARE_FILES = 300


@dataclass(frozen=True, slots=True)
class Comparison:
    """`GET /repos/{owner}/{repo}/compare/{base}...{head}`: the files changed and the commits in between."""

    files: dict[str, str]
    # (sha, message), oldest first; GitHub gives the newest 250.
    commits: list[tuple[str, str]]
    total_commits: int

    @property
    def files_complete(self) -> bool:
        return len(self.files) < COMPARE_FILES


@dataclass(frozen=True, slots=True)
class QueuedPull:
    """A pull request of a merge group: the files it changes and its conversation (where approvals live)."""

    number: int
    files: frozenset[str]
    comments: list[IssueComment]


@dataclass
class MergeGroupState:
    """A merge group as zdm needs it: what changed from its base commit to its head commit, and its pull
    requests."""

    head_sha: str
    base_sha: str
    # path -> GraphQL changeType, from the comparison and from the migration roots read at both commits
    files: dict[str, str]
    pulls: dict[int, QueuedPull] = field(default_factory=dict)
    head_texts: dict[str, str | None] = field(default_factory=dict)
    base_texts: dict[str, str | None] = field(default_factory=dict)
    base_roots: dict[str, dict[str, str] | None] = field(default_factory=dict)
    head_roots: dict[str, dict[str, str] | None] = field(default_factory=dict)
    # No review comments on a merge group: nothing needs the diff's lines.
    diff_lines: dict[str, frozenset[int]] = field(default_factory=dict)

    def changed_migrations(self) -> list[str]:
        return changed_migrations(self.files)

    def history_roots(self, known: Iterable[str]) -> list[str]:
        return history_roots(self.files, known)


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
    for group in ("apps", "checks", "git", "issues", "pulls", "reactions", "repos", "teams"):
        getattr(client.rest, group)
    for name in (
        "CheckRun",
        "PullRequestReview",
        "IssueComment",
        "Reaction",
        "DiffEntry",
        "PullRequest",
        "Integration",
        "PullRequestReviewComment",
        "Blob",
        "CommitComparison",
        "PullRequestSimple",
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
        if count >= self.attempts or query_too_big(error):
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


def query_too_big(error: Exception) -> bool:
    """GitHub gave up on a GraphQL query for its size (time or node limits): the same query would fail again."""
    if isinstance(error, GraphQLFailed):
        return any(
            e.type in _TOO_BIG_TYPES or e.message.startswith(_QUERY_TOO_BIG)
            for e in error.response.errors or []
        )
    if isinstance(error, RequestFailed) and error.response.status_code in (502, 504):
        return any(marker in error.response.text for marker in _QUERY_TOO_BIG)
    return False


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

    def describe(self) -> tuple[str, str]:
        """The App's name and its page on GitHub."""
        app = self.gh.rest.apps.get_authenticated().parsed_data
        return (str(app.name), str(app.html_url)) if app else ("?", "")

    def installations(self, limit: int = 100) -> list[Installation]:
        found = self.gh.rest.apps.list_installations(per_page=limit).parsed_data
        return [
            Installation(
                item.id,
                _account_name(item.account),
                item.repository_selection,
                str(item.html_url),
                item.suspended_at is not None,
            )
            for item in found
        ]


@dataclass(frozen=True, slots=True)
class Installation:
    id: int
    account: str
    repositories: str  # all | selected
    html_url: str
    suspended: bool


def _account_name(account: Any) -> str:
    # A user or an organisation has a login; an enterprise only a slug.
    return str(getattr(account, "login", None) or getattr(account, "slug", None) or "?")


def register_from_manifest(settings: Settings, connection: Redis, code: str) -> StoredApp:
    """The manifest flow's last step: the code GitHub handed the browser becomes the App's credentials. GitHub
    accepts each code once, within an hour, without authentication."""
    with GitHub(**_client_options(settings, connection)) as gh:
        app = gh.rest.apps.create_from_manifest(code).parsed_data
    return StoredApp(
        id=app.id,
        slug=str(app.slug or app.name),
        name=app.name,
        html_url=app.html_url,
        owner=_account_name(app.owner),
        private_key=app.pem,
        webhook_secret=app.webhook_secret or "",
    )


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


@dataclass(frozen=True, slots=True)
class _Blob:
    """A file as GraphQL described it: its text when GitHub gave all of it, else what is needed to fetch it."""

    oid: str
    size: int
    text: str | None

    @classmethod
    def read(cls, node: dict[str, Any] | None) -> _Blob | None:
        if not node or "oid" not in node:
            return None
        text = node.get("text")
        complete = isinstance(text, str) and not node.get("isTruncated")
        return cls(str(node["oid"]), int(node.get("byteSize") or 0), text if complete else None)


def _schema_files(root: str, tree: dict[str, Any] | None) -> dict[str, _Blob]:
    """The `*.prisma` blobs of a listing of the root's parent directory (`_SCHEMA_TREE`), by repository path."""
    parent = posixpath.dirname(root)
    found: dict[str, _Blob] = {}

    def walk(node: dict[str, Any] | None, directory: str) -> None:
        for entry in (node or {}).get("entries") or []:
            path = posixpath.join(directory, entry["name"])
            obj = entry.get("object") or {}
            if "entries" in obj:
                walk(obj, path)
            elif is_schema_path(root, path) and (blob := _Blob.read(obj)) is not None:
                found[path] = blob

    walk(tree, parent)
    return found


def _folders(tree: dict[str, Any] | None) -> dict[str, _Blob] | None:
    if tree is None:
        return None
    folders: dict[str, _Blob] = {}
    for entry in tree.get("entries") or []:
        obj = entry.get("object") or {}
        for inner in obj.get("entries") or []:
            if inner.get("name") == "migration.sql":
                blob = _Blob.read(inner.get("object"))
                if blob is not None:
                    folders[entry["name"]] = blob
    return folders


def _batches(blobs: Sequence[_Blob]) -> Iterator[list[_Blob]]:
    batch: list[_Blob] = []
    size = 0
    for blob in blobs:
        if batch and (len(batch) >= TEXT_BATCH_FILES or size + blob.size > TEXT_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(blob)
        size += blob.size
    if batch:
        yield batch


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
        """Everything one review needs, in one GraphQL query when it fits. More only for further pages (files,
        comments, zdm's earlier reviews and their comments), blobs GraphQL cut short, migration roots other than
        the ones guessed (`read_roots`), and repositories whose migrations are too much for one query: for those
        the trees come first and the texts in bounded batches after (remembered for a week)."""
        split_key = f"zdm:split-reads:{owner}/{repo}"
        split = bool(self.connection.exists(split_key))
        try:
            return self._read_pull_request(owner, repo, number, head, base, roots, split)
        except (GraphQLFailed, RequestFailed) as error:
            if split or not query_too_big(error):
                raise
        log.warning("review.split_reads", repo=f"{owner}/{repo}", pull=number)
        self.connection.set(split_key, 1, ex=SPLIT_READ_SECONDS)
        return self._read_pull_request(owner, repo, number, head, base, roots, True)

    def _read_pull_request(
        self,
        owner: str,
        repo: str,
        number: int,
        head: str,
        base: str,
        roots: Sequence[str],
        split: bool,
    ) -> PullRequestState:
        content = _Content(self, owner, repo, head, base, roots, with_config=True, texts=not split)
        query = (
            "query ZdmReview($owner: String!, $name: String!, $number: Int!, $head: GitObjectID!, $appId: Int!)"
            " {\n  repository(owner: $owner, name: $name) {\n"
            "    pullRequest(number: $number) {\n"
            "      id number headRefOid baseRefOid author { login }\n"
            f"      {_FILES.format(after='')}\n"
            f"      {_COMMENTS.format(before='')}\n"
            f"      {_REVIEWS.format(after='')}\n"
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
        }
        repository = self.gh.graphql.request(query, variables)["repository"]
        pull = repository["pullRequest"]
        where = {"owner": owner, "name": repo, "number": number}
        files = {
            node["path"]: node["changeType"]
            for node in self._all_nodes(_FILES_QUERY, where, pull["files"], ("files",))
        }
        comments = [
            _issue_comment(node)
            for node in self._all_nodes(_COMMENTS_QUERY, where, pull["comments"], ("comments",))
        ]
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
            commented_digests=self._posted_digests(where, pull["reviews"]),
            check_run_id=latest_run[0] if latest_run else None,
            check_run_annotations=latest_run[1] if latest_run else 0,
        )
        content.parse(repository, state)
        return state

    def _all_nodes(
        self, query: str, variables: dict[str, Any], first: dict[str, Any], path: Sequence[str]
    ) -> list[dict[str, Any]]:
        """A connection's nodes: its first page (already read), then every further page through githubkit's
        paginator (forwards from `endCursor`, or backwards from `startCursor` for a `last:` connection)."""
        nodes: list[dict[str, Any]] = list(first["nodes"])
        page = first["pageInfo"]
        forwards = "hasNextPage" in page
        if not (page["hasNextPage"] if forwards else page["hasPreviousPage"]):
            return nodes
        cursor = page["endCursor"] if forwards else page["startCursor"]
        for data in self.gh.graphql.paginate(query, {**variables, "cursor": cursor}):
            connection = data["node"] if "node" in data else data["repository"]["pullRequest"]
            for key in path:
                connection = connection[key]
            nodes.extend(connection["nodes"])
        return nodes

    def _posted_digests(self, where: dict[str, Any], reviews: dict[str, Any]) -> set[str]:
        """The statements zdm already commented on: the markers in every comment of every review zdm wrote.

        Reviews are told apart by their author as GraphQL names it (`__typename` Bot, `login` the App's slug,
        where REST says `slug[bot]`), not by the `author:` filter, whose handling of bots GitHub documents not."""
        slug = self.app_slug()
        digests: set[str] = set()
        for review in self._all_nodes(_REVIEWS_QUERY, where, reviews, ("reviews",)):
            author = review.get("author") or {}
            if author.get("__typename") != "Bot" or author.get("login") != slug:
                continue
            bodies = self._all_nodes(
                _REVIEW_COMMENTS_QUERY, {"id": review["id"]}, review["comments"], ("comments",)
            )
            for body in bodies:
                for found in FINDING_MARKER_PATTERN.findall(body["body"]):
                    digests.update(found.split())
        return digests

    def read_roots(self, owner: str, repo: str, state: PullRequestState, roots: Sequence[str]) -> None:
        """Add roots the first query did not guess (a second query, only then)."""
        split = bool(self.connection.exists(f"zdm:split-reads:{owner}/{repo}"))
        content = _Content(
            self, owner, repo, state.head_sha, state.base_sha, roots, with_config=False, texts=not split
        )
        query = (
            "query ZdmRoots($owner: String!, $name: String!) {\n  repository(owner: $owner, name: $name) {\n"
            + content.fields()
            + "  }\n}"
        )
        content.parse(self.gh.graphql.request(query, {"owner": owner, "name": repo})["repository"], state)

    def blob_texts(self, owner: str, repo: str, blobs: Iterable[_Blob]) -> dict[str, str]:
        """The full text of each blob (by oid): through GraphQL in bounded batches when GitHub gives them whole
        there, else through the REST Git blobs API."""
        unique = {blob.oid: blob for blob in blobs}
        texts: dict[str, str] = {}
        large = [b for b in unique.values() if b.size > GRAPHQL_TEXT_BYTES]
        for batch in _batches([b for b in unique.values() if b.size <= GRAPHQL_TEXT_BYTES]):
            fields = " ".join(
                f"t{i}: object(oid: {_quote(blob.oid)}) {{ ... on Blob {{ text isTruncated }} }}"
                for i, blob in enumerate(batch)
            )
            data = self.gh.graphql.request(
                f"query ZdmTexts($owner: String!, $name: String!) {{ repository(owner: $owner, name: $name) {{ {fields} }} }}",
                {"owner": owner, "name": repo},
            )["repository"]
            for index, blob in enumerate(batch):
                node = data.get(f"t{index}") or {}
                if isinstance(node.get("text"), str) and not node.get("isTruncated"):
                    texts[blob.oid] = node["text"]
                else:
                    large.append(blob)
        for blob in large:
            data = self.gh.rest.git.get_blob(owner, repo, blob.oid).parsed_data
            raw = base64.b64decode(data.content) if data.encoding == "base64" else data.content.encode()
            texts[blob.oid] = raw.decode("utf-8", errors="replace")
        return texts

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

    # -- a merge group --------------------------------------------------------------------------------------

    def compare(self, owner: str, repo: str, base: str, head: str) -> Comparison:
        """What changed from `base` to `head`, and the commits in between, in one request (GitHub's compare:
        at most 300 files and the newest 250 commits)."""
        data = self.gh.rest.repos.compare_commits(owner, repo, f"{base}...{head}").parsed_data
        files: dict[str, str] = {}
        for entry in data.files or []:
            if entry.status == "unchanged":
                continue
            files[entry.filename] = _CHANGE_TYPES.get(entry.status, "CHANGED")
            previous = entry.previous_filename or None
            if entry.status == "renamed" and previous:
                # The old path's root changed too: its history has lost a migration.
                files.setdefault(previous, "DELETED")
        commits = [(commit.sha, commit.commit.message) for commit in data.commits]
        return Comparison(files, commits, data.total_commits)

    def read_merge_group(
        self,
        owner: str,
        repo: str,
        head: str,
        base: str,
        roots: Sequence[str],
        numbers: Sequence[int],
        comparison: Comparison,
    ) -> MergeGroupState:
        """A merge group's migration roots and history files at both commits, `.github/zdm.yml` at the base,
        and its pull requests' files and conversations, in one GraphQL query when it fits (as
        `read_pull_request`: further pages after it, trees before texts for repositories too big for one)."""
        state = MergeGroupState(head, base, dict(comparison.files))
        split_key = f"zdm:split-reads:{owner}/{repo}"
        split = bool(self.connection.exists(split_key))
        try:
            self._read_merge_group(owner, repo, state, roots, numbers, split)
        except (GraphQLFailed, RequestFailed) as error:
            if split or not query_too_big(error):
                raise
            log.warning("merge_group.split_reads", repo=f"{owner}/{repo}", head=head)
            self.connection.set(split_key, 1, ex=SPLIT_READ_SECONDS)
            self._read_merge_group(owner, repo, state, roots, numbers, True)
        return state

    def _read_merge_group(
        self,
        owner: str,
        repo: str,
        state: MergeGroupState,
        roots: Sequence[str],
        numbers: Sequence[int],
        split: bool,
    ) -> None:
        content = _Content(
            self, owner, repo, state.head_sha, state.base_sha, roots, with_config=True, texts=not split
        )
        query = (
            "query ZdmMergeGroup($owner: String!, $name: String!) {\n  repository(owner: $owner, name: $name) {\n"
            + _pull_fields(numbers)
            + content.fields()
            + "  }\n}"
        )
        repository = self._request_pulls(query, {"owner": owner, "name": repo})
        state.pulls.update(self._queued_pulls(owner, repo, repository))
        content.parse(repository, state)

    def read_pulls(self, owner: str, repo: str, numbers: Sequence[int]) -> dict[int, QueuedPull]:
        """Pull requests found after the first query (by their commits): their files and conversations."""
        if not numbers:
            return {}
        query = (
            "query ZdmQueuedPulls($owner: String!, $name: String!) {\n  repository(owner: $owner, name: $name) {\n"
            + _pull_fields(numbers)
            + "  }\n}"
        )
        repository = self._request_pulls(query, {"owner": owner, "name": repo})
        return self._queued_pulls(owner, repo, repository)

    def _request_pulls(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The query's `repository`; a number that is no pull request (a commit message may name an issue)
        leaves its field null, with GitHub's NOT_FOUND error beside the rest of the answer."""
        try:
            data = self.gh.graphql.request(query, variables)
        except GraphQLFailed as error:
            answer = error.response
            missing = [
                e
                for e in answer.errors or []
                if e.type == "NOT_FOUND"
                and e.path
                and len(e.path) == 2
                and str(e.path[1]).startswith("pull_")
            ]
            if (
                not answer.data
                or not answer.data.get("repository")
                or len(missing) != len(answer.errors or [])
            ):
                raise
            data = answer.data
        repository: dict[str, Any] = data["repository"]
        return repository

    def _queued_pulls(self, owner: str, repo: str, repository: dict[str, Any]) -> dict[int, QueuedPull]:
        found: dict[int, QueuedPull] = {}
        for key, pull in repository.items():
            if not key.startswith("pull_") or not pull:
                continue
            where = {"owner": owner, "name": repo, "number": pull["number"]}
            files = frozenset(
                node["path"] for node in self._all_nodes(_FILES_QUERY, where, pull["files"], ("files",))
            )
            comments = [
                _issue_comment(node)
                for node in self._all_nodes(_COMMENTS_QUERY, where, pull["comments"], ("comments",))
            ]
            found[int(pull["number"])] = QueuedPull(int(pull["number"]), files, comments)
        return found

    def pulls_with_commit(self, owner: str, repo: str, sha: str) -> list[int]:
        """The pull requests GitHub associates with a commit (`GET .../commits/{sha}/pulls`)."""
        found = self.gh.rest.repos.list_pull_requests_associated_with_commit(
            owner, repo, sha, per_page=100
        ).parsed_data
        return [int(pull.number) for pull in found]

    # -- writing ----------------------------------------------------------------------------------------------

    def publish_check_run(
        self,
        owner: str,
        repo: str,
        existing: int | None,
        head: str,
        number: int | None,
        conclusion: str,
        title: str,
        summary: str,
        annotations: Sequence[Annotation],
        actions: Sequence[dict[str, str]] = (),
        annotations_present: int = 0,
        external_id: str | None = None,
    ) -> int:
        """Create the head's check run (or complete the existing one); annotations go 50 per request.

        GitHub appends annotations and cannot remove them, so an existing run gets only those it lacks (the
        report lists them in a stable order). `external_id` defaults to the pull request's `pr:<number>`."""
        if existing is not None:
            annotations = annotations[annotations_present:]
        title, summary = title[:MAX_TITLE], cap(summary, MAX_OUTPUT)
        batches = [
            list(annotations[i : i + ANNOTATIONS_PER_REQUEST])
            for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)
        ] or [[]]
        body: dict[str, Any] = {
            "name": CHECK_NAME,
            "head_sha": head,
            "external_id": external_id if external_id is not None else f"pr:{number}",
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

    def publish_merge_group_check_run(
        self,
        owner: str,
        repo: str,
        head: str,
        base: str,
        conclusion: str,
        title: str,
        summary: str,
        annotations: Sequence[Annotation],
    ) -> int:
        """The pull request check's run, completed on a merge group's head commit. A new run each time: GitHub
        sends `checks_requested` once per group, and a retried job posting it again changes nothing, since
        GitHub reads the newest run of a name. No Approve button: approvals are given on pull requests."""
        return self.publish_check_run(
            owner,
            repo,
            None,
            head,
            None,
            conclusion,
            title,
            summary,
            annotations,
            external_id=f"merge-group:{base}",
        )

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

    def post_file_comment(self, owner: str, repo: str, number: int, head: str, comment: FileComment) -> None:
        """A comment on a whole file (`subject_type: file`), standing for many statements' inline comments."""
        self.gh.rest.pulls.create_review_comment(
            owner,
            repo,
            number,
            data=cast(
                Any,
                {
                    "commit_id": head,
                    "path": comment.path,
                    "subject_type": "file",
                    "body": cap(comment.body, MAX_COMMENT),
                },
            ),
        )

    def upsert_summary(
        self, owner: str, repo: str, number: int, existing: IssueComment | None, body: str
    ) -> None:
        body = cap(body, MAX_COMMENT)
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
        self.gh.rest.issues.create_comment(owner, repo, number, body=cap(body, MAX_COMMENT))

    def summary_comment(self, state: PullRequestState, bot: str) -> IssueComment | None:
        for comment in state.comments:
            if comment.author_is_bot and comment.author == bot and SUMMARY_MARKER in comment.body:
                return comment
        return None


def _issue_comment(node: dict[str, Any]) -> IssueComment:
    author = node.get("author") or {}
    return IssueComment(
        int(node["databaseId"]),
        node["body"],
        author.get("login") or "ghost",
        author.get("__typename") == "Bot",
        node.get("createdAt") or "",
        node.get("lastEditedAt") is not None,
    )


def _pull_fields(numbers: Sequence[int]) -> str:
    """One aliased `pullRequest` field per number: its files and its conversation (first pages)."""
    return "".join(
        f"    pull_{number}: pullRequest(number: {int(number)}) {{ number"
        f" {_FILES.format(after='')} {_COMMENTS.format(before='')} }}\n"
        for number in numbers
    )


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
    data: dict[str, Any] = {
        "path": comment.path,
        "line": comment.line,
        "side": "RIGHT",
        "body": cap(comment.body, MAX_COMMENT),
    }
    if comment.start_line is not None and comment.start_line < comment.line:
        data["start_line"] = comment.start_line
        data["start_side"] = "RIGHT"
    return data


class _Content:
    """The GraphQL fields reading migration roots (at both commits) and package and config files, and what they
    answered: texts GitHub gave whole are kept, the others fetched (`GitHubAdapter.blob_texts`)."""

    def __init__(
        self,
        adapter: GitHubAdapter,
        owner: str,
        repo: str,
        head: str,
        base: str,
        roots: Sequence[str],
        with_config: bool,
        texts: bool = True,
    ) -> None:
        self.adapter = adapter
        self.owner, self.repo, self.head, self.base = owner, repo, head, base
        self.roots = list(roots)
        self.cached = {root: adapter._cached_tree(owner, repo, base, root) for root in self.roots}
        history = {path for r in roots for path in _history_paths(r)}
        self.head_paths = sorted({*(p for r in roots for p in package_files(r)), *history})
        self.base_paths = [*([CONFIG_PATH, STATS_PATH] if with_config else []), *sorted(history)]
        # Without texts the query asks only what each blob is; its text is read in batches afterwards.
        self.blob = _BLOB if texts else _BLOB_META

    def fields(self) -> str:
        fields = []
        tree = _root_tree(self.blob)
        for index, root in enumerate(self.roots):
            if self.cached[root] is None:
                fields.append(
                    f"base_{index}: object(expression: {_quote(f'{self.base}:{root}')}) {{ ... on Tree {{ {tree} }} }}"
                )
            fields.append(
                f"head_{index}: object(expression: {_quote(f'{self.head}:{root}')}) {{ ... on Tree {{ {tree} }} }}"
            )
            parent = posixpath.dirname(root)
            for side, sha in (("bs", self.base), ("hs", self.head)):
                fields.append(
                    f"{side}_{index}: object(expression: {_quote(f'{sha}:{parent}')}) {{ ... on Tree {{ {_SCHEMA_TREE} }} }}"
                )
        for index, path in enumerate(self.head_paths):
            fields.append(
                f"hf_{index}: object(expression: {_quote(f'{self.head}:{path}')}) {{ {self.blob} }}"
            )
        for index, path in enumerate(self.base_paths):
            fields.append(
                f"bf_{index}: object(expression: {_quote(f'{self.base}:{path}')}) {{ {self.blob} }}"
            )
        return "".join(f"    {f}\n" for f in fields)

    def parse(self, repository: dict[str, Any], state: CommitRange) -> None:
        base_trees = {
            root: _folders(repository.get(f"base_{index}"))
            for index, root in enumerate(self.roots)
            if self.cached[root] is None
        }
        head_trees = {
            root: _folders(repository.get(f"head_{index}")) for index, root in enumerate(self.roots)
        }
        head_files = {path: _Blob.read(repository.get(f"hf_{i}")) for i, path in enumerate(self.head_paths)}
        base_files = {path: _Blob.read(repository.get(f"bf_{i}")) for i, path in enumerate(self.base_paths)}
        # Schema files found in the listings that were not read by path: their texts come with the others.
        for side, files in (("hs", head_files), ("bs", base_files)):
            for index, root in enumerate(self.roots):
                for path, listed in _schema_files(root, repository.get(f"{side}_{index}")).items():
                    known = files.get(path)
                    files[path] = known if known is not None and known.oid == listed.oid else listed
        blobs = [
            *(b for tree in [*base_trees.values(), *head_trees.values()] for b in (tree or {}).values()),
            *(b for b in [*head_files.values(), *base_files.values()] if b is not None),
        ]
        fetched = self.adapter.blob_texts(self.owner, self.repo, [b for b in blobs if b.text is None])

        def text(blob: _Blob | None) -> str | None:
            return None if blob is None else blob.text if blob.text is not None else fetched.get(blob.oid)

        def texts(tree: dict[str, _Blob] | None) -> dict[str, str] | None:
            if tree is None:
                return None
            return {name: value for name, blob in tree.items() if (value := text(blob)) is not None}

        for root in self.roots:
            cached = self.cached[root]
            if cached is None:
                tree = texts(base_trees[root])
                self.adapter._cache_tree(self.owner, self.repo, self.base, root, tree)
                state.base_roots[root] = tree
            else:
                state.base_roots[root] = cached or None
            state.head_roots[root] = texts(head_trees[root])
        for path, blob in head_files.items():
            state.head_texts[path] = text(blob)
        for path, blob in base_files.items():
            state.base_texts[path] = text(blob)
