"""The GitHub App manifest (`bot/app.yml`) as GitHub's manifest flow takes it, addressed to this server.

GitHub's flow: a form POSTs `manifest` (JSON) to `{GitHub}/settings/apps/new?state=...` (or
`/organizations/{org}/settings/apps/new`); GitHub shows the App to the user, creates it, and sends the browser to
`redirect_url?code=...&state=...`; `POST /app-manifests/{code}/conversions` then returns its credentials.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

MANIFEST_PATH = Path(__file__).with_name("app.yml")
WEBHOOK_PATH = "/api/github/webhooks"
CALLBACK_PATH = "/setup/callback"
ORGANIZATION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")


@cache
def _declared() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))
    return data


def manifest_for(public_url: str) -> str:
    """app.yml with this server's webhook, its way back from GitHub, and its page after an installation."""
    base = public_url.rstrip("/")
    manifest = dict(_declared())
    manifest["hook_attributes"] = {**manifest.get("hook_attributes", {}), "url": base + WEBHOOK_PATH}
    manifest["redirect_url"] = base + CALLBACK_PATH
    manifest["setup_url"] = base + "/"
    return json.dumps(manifest)


def registration_url(github_url: str, state: str, organization: str | None) -> str:
    if organization:
        if not ORGANIZATION.fullmatch(organization):
            raise ValueError(f"not an organisation login: {organization!r}")
        return f"{github_url}/organizations/{organization}/settings/apps/new?state={state}"
    return f"{github_url}/settings/apps/new?state={state}"


def events() -> list[str]:
    return [str(event) for event in _declared().get("default_events", [])]


@cache
def permissions() -> list[tuple[str, str, str]]:
    """(permission, access, why), the why taken from the comments above each permission in app.yml: the one
    place that says it."""
    declared = _declared().get("default_permissions", {})
    reasons: dict[str, str] = {}
    comment: list[str] = []
    inside = False
    for line in MANIFEST_PATH.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if line.startswith("default_permissions:"):
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
        elif ":" in stripped:
            reasons[stripped.split(":", 1)[0]] = " ".join(comment)
            comment = []
    return [(name, str(access), reasons.get(name, "")) for name, access in declared.items()]
