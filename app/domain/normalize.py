"""Normalizers for identity values, applied before blind indexing.

Pure functions only. RUT and phone normalizers validate too (``identity.InvalidIdentity``).
"""

from __future__ import annotations

from app.domain.bookings import normalize_plate
from app.domain.identity import InvalidIdentity, normalize_email, normalize_ip, normalize_phone, normalize_rut

rut = normalize_rut
phone = normalize_phone
plate = normalize_plate
ip = normalize_ip


def email(value: str) -> str:
    """``identity.normalize_email``, but never refusing: a login with a malformed address must
    still be looked up (and fail like an unknown one), so such a value is only trimmed and
    lower-cased."""
    try:
        return normalize_email(value)
    except InvalidIdentity:
        return value.strip().lower()


def recovery_code(value: str) -> str:
    """Case, dashes and spaces do not matter when a recovery code is typed back."""
    return "".join(ch for ch in value.lower() if ch not in "- \t")
