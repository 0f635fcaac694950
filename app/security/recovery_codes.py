"""MFA recovery codes: 10 single-use codes, shown once, stored as keyed hashes.

Each code is 10 characters from an alphabet without look-alikes (about 49 bits), shown as
``xxxxx-xxxxx``; input is normalized (case, dashes and spaces ignored) before hashing.
"""

from __future__ import annotations

import secrets

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
COUNT = 10
LENGTH = 10


def generate() -> list[str]:
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes
