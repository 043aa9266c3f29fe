"""Which files changed since the merge base with a ref: `zdm check --base REF`, the CLI twin of what the App
reads from a pull request.

"Changed" is what the pull request would bring, seen from the working tree: files committed since the merge
base, staged, modified, or new and not ignored (a migration `prisma migrate dev` just wrote counts before it
is committed). Deleted files are not, but are listed apart: the history rules need to know a migration went.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class GitError(RuntimeError):
    """git is missing or refused: worded for the person who ran zdm."""


@dataclass(frozen=True)
class Changes:
    merge_base: str
    # Absolute paths of the changed files, under the resolved top level of the work tree.
    paths: frozenset[Path]
    # Absolute paths of the files the merge base has and the working tree no longer has.
    deleted: frozenset[Path] = frozenset()
    top: Path | None = None


def _git(repository: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if done.returncode != 0:
        raise GitError(done.stderr.strip() or f"git {args[0]} exited with {done.returncode}")
    return done.stdout


def changed_since(repository: Path, base: str) -> Changes:
    """Files added or changed since the merge base of `base` and HEAD, in the working tree of `repository`."""
    top = Path(_git(repository, "rev-parse", "--show-toplevel").strip()).resolve()
    try:
        merge_base = _git(top, "merge-base", base, "HEAD").strip()
    except GitError as error:
        shallow = _git(top, "rev-parse", "--is-shallow-repository").strip() == "true"
        hint = (
            " This clone is shallow: fetch the history (`git fetch --unshallow`, or actions/checkout with "
            "`fetch-depth: 0`)."
            if shallow
            else f" Is {base!r} fetched (`git fetch origin {base.removeprefix('origin/')}`)?"
        )
        raise GitError(f"no merge base of {base!r} and HEAD: {error}.{hint}") from None
    # -z: names exactly as stored (no quoting of unusual characters); --no-renames: a renamed file is new.
    tracked = _git(top, "diff", "--name-only", "--no-renames", "--diff-filter=d", "-z", merge_base, "--")
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "--full-name", "-z")
    names = {name for name in (tracked + untracked).split("\0") if name}
    gone = _git(top, "diff", "--name-only", "--no-renames", "--diff-filter=D", "-z", merge_base, "--")
    return Changes(
        merge_base,
        frozenset(top / name for name in names),
        frozenset(top / name for name in gone.split("\0") if name),
        top,
    )


def blobs_at(
    repository: Path, commit: str, pathspecs: list[str], wanted: Callable[[str], bool]
) -> dict[str, str]:
    """The text at `commit` of each file under `pathspecs` (repository paths) for which `wanted(path)` holds:
    one `git ls-tree` for the names, one `git cat-file --batch` for all the texts (a root of hundreds of
    migrations costs two processes, not hundreds)."""
    listing = _git(repository, "ls-tree", "-r", "-z", "--full-tree", commit, "--", *pathspecs)
    oids: dict[str, str] = {}
    for entry in listing.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and wanted(path):
            oids[path] = parts[2]
    if not oids:
        return {}
    unique = list(dict.fromkeys(oids.values()))
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), "cat-file", "--batch"],
            input="".join(f"{oid}\n" for oid in unique).encode(),
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if done.returncode != 0:
        raise GitError(done.stderr.decode(errors="replace").strip() or "git cat-file failed")
    texts: dict[str, str] = {}
    output, offset = done.stdout, 0
    for oid in unique:
        header_end = output.index(b"\n", offset)
        size = int(output[offset:header_end].split()[2])
        start = header_end + 1
        # Invalid UTF-8 is replaced, as zdm reads files from the working tree.
        texts[oid] = output[start : start + size].decode("utf-8", errors="replace")
        offset = start + size + 1
    return {path: texts[oid] for path, oid in oids.items()}
