"""Keyset pagination for every list (API.md: ``?limit=`` default 50, max 200, ``?cursor=``).

The cursor is an opaque encoding of the last row's sort key, so pages stay stable while rows are
inserted and no OFFSET scan grows with the page number.

A cursor comes back from the client, so it is input like any other: every value must be a JSON
string of its key's kind (text without NUL, a UUID, an instant with an offset), or the request is a
422 pointing at ``/cursor``. Instants are taken in UTC before they reach SQL: PostgreSQL refuses
offsets beyond +-15:59, which Python accepts.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.extensions import db
from app.problems import Problem

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else str(v) for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("wrong shape")
        return [_key_value(value, kind) for value, kind in zip(raw, kinds, strict=True)]
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(
            "validation-error", "The cursor is not valid.", errors=[{"pointer": "/cursor", "detail": "invalid cursor"}]
        ) from exc


def _key_value(value: Any, kind: type) -> Any:
    """One sort-key value of a cursor, checked for its kind (we only ever encode strings)."""
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("not a text without NUL")
    if kind is datetime:
        instant = datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise ValueError("an instant without an offset")
        return instant.astimezone(UTC)  # OverflowError near the ends of the calendar
    if kind is int:  # a bigint key: beyond 64 bits PostgreSQL would refuse the parameter
        number = int(value)
        if not -(2**63) <= number < 2**63:
            raise ValueError("out of range")
        return number
    return kind(value)


def paginate(
    query: Select[Any],
    keys: Sequence[InstrumentedAttribute[Any]],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    """Rows of ``query`` ordered by ``keys`` (the last one unique), one page after ``cursor``."""
    by_type: dict[type, type] = {datetime: datetime, uuid.UUID: uuid.UUID, int: int}
    kinds = [by_type.get(k.type.python_type, str) for k in keys]
    if cursor:
        after = decode_cursor(cursor, kinds)
        position = tuple_(*keys) < tuple_(*after) if descending else tuple_(*keys) > tuple_(*after)
        query = query.where(position)
    order = [k.desc() for k in keys] if descending else list(keys)
    rows = list(db.session.execute(query.order_by(*order).limit(limit + 1)).scalars())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([getattr(last, k.key) for k in keys])
    return rows[:limit], next_cursor
