"""`zdm serve` as a process: what SIGTERM stops, that nothing accepted is lost across a restart, and the setup
and status pages clicked through in a real browser (Debian's Chromium) against the fake GitHub."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from bot.settings import CREDENTIALS_FILE
from tests.fakegithub.harness import (
    ROOT,
    AppUnderTest,
    app_under_test,
    free_port,
    private_key_pem,
    serve_in_thread,
    wait_for,
)
from tests.fakegithub.server import create_app as create_fake
from tests.fakegithub.state import Fault, GitHubState
from tests.test_app import BLOCKING, MIGRATIONS, completed_run, new_repo, open_pull, pull_request_payload

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Serve:
    """One `zdm serve` process, started as users start it (no REDIS_URL: the embedded Redis)."""

    def __init__(self, env: dict[str, str], data_dir: Path, log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bot.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(workers),
                ],
                env={**env, "ZDM_DATA_DIR": str(data_dir)},
                cwd=ROOT,
                stdout=out,
                stderr=out,
            )
        wait_for(self.ready, timeout=60, what="zdm serve")

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def started(self) -> list[psutil.Process]:
        """Everything this `zdm serve` runs: its descendants, and the redis-server daemon it started (no longer
        its descendant: it runs in the data directory)."""
        processes = psutil.Process(self.process.pid).children(recursive=True)
        for process in psutil.process_iter(["name"]):
            with contextlib.suppress(psutil.Error):
                if process.info["name"] == "redis-server" and Path(process.cwd()) == self.data_dir:
                    processes.append(process)
        return processes

    def stop(self) -> int:
        """SIGTERM to the serve process alone, as `docker stop` sends it; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=90)


def running(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{process.pid} {' '.join(process.cmdline())}")
    return alive


@pytest.fixture(scope="module")
def github(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppUnderTest]:
    """The fake GitHub with an App; its receiver and workers are `zdm serve`'s own here."""
    with app_under_test(tmp_path_factory.mktemp("serve"), redis_server, workers=0) as under_test:
        yield under_test


def test_sigterm_lets_the_running_review_finish_stops_everything_and_loses_nothing(
    github: AppUnderTest, tmp_path: Path
) -> None:
    env = {k: v for k, v in github.env.items() if k != "REDIS_URL"} | {"ZDM_SWEEP_SECONDS": "0"}
    data = tmp_path / "data"
    repo_a, base_a = new_repo(github, "running-at-sigterm")
    pull_a = open_pull(github, repo_a, base_a, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    repo_b, base_b = new_repo(github, "queued-at-sigterm")
    pull_b = open_pull(github, repo_b, base_b, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})

    serve = Serve(env, data, tmp_path / "serve.log")
    started = serve.started()
    # The worker runs under whichever name the interpreter was started by (python, python3).
    assert sorted({"python" if p.name().startswith("python") else p.name() for p in started}) == [
        "python",
        "redis-server",
    ], started
    # A slow GitHub keeps the first review running when the signal comes; the second waits in the queue.
    slow = Fault("POST", "/graphql", 0, times=1, delay=3.0)
    github.github.faults.append(slow)
    assert (
        github.deliver(
            "pull_request", pull_request_payload(repo_a, pull_a), receiver_url=serve.url
        ).status_code
        == 202
    )
    wait_for(lambda: slow.times == 0, what="the first review to reach GitHub")
    assert (
        github.deliver(
            "pull_request", pull_request_payload(repo_b, pull_b), receiver_url=serve.url
        ).status_code
        == 202
    )
    started = serve.started()

    assert serve.stop() == 0
    assert running(started) == []
    assert completed_run(github, repo_a, pull_a.head_sha).conclusion == "failure"  # finished, not cut short
    assert github.github.check_runs_for(repo_b, pull_b.head_sha) == []

    # The delivery accepted before the signal survived in the append-only file and is reviewed after a restart.
    serve = Serve(env, data, tmp_path / "serve.log")
    assert completed_run(github, repo_b, pull_b.head_sha).conclusion == "failure"
    started = serve.started()
    assert serve.stop() == 0
    assert running(started) == []
    logs = serve.log.read_text()
    assert logs.count('"event": "serve.stop"') == 2


def test_a_second_signal_forces_the_stop(github: AppUnderTest, tmp_path: Path) -> None:
    env = {k: v for k, v in github.env.items() if k != "REDIS_URL"} | {"ZDM_SWEEP_SECONDS": "0"}
    repo, base = new_repo(github, "forced")
    pull = open_pull(github, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING})
    serve = Serve(env, tmp_path / "data", tmp_path / "serve.log")
    stall = Fault("POST", "/graphql", 0, times=1, delay=60.0)
    github.github.faults.append(stall)
    github.deliver("pull_request", pull_request_payload(repo, pull), receiver_url=serve.url)
    wait_for(lambda: stall.times == 0, what="the review to reach GitHub")
    started = serve.started()
    serve.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "serve.stopping" in serve.log.read_text(), what="the orderly stop to begin")
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(timeout=30) == 128 + signal.SIGTERM
    assert running(started) == []
    github.github.faults.clear()


def test_without_credentials_the_receiver_stays_closed(tmp_path: Path) -> None:
    from redis import Redis

    from bot.settings import Settings
    from bot.web import create_app

    settings = Settings.model_validate(
        {"ZDM_DATA_DIR": str(tmp_path), "GITHUB_API_URL": "https://ghe.example/api/v3"}
    )
    with serve_in_thread(create_app(settings, Redis(unix_socket_path=str(tmp_path / "none.sock")))) as url:
        answer = httpx.post(f"{url}/api/github/webhooks", content=b"{}", headers={"X-GitHub-Event": "ping"})
    assert answer.status_code == 401
    # GitHub Enterprise Server: the manifest flow's pages are on the host, the API under /api/v3.
    assert settings.web_url() == "https://ghe.example"


# Skipped only outside CI: .ci/run installs chromium, and a CI run without it must fail, not prove less.
@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)
def test_setup_install_review_and_status_in_a_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    _, placeholder = private_key_pem()  # replaced by the key the manifest flow creates
    state = GitHubState(1, "placeholder", placeholder)
    admin_token = os.urandom(16).hex()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serve_in_thread(create_fake(state)) as github_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ZDM_", "REDIS_URL"))}
        env |= {
            "GITHUB_API_URL": github_url,
            "ZDM_GITHUB_URL": github_url,
            "ZDM_ADMIN_TOKEN": admin_token,
            "ZDM_LOG_JSON": "1",
            "ZDM_SWEEP_SECONDS": "0",
            "ZDM_RETRY_INTERVALS": "",
        }
        data = tmp_path / "data"
        serve = Serve(env, data, tmp_path / "serve.log")
        started = serve.started()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = browser.new_page()
                page.goto(serve.url + "/")
                # Before an App exists the page asks for the admin token: whoever sets up picks the App.
                page.fill("input[name=token]", admin_token)
                page.click("button[type=submit]")
                page.wait_for_selector("#register")
                page.screenshot(path=shots / "1-setup.png", full_page=True)
                assert "checks" in page.content() and "write" in page.content()

                page.click("#register")
                page.wait_for_selector("text=Create GitHub App for octocat")
                assert page.inner_text("#hook") == serve.url + "/api/github/webhooks"
                page.fill("input[name=name]", "zdm for acme")
                page.click("button[type=submit]")
                page.wait_for_selector("#install")
                page.screenshot(path=shots / "2-registered.png", full_page=True)
                registered = state.registered
                assert registered is not None and registered.name == "zdm for acme"
                stored = data / CREDENTIALS_FILE
                assert stat.S_IMODE(stored.stat().st_mode) == 0o600
                assert registered.webhook_secret not in serve.log.read_text()

                page.click("#install")
                page.click("button[type=submit]")  # the fake's "Install"
                page.wait_for_selector("text=Installations")  # back on zdm: the status page
                (installation,) = state.installations
                assert "acme" in page.inner_text("body")

                # A pull request on the installed repository, delivered the way the new App's webhook is.
                under_test = AppUnderTest(state, github_url, serve.url, "", env, registered.webhook_secret)
                repo, base = new_repo(under_test, "shop")
                repo.installation_id = installation
                pull = open_pull(
                    under_test, repo, base, {f"{MIGRATIONS}/20240201000000_index/migration.sql": BLOCKING}
                )
                payload = pull_request_payload(repo, pull)
                payload["installation"]["id"] = installation
                assert under_test.deliver("pull_request", payload).status_code == 202
                assert completed_run(under_test, repo, pull.head_sha, timeout=60).conclusion == "failure"

                # A job that fails, shown with its reason, and retried from the page once GitHub answers again.
                broken = Fault("POST", "/graphql", 500, times=1000)
                state.faults.append(broken)
                other = open_pull(
                    under_test, repo, base, {f"{MIGRATIONS}/20240301000000_more/migration.sql": BLOCKING}
                )
                second = pull_request_payload(repo, other)
                second["installation"]["id"] = installation
                under_test.deliver("pull_request", second)
                wait_for(
                    lambda: (
                        "Retry"
                        in httpx.get(serve.url + "/", headers={"Authorization": f"Bearer {admin_token}"}).text
                    ),
                    timeout=60,
                    what="the failed job on the status page",
                )
                state.faults.clear()
                page.reload()
                page.screenshot(path=shots / "3-status-failed.png", full_page=True)
                body = page.inner_text("body")
                assert "zdm for acme" in body and "acme/shop" in body and "#1" in body and "failure" in body
                assert "RequestFailed" in page.inner_text("#failed")
                page.click("#failed button")
                wait_for(
                    lambda: [
                        run
                        for run in state.check_runs_for(repo, other.head_sha)
                        if run.status == "completed" and run.output.get("title") != "zdm could not finish"
                    ],
                    timeout=60,
                    what="the retried review",
                )
                page.reload()
                page.screenshot(path=shots / "4-status.png", full_page=True)
                assert "#2" in page.inner_text("#reviews")
                text = page.content()
                for secret in (
                    registered.webhook_secret,
                    admin_token,
                    *registered.private_key_pem.splitlines()[1:-1],
                ):
                    assert secret not in text
                browser.close()
        finally:
            assert serve.stop() == 0
        assert running(started) == []
    logs = serve.log.read_text()
    for secret in (registered.webhook_secret, admin_token, *registered.private_key_pem.splitlines()[1:-2]):
        assert secret not in logs
