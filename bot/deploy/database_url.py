"""Which database `zdm deploy` talks to, and refusing the poolers Migrate cannot run through.

Prisma's connection strings carry options of its own (`schema`, `pgbouncer`, `connection_limit`, ...) that
libpq rejects, so the URL is translated before psycopg sees it; `schema` becomes the search path, which is
where Prisma keeps `_prisma_migrations`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# libpq's own parameters (PostgreSQL 18, "Parameter Key Words"), kept as they are.
_LIBPQ_PARAMETERS = frozenset(
    [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslnegotiation",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslkeylogfile",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
    ]
)
# Supabase's shared pooler: port 6543 is transaction mode, 5432 on the same host is session mode.
_SUPABASE_POOLER = re.compile(r"\.pooler\.supabase\.com$")
_SUPABASE_TRANSACTION_PORT = 6543


class DatabaseUrlError(ValueError):
    """A URL zdm deploy will not use, with what to use instead."""


@dataclass(frozen=True)
class DatabaseTarget:
    """The URL as given (for messages, password hidden) and what psycopg connects with."""

    shown: str
    conninfo: str
    schema: str
    source: str


def resolve_database_url(
    given: str | None, prisma_dir: Path, environ: dict[str, str] | None = None
) -> DatabaseTarget:
    """`--database-url`, else the direct URL the Prisma schema or `prisma.config.ts` names, else DATABASE_URL."""
    env = dict(os.environ if environ is None else environ)
    if given:
        return database_target(given, "--database-url")
    for variable in _direct_url_variables(prisma_dir):
        if env.get(variable):
            return database_target(env[variable], variable)
    if env.get("DATABASE_URL"):
        return database_target(env["DATABASE_URL"], "DATABASE_URL")
    raise DatabaseUrlError("no database: pass --database-url or set DATABASE_URL")


def database_target(url: str, source: str) -> DatabaseTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise DatabaseUrlError(f"{source} is not a PostgreSQL URL (postgresql://...): {hide_password(url)}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = dict(query)
    _refuse_pooler(url, parts.hostname or "", parts.port, options, source)
    schema = options.get("schema") or "public"
    kept = [(key, value) for key, value in query if key in _LIBPQ_PARAMETERS]
    search_path = f"-c search_path={_quote_option(schema)}"
    given_options = next((value for key, value in kept if key == "options"), "")
    kept = [(key, value) for key, value in kept if key != "options"]
    kept.append(("options", f"{given_options} {search_path}".strip()))
    conninfo = urlunsplit(parts._replace(query=urlencode(kept, quote_via=quote)))
    return DatabaseTarget(shown=hide_password(url), conninfo=conninfo, schema=schema, source=source)


def hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _refuse_pooler(url: str, host: str, port: int | None, options: dict[str, str], source: str) -> None:
    # Migrate holds a session-level advisory lock and runs statements that must share one session; a
    # transaction-mode pooler hands each transaction to another server connection.
    if options.get("pgbouncer", "").lower() == "true":
        raise DatabaseUrlError(
            f"{source} goes through PgBouncer in transaction mode (pgbouncer=true): {hide_password(url)}. "
            "Migrations need a direct connection: set DIRECT_URL (and `directUrl` in the datasource) to the "
            "database's own host and port, or pass it with --database-url."
        )
    if _SUPABASE_POOLER.search(host) and port == _SUPABASE_TRANSACTION_PORT:
        direct = _supabase_direct_url(url)
        raise DatabaseUrlError(
            f"{source} is Supabase's pooler in transaction mode (port 6543): {hide_password(url)}. "
            f"Use the direct connection instead: {direct} (or the pooler's session mode, port 5432)."
        )


def _supabase_direct_url(url: str) -> str:
    """Supabase names the pooler's user `postgres.<project-ref>`; the direct host is `db.<project-ref>.supabase.co`."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    if "." not in user:
        return hide_password(
            urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit('@', 1)[0]}@<db host>:5432"))
        )
    role, project = user.split(".", 1)
    password = ":***" if parts.password is not None else ""
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "pgbouncer"])
    return urlunsplit(parts._replace(netloc=f"{role}{password}@db.{project}.supabase.co:5432", query=query))


def _quote_option(value: str) -> str:
    # Inside libpq's `options`, spaces and backslashes are escaped with a backslash.
    return re.sub(r"([\\ ])", r"\\\1", f'"{value}"' if not value.islower() else value)


_ENV_CALL = r"""env\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\)|process\.env\.([A-Za-z_][A-Za-z0-9_]*)|process\.env\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]"""
_SCHEMA_DIRECT_URL = re.compile(r"^\s*directUrl\s*=\s*env\(\s*\"([^\"]+)\"\s*\)", re.MULTILINE)
_CONFIG_DIRECT_URL = re.compile(r"\bdirectUrl\s*:\s*(?:" + _ENV_CALL + ")")
_CONFIG_DATASOURCE_URL = re.compile(
    r"\bdatasource\s*:\s*\{[^}]*?\burl\s*:\s*(?:" + _ENV_CALL + ")", re.DOTALL
)


def _direct_url_variables(prisma_dir: Path) -> list[str]:
    """Environment variables naming Migrate's direct connection: `directUrl = env("...")` in a schema file,
    `directUrl` or (Prisma 7, where the config's datasource is Migrate's) `datasource.url` in
    `prisma.config.ts`, looked for from the migrations' prisma folder up to the repository."""
    found: list[str] = []
    for folder in (prisma_dir, *prisma_dir.parents):
        for schema in sorted(folder.glob("*.prisma")) + sorted((folder / "schema").glob("*.prisma")):
            found += _SCHEMA_DIRECT_URL.findall(_read(schema))
        for name in ("prisma.config.ts", "prisma.config.mts", "prisma.config.js", ".config/prisma.ts"):
            text = _read(folder / name)
            for pattern in (_CONFIG_DIRECT_URL, _CONFIG_DATASOURCE_URL):
                found += [next(g for g in match if g) for match in pattern.findall(text)]
        if (folder / ".git").exists():
            break
    return list(dict.fromkeys(v for v in found if v != "DATABASE_URL"))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
