"""AES-256-GCM keyring for personal data at rest.

Ciphertext layout (bytes)::

    0x01 | len(key_id) | key_id (ascii) | nonce (12) | ciphertext + tag (16)

The key id travels inside every ciphertext, so any key of the ring can decrypt what it wrote
while only the first key encrypts; rotation re-encrypts rows whose key id is not the newest.
Associated data binds a value to its ``table.column``: a ciphertext copied into another column
fails authentication instead of decrypting into the wrong place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
NONCE_BYTES = 12


def ciphertext_prefix(key_id: str) -> bytes:
    """The bytes every ciphertext written under ``key_id`` starts with: version, id length, id.

    The one statement of the layout's head: encryption writes it, ``Keyring.needs_rotation``
    compares with it, and key rotation (app/services/key_rotation.py) asks the database the
    same question with the same bytes.
    """
    raw = key_id.encode("ascii")
    return bytes([FORMAT_VERSION, len(raw)]) + raw


class DecryptionError(Exception):
    """A ciphertext was tampered with, truncated, bound to another column or under an unknown key."""


class Keyring:
    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        entries = list(keys)
        if not entries:
            raise ValueError("a keyring needs at least one key")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in entries}
        self.primary_id = entries[0][0]
        self.key_ids = tuple(key_id for key_id, _ in entries)
        #: What a ciphertext under the primary key starts with; anything else needs rotation.
        self.primary_prefix = ciphertext_prefix(self.primary_id)

    @classmethod
    def from_spec(cls, spec: str) -> Keyring:
        from config.settings import parse_keyring_spec

        return cls(parse_keyring_spec(spec))

    def encrypt(self, plaintext: bytes, associated_data: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_id].encrypt(nonce, plaintext, associated_data.encode("utf-8"))
        return self.primary_prefix + nonce + sealed

    def decrypt(self, blob: bytes, associated_data: str) -> bytes:
        key_id, nonce, sealed = self._split(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(f"unknown key id {key_id!r}")
        try:
            return cipher.decrypt(nonce, sealed, associated_data.encode("utf-8"))
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc

    def key_id_of(self, blob: bytes) -> str:
        return self._split(blob)[0]

    def needs_rotation(self, blob: bytes) -> bool:
        """A ciphertext not written under the primary key (key rotation's SQL asks the same)."""
        self._split(blob)  # refuses what is not a ciphertext at all
        return not bytes(blob).startswith(self.primary_prefix)

    @staticmethod
    def _split(blob: bytes) -> tuple[str, bytes, bytes]:
        blob = bytes(blob)
        if len(blob) < 2 or blob[0] != FORMAT_VERSION:
            raise DecryptionError("not an Estacionate ciphertext")
        id_len = blob[1]
        start = 2 + id_len
        if len(blob) < start + NONCE_BYTES + 16:
            raise DecryptionError("ciphertext is truncated")
        try:
            key_id = blob[2:start].decode("ascii")
        except UnicodeDecodeError as exc:
            raise DecryptionError("corrupt key id") from exc
        return key_id, blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
