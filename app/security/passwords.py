"""argon2id password hashing (argon2-cffi).

``verify_or_dummy`` hashes against a fixed dummy when the account does not exist, so an unknown
e-mail costs the same time as a wrong password and login timing does not reveal who has an
account.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

EXTENSION_KEY = "estacionate.passwords"


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._dummy_hash = self._hasher.hash("estacionate-dummy-password-for-timing")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; an absent hash (unknown or anonymized user) still costs a hash."""
        try:
            self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def current_passwords() -> Passwords:
    return current_app.extensions[EXTENSION_KEY]
