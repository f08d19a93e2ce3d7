"""The hash chain: how an event is serialised, hashed and checked.

An event's hash is SHA-256 over a canonical serialisation of every stored field, its
``prev_hash`` included: compact JSON with sorted keys, UTF-8, the time as UTC with
microseconds. So changing any value of any event, deleting one, or moving one changes the hash
that the next event carries, and :func:`chain_break` finds the first event where the stored
chain and the recomputed one part. The first event's ``prev_hash`` is :data:`GENESIS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any, Final

GENESIS: Final = "0" * 64

FIELDS: Final = (
    "sequence",
    "time",
    "actor_id",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "study_id",
    "remote_addr",
    "detail",
    "prev_hash",
)
"""What the hash covers: every column but the id (a database detail) and the hash itself."""


def time_text(value: dt.datetime) -> str:
    """The time as the chain writes it: UTC, microseconds, always the same number of digits."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: dict[str, Any]) -> bytes:
    """The entry's fields as the bytes that are hashed (same on SQLite and PostgreSQL)."""
    fields = {name: entry[name] for name in FIELDS}
    fields["time"] = time_text(fields["time"])
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def chain_break(entries: Iterable[dict[str, Any]]) -> tuple[int, str] | None:
    """The first broken entry, as ``(sequence, reason)``, of entries in sequence order; None
    when the whole chain holds.

    Checks, for each entry: its sequence follows the previous one (a gap is a deleted row, a
    step back a moved one), its ``prev_hash`` is the previous entry's hash, and its ``hash`` is
    what its fields hash to now (an edited row).
    """
    expected_sequence, previous = 1, GENESIS
    for entry in entries:
        sequence = entry["sequence"]
        if sequence != expected_sequence:
            return sequence, f"expected sequence {expected_sequence} (a row is missing or moved)"
        if entry["prev_hash"] != previous:
            return (
                sequence,
                "prev_hash is not the previous event's hash "
                "(an event before it was changed, moved or removed)",
            )
        if entry_hash(entry) != entry["hash"]:
            return sequence, "its fields do not hash to its stored hash (the row was edited)"
        expected_sequence, previous = sequence + 1, entry["hash"]
    return None
