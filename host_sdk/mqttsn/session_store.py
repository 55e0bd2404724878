"""Where the gateway keeps CleanSession=0 device sessions across its own restarts.

Responsible for storing and loading session snapshots (the JSON-ready dicts of
`GatewaySession.snapshot()`, with the transport address already encoded by the gateway) in one
SQLite file, one row per client id, written in one transaction per batch of changes. It must not
interpret a snapshot (the session layer does) or know transports (the gateway encodes
addresses).

Durability: SQLite in WAL mode with synchronous=NORMAL: a committed change survives a crash
or `kill -9` of the gateway process; after a power loss the last changes before it may be
missing (the device then reconnects and subscribes again, as after a clean-session restart).
Session changes are rare next to messages (connect, subscribe, sleep, a message buffered for a
sleeping device), so this costs no measurable throughput.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from codegen.errors import ShoalInputError

SCHEMA_VERSION = 1


class SessionStore:
    """Session snapshots in the SQLite file `path` (created with its directory if missing).
    Use from one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writes = 0  # committed batches
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (client_id TEXT PRIMARY KEY, snapshot TEXT)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            (version,) = self._db.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise ShoalInputError(
                f"session store {path}: cannot open ({exc}); give a writable gateway state_dir"
            ) from exc
        if version != str(SCHEMA_VERSION):
            raise ShoalInputError(
                f"session store {path}: schema version {version}, this gateway reads version "
                f"{SCHEMA_VERSION} (move the file aside to start without stored sessions)"
            )

    def load(self) -> list[dict[str, Any]]:
        """Every stored snapshot, in client id order."""
        rows = self._db.execute("SELECT client_id, snapshot FROM sessions ORDER BY client_id")
        snapshots = []
        for client_id, text in rows:
            try:
                snapshot = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ShoalInputError(
                    f"session store {self.path}: client {client_id!r}: unreadable snapshot ({exc})"
                ) from exc
            snapshots.append(snapshot)
        return snapshots

    def apply(self, changes: dict[str, dict[str, Any] | None]) -> None:
        """Store (or, for None, delete) the snapshot of each client id, in one transaction."""
        if not changes:
            return
        db = self._db
        db.execute("BEGIN")
        try:
            for client_id, snapshot in changes.items():
                if snapshot is None:
                    db.execute("DELETE FROM sessions WHERE client_id = ?", (client_id,))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO sessions VALUES (?, ?)",
                        (client_id, json.dumps(snapshot, separators=(",", ":"))),
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.writes += 1

    def close(self) -> None:
        self._db.close()
