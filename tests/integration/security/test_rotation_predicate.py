"""Key rotation's SQL and ``Keyring.needs_rotation`` answer the same question the same way."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import ColumnElement, LargeBinary, cast, literal, select

from app.extensions import db
from app.security.keyring import Keyring
from app.services.key_rotation import needs_rotation

AD = "users.email"


def bytea(value: bytes | None) -> ColumnElement[bytes]:
    return cast(literal(value, LargeBinary()), LargeBinary())


KEY_IDS = ["k1", "k10", "k", "dev1", "K1", "a" * 32]


@pytest.mark.parametrize("primary", ["k1", "k10", "dev1"])
def test_the_database_and_the_keyring_agree_on_what_needs_rotation(stack, primary):
    ring = Keyring([(primary, os.urandom(32))])
    blobs = [Keyring([(key_id, os.urandom(32))]).encrypt(b"value", AD) for key_id in KEY_IDS]
    with stack.context():
        in_sql = [
            db.session.execute(select(needs_rotation(literal(b, LargeBinary()), ring))).scalar_one() for b in blobs
        ]
    in_python = [ring.needs_rotation(blob) for blob in blobs]
    assert in_sql == in_python
    assert in_python.count(False) == 1  # only the primary's own ciphertext is current


def test_a_null_value_never_needs_rotation(stack):
    ring = Keyring([("k1", os.urandom(32))])
    with stack.context():
        assert db.session.execute(select(needs_rotation(bytea(None), ring))).scalar_one() is False
