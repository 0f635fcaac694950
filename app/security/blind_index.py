"""HMAC-SHA256 blind indexes: equality search over encrypted values.

The index is computed over the *normalized* value under a key separate from the encryption keys,
and the purpose (``email``, ``rut``...) is mixed in so equal strings of different kinds never
share an index. Normalizers live in ``app.domain.normalize`` (pure functions).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from app.domain import normalize

NORMALIZERS: dict[str, Callable[[str], str]] = {
    "email": normalize.email,
    "recovery_code": normalize.recovery_code,
    "rut": normalize.rut,
    "phone": normalize.phone,
    "plate": normalize.plate,
    "ip": normalize.ip,
    "idempotency": str,  # an already canonical request (app/services/idempotency.py): fingerprinted as is
}


class BlindIndexer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("blind index key must be at least 32 bytes")
        self._key = key

    def index(self, purpose: str, value: str, *, scope: str = "") -> bytes:
        """Index of ``value`` after the purpose's normalizer; ``scope`` partitions (e.g. per building)."""
        normalized = NORMALIZERS[purpose](value)
        # Length-prefixed, so no (scope, value) pair can be confused with another.
        message = f"{purpose}:{len(scope)}:{scope}:{normalized}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()
