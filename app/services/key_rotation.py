"""Re-encrypting every value under the newest key of the ring (the ``keys.rotate`` job).

The encrypted columns are found from the models (every column whose type is an encrypting
type), so a new encrypted column is rotated without being listed anywhere. Rows are processed
in primary-key order, in batches, each batch committed with the job's progress; every row is
written with a compare-and-swap on its old ciphertext, so a value changed concurrently is never
overwritten with stale data (it was written under the newest key anyway). Values stay readable
throughout, since the ring still holds the old keys; running it again finds nothing to do.

Operator procedure: put the new key first in ``ENCRYPTION_KEYS`` on every process (old keys
kept), run ``flask keys rotate``, then remove the old keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, LargeBinary, Table, and_, cast, func, literal, select, tuple_, update

from app.extensions import db
from app.jobs import JobRun
from app.models.types import EncryptedJSON, EncryptedText
from app.security.crypto import current_crypto
from app.security.keyring import Keyring
from app.services import audit

BATCH = 500


@dataclass(frozen=True)
class EncryptedColumn:
    table: Table
    column: Column[Any]
    associated_data: str

    @property
    def label(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def encrypted_columns() -> list[EncryptedColumn]:
    found = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText | EncryptedJSON):
                found.append(EncryptedColumn(table, column, column.type.associated_data))
    return found


def needs_rotation(column: ColumnElement[Any], keyring: Keyring) -> ColumnElement[bool]:
    """SQL for ``Keyring.needs_rotation``: the value does not start with the primary key's prefix.

    The prefix comes from the keyring (``primary_prefix``), so the layout is stated once.
    """
    prefix = keyring.primary_prefix
    return and_(column.is_not(None), func.substring(column, 1, len(prefix)) != literal(prefix, LargeBinary()))


def pending_count() -> int:
    keyring = current_crypto().keyring
    total = 0
    for target in encrypted_columns():
        total += db.session.execute(
            select(func.count()).select_from(target.table).where(needs_rotation(target.column, keyring))
        ).scalar_one()
    return total


def rotate(run: JobRun) -> dict[str, Any]:
    keyring = current_crypto().keyring
    total = pending_count()
    done = 0
    per_column: dict[str, int] = {}
    run.checkpoint(done, total)
    for target in encrypted_columns():
        pk = list(target.table.primary_key.columns)
        last: tuple[Any, ...] | None = None
        while True:
            raw = cast(target.column, LargeBinary())  # the ciphertext itself, not the decrypted value
            query = select(*pk, raw).where(needs_rotation(target.column, keyring))
            if last is not None:
                query = query.where(tuple_(*pk) > tuple_(*last))
            rows = db.session.execute(query.order_by(*pk).limit(BATCH)).all()
            if not rows:
                break
            for row in rows:
                *key, blob = row
                fresh = keyring.encrypt(keyring.decrypt(blob, target.associated_data), target.associated_data)
                changed = db.session.execute(
                    update(target.table)
                    .where(*(c == v for c, v in zip(pk, key, strict=True)), raw == blob)
                    .values({target.column.name: literal(fresh, LargeBinary())})
                ).rowcount
                per_column[target.label] = per_column.get(target.label, 0) + changed
                done += 1
            last = tuple(rows[-1][: len(pk)])
            run.checkpoint(min(done, max(total, done)), max(total, done))
    rotated = sum(per_column.values())
    audit.record(
        "keys.rotated",
        audit.Actor.job(run.owner_user_id),
        entity_type="keyring",
        entity_id=keyring.primary_id,
        details={"rotated": rotated, "columns": per_column},
    )
    return {"rotated": rotated, "key_id": keyring.primary_id, "columns": per_column}
