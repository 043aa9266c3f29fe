"""`/zdm` commands in pull request comments, and the signed approval records zdm writes back (pure).

A command is a line of its own starting with `/zdm`, outside quotes and code blocks; a mention of
`/zdm approve` inside a sentence is not one. An approval is recorded in zdm's own reply comment as a hidden
marker carrying the approver, the digests of the flagged statements it covers, the reason and the time,
signed with a key only zdm holds: flushing Redis loses no approval, and a marker someone else writes (or
edits) does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.report.pull_request import Approval

HELP = """zdm commands, each on a line of its own:

- `/zdm approve <reason>`: accept the flagged statements as they are now (write access needed; the pull
  request's author cannot approve their own migration unless `.github/zdm.yml` allows it). Changing or adding
  a flagged statement later needs a new approval.
- `/zdm recheck`: review the current head again.
- `/zdm help`: this text."""

_MARKER = re.compile(r"<!-- zdm:approval (?P<payload>[A-Za-z0-9_=-]+)\.(?P<signature>[0-9a-f]{64}) -->")
_COMMAND = re.compile(r"^/zdm(?:\s+(?P<verb>\S+))?(?:\s+(?P<rest>.*))?$")


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # approve | recheck | help | unknown
    argument: str = ""


def parse_commands(body: str) -> list[Command]:
    commands: list[Command] = []
    fenced = False
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced or not line.startswith("/zdm"):
            continue
        match = _COMMAND.match(line)
        if match is None:
            # `/zdmfoo`: not zdm's command at all
            continue
        verb = (match.group("verb") or "").lower()
        rest = (match.group("rest") or "").strip()
        if verb in ("approve", "recheck", "help") and (verb == "approve" or not rest):
            commands.append(Command(verb, rest))
        else:
            commands.append(Command("unknown", line))
    return commands


def signing_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"zdm approval record v1", hashlib.sha256).digest()


def approval_marker(approval: Approval, key: bytes, repository: str, number: int) -> str:
    record = {
        "approver": approval.approver,
        "digests": sorted(approval.digests),
        "reason": approval.reason,
        "at": approval.at,
        "repository": repository,
        "pull": number,
    }
    payload = base64.urlsafe_b64encode(json.dumps(record, sort_keys=True).encode()).decode()
    signature = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
    return f"<!-- zdm:approval {payload}.{signature} -->"


def read_approvals(bodies: Iterable[str], key: bytes, repository: str, number: int) -> list[Approval]:
    """Approvals recorded in zdm's own comments: the signature must verify and name this pull request."""
    found = []
    for body in bodies:
        for match in _MARKER.finditer(body):
            expected = hmac.new(key, match.group("payload").encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, match.group("signature")):
                continue
            try:
                record = json.loads(base64.urlsafe_b64decode(match.group("payload")))
            except (ValueError, json.JSONDecodeError):
                continue
            if record.get("repository") != repository or record.get("pull") != number:
                continue
            found.append(
                Approval(
                    str(record["approver"]),
                    str(record.get("reason", "")),
                    frozenset(str(d) for d in record.get("digests", [])),
                    str(record.get("at", "")),
                )
            )
    return found
