"""Personal data is unreadable in the database and stays readable across key rotation."""

import base64
import os

import pytest

from app import create_app
from app.extensions import db
from app.models import User
from app.security.keyring import DecryptionError
from app.services import users
from app.unit_of_work import unit_of_work
from config.settings import Settings


def test_raw_sql_shows_no_plaintext_email(stack, user):
    (row,) = stack.sql("SELECT row_to_json(users)::text FROM users WHERE id = %s", (user["id"],))
    text = row[0]
    local_part = user["email"].split("@")[0]
    assert local_part.lower() not in text.lower()
    assert user["email"].lower() not in text.lower()
    (ciphertext,) = stack.sql("SELECT email_encrypted FROM users WHERE id = %s", (user["id"],))[0]
    assert local_part.encode() not in bytes(ciphertext)


def rotated_app(stack, *, drop_old: bool = False):
    old_spec = stack.env["ENCRYPTION_KEYS"]
    new_key = base64.b64encode(os.urandom(32)).decode()
    spec = f"next:{new_key}" + ("" if drop_old else f",{old_spec}")
    return create_app(Settings.from_env({**stack.env, "ENCRYPTION_KEYS": spec})), spec


def test_a_keyring_whose_first_key_is_new_still_reads_old_rows(stack, user):
    app, _ = rotated_app(stack)
    with app.app_context():
        found = users.find_by_email(user["email"])
        assert found is not None and found.email == user["email"]
        with unit_of_work():
            newer_id = users.create_user("rotated-" + user["email"], "long-enough-pw", actor=_system()).id
    (blob,) = stack.sql("SELECT email_encrypted FROM users WHERE id = %s", (str(newer_id),))[0]
    assert bytes(blob)[2:6] == b"next", "the newest key encrypts new values"
    with stack.context():
        with pytest.raises(DecryptionError):
            db.session.get(User, newer_id).email  # noqa: B018 (the old ring lacks the new key)
        db.session.rollback()


def test_tampered_ciphertext_raises_instead_of_returning_junk(stack):
    victim = stack.create_user()
    stack.sql(
        "UPDATE users SET email_encrypted = set_byte(email_encrypted, 29, get_byte(email_encrypted, 29) # 1) "
        "WHERE id = %s",
        (victim["id"],),
    )
    with stack.context():
        with pytest.raises(DecryptionError):
            db.session.get(User, victim["id"]).email  # noqa: B018
        db.session.rollback()


def test_a_ciphertext_moved_to_another_column_does_not_decrypt(stack):
    victim = stack.create_user()
    with stack.context():
        users.webhook_secret(victim["id"], _system())
    stack.sql("UPDATE users SET webhook_secret_encrypted = email_encrypted WHERE id = %s", (victim["id"],))
    with stack.context():
        with pytest.raises(DecryptionError):
            db.session.get(User, victim["id"]).webhook_secret  # noqa: B018
        db.session.rollback()


def _system():
    from app.services.audit import Actor

    return Actor.system()
