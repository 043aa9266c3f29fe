"""What the fake GitHub remembers: repositories as commits of files, pull requests, and everything the App
wrote (check runs, reviews, comments, reactions), plus a log of every call."""

from __future__ import annotations

import difflib
import hashlib
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def key_pair() -> tuple[str, str]:
    """A fresh RSA key for an App: (private PEM, public PEM). Every run makes its own; none is stored."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Call:
    method: str
    path: str
    status: int
    kind: str  # rest | graphql
    auth: str  # app | installation | none


@dataclass
class Fault:
    """Answer the next `times` matching calls with this status instead of serving them (after `delay` seconds;
    status 0 serves the call normally after the delay: a slow GitHub)."""

    method: str
    path_contains: str
    status: int
    times: int = 1
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=lambda: {"message": "Server Error"})


@dataclass
class AfterCall:
    """Serve the next `times` matching calls, then run `action` (e.g. kill the worker that sent it)."""

    method: str
    path_contains: str
    action: Callable[[], None]
    times: int = 1


@dataclass
class User:
    login: str
    id: int
    type: str = "User"  # User | Bot


@dataclass
class CheckRun:
    id: int
    node_id: str
    head_sha: str
    name: str
    status: str
    conclusion: str | None
    external_id: str | None
    output: dict[str, Any]
    annotations: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    app_id: int
    suite_id: int


@dataclass
class ReviewComment:
    id: int
    review_id: int
    path: str
    line: int | None  # None: on the whole file (`subject_type: file`)
    start_line: int | None
    body: str
    user: User
    commit_id: str


@dataclass
class Review:
    id: int
    node_id: str
    pull_number: int
    user: User
    body: str
    event: str
    commit_id: str
    comments: list[ReviewComment]


@dataclass
class IssueComment:
    id: int
    node_id: str
    issue_number: int
    user: User
    body: str
    created_at: str
    updated_at: str
    edited: bool = False
    reactions: list[tuple[str, str]] = field(default_factory=list)  # (login, content)


@dataclass
class PullRequest:
    number: int
    node_id: str
    author: User
    head_sha: str
    base_sha: str
    head_ref: str = "feature"
    base_ref: str = "main"


@dataclass(frozen=True)
class MergeGroup:
    """What GitHub's merge queue made of queued pull requests: a commit on top of the base branch per pull
    request, on a read-only branch named after the last one."""

    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    pulls: tuple[int, ...]


@dataclass
class Repository:
    owner: str
    name: str
    id: int
    node_id: str
    installation_id: int
    commits: dict[str, dict[str, str]] = field(default_factory=dict)
    # Each commit's parents (two for a merge) and message, for comparisons and a merge queue's commits.
    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    check_runs: list[CheckRun] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    issue_comments: list[IssueComment] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)


def blob_oid(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def diff_of(base: str | None, head: str | None) -> tuple[str, set[int]]:
    """A GitHub-style patch (hunks only) and the head-side lines it shows (added and context lines)."""
    old = (base or "").splitlines()
    new = (head or "").splitlines()
    lines = list(difflib.unified_diff(old, new, n=3, lineterm=""))[2:]
    shown: set[int] = set()
    number = 0
    for line in lines:
        if line.startswith("@@"):
            number = int(line.split("+", 1)[1].split(" ", 1)[0].split(",", 1)[0])
            continue
        if line.startswith("-"):
            continue
        shown.add(number)
        number += 1
    return "\n".join(lines), shown


@dataclass
class RegisteredApp:
    id: int
    slug: str
    name: str
    owner: str
    manifest: dict[str, Any]
    private_key_pem: str = field(repr=False)
    public_key_pem: str = field(repr=False)
    webhook_secret: str = field(repr=False)


class GitHubState:
    def __init__(self, app_id: int, app_slug: str, public_key_pem: str) -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self.public_key_pem = public_key_pem
        self.lock = threading.RLock()
        self.repos: dict[str, Repository] = {}
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self.after_calls: list[AfterCall] = []
        # Set by the harness: GitHub sending a delivery again, as `POST .../attempts` asks.
        self.redeliver: Callable[[dict[str, Any]], None] | None = None
        self.tokens: dict[str, int] = {}  # installation token -> installation id
        self.deliveries: list[dict[str, Any]] = []
        self.redelivered: list[int] = []
        self._ids = itertools.count(1000)
        self.bot = User(f"{app_slug}[bot]", 9_000_000, "Bot")
        self.users: dict[str, User] = {}
        self.teams: dict[tuple[str, str], set[str]] = {}
        # Git blobs by object id (sha1 of "blob <size>\0<content>", as git computes it).
        self.blobs: dict[str, str] = {}
        # GitHub gives up on a GraphQL query that takes too long (10 s); the fake stands in for that with the
        # size of what the query would answer, in bytes.
        self.graphql_response_limit = 8_000_000
        # The manifest flow: codes GitHub handed a browser, not yet converted (code -> the App to create).
        self.manifest_codes: dict[str, RegisteredApp] = {}
        # The App the manifest flow created: its webhook and secret, where GitHub sends deliveries.
        self.registered: RegisteredApp | None = None
        self.installations: dict[int, str] = {}  # installation id -> account login

    def register_app(self, app: RegisteredApp) -> str:
        """GitHub created the App from a manifest: a one-time code for the browser to take back."""
        code = f"manifest-code-{self.next_id()}"
        with self.lock:
            self.manifest_codes[code] = app
        return code

    def convert_manifest(self, code: str) -> RegisteredApp | None:
        """`POST /app-manifests/{code}/conversions`: each code works once; from then on the fake is that App."""
        with self.lock:
            app = self.manifest_codes.pop(code, None)
            if app is None:
                return None
            self.registered = app
            self.app_id = app.id
            self.app_slug = app.slug
            self.public_key_pem = app.public_key_pem
            self.bot = User(f"{app.slug}[bot]", self.next_id(), "Bot")
            return app

    def install(self, account: str) -> int:
        installation = self.next_id()
        with self.lock:
            self.installations[installation] = account
        return installation

    def next_id(self) -> int:
        return next(self._ids)

    def user(self, login: str, type_: str = "User") -> User:
        if login not in self.users:
            self.users[login] = User(login, self.next_id(), type_)
        return self.users[login]

    def add_repo(self, owner: str, name: str, installation_id: int) -> Repository:
        repo_id = self.next_id()
        repo = Repository(owner, name, repo_id, f"R_{repo_id}", installation_id)
        self.repos[f"{owner}/{name}"] = repo
        return repo

    def repo(self, owner: str, name: str) -> Repository:
        return self.repos[f"{owner}/{name}"]

    def commit(
        self,
        repo: Repository,
        files: dict[str, str],
        parent: str | None = None,
        message: str = "",
        merged: str | None = None,
    ) -> str:
        """A commit holding the parent's files updated with `files` (a value of "" deletes the path); `merged`
        makes it a merge commit, its second parent."""
        tree = dict(repo.commits.get(parent, {})) if parent else {}
        for path, text in files.items():
            if text == "":
                tree.pop(path, None)
            else:
                tree[path] = text
        key: tuple[Any, ...] = (parent, sorted(tree.items()))
        if message or merged:
            key += (message, merged)
        digest = hashlib.sha1(repr(key).encode()).hexdigest()
        repo.commits[digest] = tree
        repo.parents[digest] = tuple(p for p in (parent, merged) if p)
        repo.messages[digest] = message or "Update files"
        for text in files.values():
            if text:
                self.blobs[blob_oid(text)] = text
        return digest

    def ancestors(self, repo: Repository, sha: str) -> set[str]:
        """The commit and every commit it descends from."""
        seen: set[str] = set()
        pending = [sha]
        while pending:
            current = pending.pop()
            if current not in seen:
                seen.add(current)
                pending.extend(repo.parents.get(current, ()))
        return seen

    def merge_base(self, repo: Repository, base: str, head: str) -> str | None:
        """The newest commit both descend from (breadth first from `base`), as `git merge-base` finds it."""
        reachable = self.ancestors(repo, head)
        queue = [base]
        seen: set[str] = set()
        while queue:
            current = queue.pop(0)
            if current in reachable:
                return current
            if current not in seen:
                seen.add(current)
                queue.extend(repo.parents.get(current, ()))
        return None

    def commits_between(self, repo: Repository, base: str, head: str) -> list[str]:
        """Commits reachable from `head` and not from `base`, oldest first (`git log --reverse base..head`)."""
        excluded = self.ancestors(repo, base)
        order: list[str] = []
        seen: set[str] = set()

        def visit(sha: str) -> None:
            # Parents before children: an iterative post-order walk, first parent first.
            stack = [(sha, False)]
            while stack:
                current, done = stack.pop()
                if done:
                    order.append(current)
                    continue
                if current in seen or current in excluded:
                    continue
                seen.add(current)
                stack.append((current, True))
                stack.extend((p, False) for p in reversed(repo.parents.get(current, ())))

        visit(head)
        return order

    def pulls_with_commit(self, repo: Repository, sha: str) -> list[PullRequest]:
        """The pull requests whose commits hold `sha` (`GET .../commits/{sha}/pulls`)."""
        return [
            pull
            for pull in repo.pulls.values()
            if sha in self.commits_between(repo, pull.base_sha, pull.head_sha)
        ]

    def merge_group(
        self, repo: Repository, base: str, pulls: list[PullRequest], method: str = "merge"
    ) -> MergeGroup:
        """What GitHub's merge queue builds for `pulls` queued in this order on a base branch at `base`: one
        commit per pull request (`merge`: a merge commit of its head; `squash`: one commit titled
        "<title> (#N)"; `rebase`: its commits replayed, their messages kept) on a `gh-readonly-queue` branch."""
        head = base
        for pull in pulls:
            changes = {
                path: repo.commits[pull.head_sha].get(path, "") for path, _ in self.changed_files(repo, pull)
            }
            if method == "merge":
                message = f"Merge pull request #{pull.number} from {repo.owner}/{pull.head_ref}\n\nQueued"
                head = self.commit(repo, changes, parent=head, message=message, merged=pull.head_sha)
            elif method == "squash":
                head = self.commit(
                    repo, changes, parent=head, message=f"Change {pull.number} (#{pull.number})"
                )
            else:
                for sha in self.commits_between(repo, pull.base_sha, pull.head_sha):
                    before = repo.commits[repo.parents[sha][0]] if repo.parents.get(sha) else {}
                    after = repo.commits[sha]
                    step = {p: after.get(p, "") for p in {*before, *after} if before.get(p) != after.get(p)}
                    head = self.commit(repo, step, parent=head, message=repo.messages[sha])
        last = pulls[-1].number
        return MergeGroup(
            head,
            f"refs/heads/gh-readonly-queue/main/pr-{last}-{base}",
            base,
            "refs/heads/main",
            tuple(p.number for p in pulls),
        )

    def open_pull(self, repo: Repository, author: str, base: str, head: str) -> PullRequest:
        number = len(repo.pulls) + 1
        pull = PullRequest(number, f"PR_{self.next_id()}", self.user(author), head, base)
        repo.pulls[number] = pull
        return pull

    def changed_files(self, repo: Repository, pull: PullRequest) -> list[tuple[str, str]]:
        """(path, status) for files that differ between base and head: added, modified or removed."""
        base = repo.commits[pull.base_sha]
        head = repo.commits[pull.head_sha]
        found = []
        for path in sorted({*base, *head}):
            if path not in base:
                found.append((path, "added"))
            elif path not in head:
                found.append((path, "removed"))
            elif base[path] != head[path]:
                found.append((path, "modified"))
        return found

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.path_contains in path and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def user_comment(
        self, repo: Repository, number: int, login: str, body: str, type_: str = "User"
    ) -> IssueComment:
        """A comment someone else writes on the pull request's conversation."""
        with self.lock:
            comment_id = self.next_id()
            comment = IssueComment(
                comment_id, f"IC_{comment_id}", number, self.user(login, type_), body, now(), now()
            )
            repo.issue_comments.append(comment)
        return comment

    def take_after_call(self, method: str, path: str) -> AfterCall | None:
        with self.lock:
            for after in self.after_calls:
                if after.method == method and after.path_contains in path and after.times > 0:
                    after.times -= 1
                    return after
        return None

    def record_delivery(
        self, guid: str, event: str, action: str | None, status: int, payload: dict[str, Any]
    ) -> None:
        """What GitHub keeps of a delivery: `GET /app/hook/deliveries` lists it, newest first."""
        with self.lock:
            self.deliveries.insert(
                0,
                {
                    "id": self.next_id(),
                    "guid": guid,
                    "delivered_at": now(),
                    "redelivery": any(d["guid"] == guid for d in self.deliveries),
                    "duration": 0.01,
                    "status": "OK" if status < 300 else "Service Unavailable" if status == 503 else "Failed",
                    "status_code": status,
                    "event": event,
                    "action": action,
                    "installation_id": None,
                    "repository_id": None,
                    "throttled_at": None,
                    "_payload": payload,
                },
            )

    # What tests read.

    def check_runs_for(self, repo: Repository, sha: str) -> list[CheckRun]:
        return [c for c in repo.check_runs if c.head_sha == sha]

    def review_comments(self, repo: Repository, number: int) -> list[ReviewComment]:
        return [c for r in repo.reviews if r.pull_number == number for c in r.comments]

    def comments_on(self, repo: Repository, number: int) -> list[IssueComment]:
        return [c for c in repo.issue_comments if c.issue_number == number]
