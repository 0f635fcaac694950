"""Normalizers for identity values, applied before blind indexing and validation.

Pure functions only; each later identity kind (RUT, phone, plate) gets one here.
"""

from __future__ import annotations


def email(value: str) -> str:
    """Trim and lower-case: ``"  Ana@Example.CL "`` and ``"ana@example.cl"`` are one address."""
    return value.strip().lower()


def recovery_code(value: str) -> str:
    """Case, dashes and spaces do not matter when a recovery code is typed back."""
    return "".join(ch for ch in value.lower() if ch not in "- \t")
