"""Git in temporary repositories for the tests, with an identity of its own (no global git config needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "zdm tests",
    "GIT_AUTHOR_EMAIL": "tests@zdm.invalid",
    "GIT_COMMITTER_NAME": "zdm tests",
    "GIT_COMMITTER_EMAIL": "tests@zdm.invalid",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout
