"""The schemas a review replayed, kept in Redis so the next review of the same root replays nothing it had.

A review replays every earlier migration of a root before it judges the pull request's files; on a root of
hundreds of migrations that is most of its time, and the same for every push. The schema the migrations before
the first changed one build is kept under a digest of the settings and of every one of those texts
(bot/analysis/snapshot.py), per repository, for a day after its last use, and only when it is small enough to
be worth the memory. Entries are signed with a key only the App holds, so nothing else writing to the Redis
can make a worker unpickle it.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle

from redis import Redis

from bot.analysis.schema import Schema

REPLAY_PREFIX = "zdm:replay:"
KEEP_SECONDS = 24 * 3600
# A replayed schema of the corpus's largest root pickles to about 0.6 MB; a bigger one is replayed each time.
LARGEST_BYTES = 16 * 1024 * 1024
_DIGEST = hashlib.sha256().digest_size


def replay_keys_of(repository: str) -> str:
    """The pattern matching every kept schema of `owner/name` (for removing a repository's data)."""
    return f"{REPLAY_PREFIX}{repository}:*"


class RedisSchemaStore:
    def __init__(self, connection: Redis, repository: str, signing_key: bytes) -> None:
        self.connection = connection
        self.repository = repository
        self.key = hashlib.sha256(b"zdm replay cache\0" + signing_key).digest()

    def _name(self, key: str) -> str:
        return f"{REPLAY_PREFIX}{self.repository}:{key}"

    def get(self, key: str) -> Schema | None:
        name = self._name(key)
        data = self.connection.get(name)
        if not isinstance(data, bytes) or len(data) <= _DIGEST:
            return None
        signature, payload = data[:_DIGEST], data[_DIGEST:]
        if not hmac.compare_digest(signature, hmac.new(self.key, payload, hashlib.sha256).digest()):
            return None
        try:
            schema = pickle.loads(payload)
        except Exception:
            return None
        if not isinstance(schema, Schema):
            return None
        self.connection.expire(name, KEEP_SECONDS)
        return schema

    def put(self, key: str, schema: Schema) -> None:
        payload = pickle.dumps(schema, protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) > LARGEST_BYTES:
            return
        signature = hmac.new(self.key, payload, hashlib.sha256).digest()
        self.connection.set(self._name(key), signature + payload, ex=KEEP_SECONDS)
