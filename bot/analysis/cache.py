"""The analysis cache: each migration's result and the schema the root's migrations built, kept on disk so a
second `zdm check` of unchanged migrations parses nothing (as ruff keeps `.ruff_cache`).

An entry's key chains the content of every migration of the root up to it (a migration is judged against the
schema the earlier ones built), zdm's own code and the settings that change a result. Entries are written to a
temporary file and renamed into place, so two runs writing at once never leave half an entry; each carries an
HMAC with a key kept outside the repository (the user's cache directory), so an entry anybody else wrote (a
cache folder committed to a pull request) is never unpickled, and a corrupt one is a miss.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CACHE_FOLDER = ".zdm_cache"
_DIGEST = hashlib.sha256().digest_size


@cache
def _code_version() -> str:
    """zdm's version and a digest of its own source files (names, sizes, times): a cache written by other code
    is never read, in a release or in a working copy being edited."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("zdm")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout that was never installed
        release = "0"
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return f"{release}-{digest.hexdigest()[:16]}"


def _user_key() -> bytes:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zdm"
    path = base / "cache-key"
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except OSError:
        pass
    key = os.urandom(32)
    try:
        base.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
    except FileExistsError:
        # Another run wrote it first: use theirs.
        return _user_key()
    except OSError:
        pass  # no writable home: this run's entries can be read by this run only
    return key


@dataclass(frozen=True)
class AnalysisCache:
    """Entries under `folder`/<zdm version>/; `settings` names what else changes a result."""

    folder: Path
    settings: str
    key: bytes

    @classmethod
    def at(cls, repository: Path, settings: str) -> AnalysisCache:
        folder = repository / CACHE_FOLDER
        return cls(folder / _code_version(), settings, _user_key())

    def chain(self) -> Any:
        """The running digest of a root: `advance` it with each migration's bytes, in Prisma's order."""
        return hashlib.sha256(self.settings.encode())

    def result(self, key: str) -> Any | None:
        return self._read("r", key)

    def schema(self, key: str) -> Any | None:
        return self._read("s", key)

    def store_result(self, key: str, value: Any) -> None:
        self._write("r", key, value)

    def store_schema(self, key: str, value: Any) -> None:
        self._write("s", key, value)

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / kind / key[:2] / f"{key}.pickle"

    def _read(self, kind: str, key: str) -> Any | None:
        path = self._path(kind, key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        signature, payload = data[:_DIGEST], data[_DIGEST:]
        if not hmac.compare_digest(signature, hmac.new(self.key, payload, hashlib.sha256).digest()):
            return None
        try:
            return pickle.loads(payload)
        except Exception:
            return None

    def _write(self, kind: str, key: str, value: Any) -> None:
        path = self._path(kind, key)
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            path.parent.mkdir(parents=True, exist_ok=True)
            _mark_cache_folder(self.folder.parent)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(descriptor, "wb") as file:
                file.write(hmac.new(self.key, payload, hashlib.sha256).digest() + payload)
            os.replace(temporary, path)
        except (OSError, pickle.PicklingError, RecursionError):
            # A read-only checkout or a full disk: the run goes on without a cache.
            return


def advance(chain: Any, migration: bytes) -> str:
    chain.update(hashlib.sha256(migration).digest())
    return str(chain.hexdigest())


def _mark_cache_folder(folder: Path) -> None:
    """Git ignores it and backup tools skip it, as for ruff's and pytest's caches."""
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Written by zdm: the analysis cache.\n*\n")
        (folder / "CACHEDIR.TAG").write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n# zdm's analysis cache: see https://bford.info/cachedir/\n"
        )
