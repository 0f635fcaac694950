"""Normalizers for identity values, applied before blind indexing.

Pure functions only. RUT and phone normalizers validate too (``identity.InvalidIdentity``).
"""

from __future__ import annotations

from app.domain.bookings import normalize_plate
from app.domain.identity import normalize_ip, normalize_phone, normalize_rut

rut = normalize_rut
phone = normalize_phone
plate = normalize_plate
ip = normalize_ip


def email(value: str) -> str:
    """Trim and lower-case: ``"  Ana@Example.CL "`` and ``"ana@example.cl"`` are one address."""
    return value.strip().lower()


def recovery_code(value: str) -> str:
    """Case, dashes and spaces do not matter when a recovery code is typed back."""
    return "".join(ch for ch in value.lower() if ch not in "- \t")
