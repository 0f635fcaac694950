"""TOTP (RFC 6238, 30 s steps, 6 digits) with pyotp, plus replay protection by time step.

``pyotp.TOTP.verify(valid_window=1)`` accepts ±1 step but cannot say *which* step matched, and
does nothing against replay. We find the matching step ourselves, so the caller can refuse any
step at or before the last one accepted for that user. Codes are interoperable with standard
authenticators (``oathtool --totp -b SECRET`` produces the same ones).
"""

from __future__ import annotations

import hmac
import time

import pyotp

STEP_SECONDS = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 chars = 160 bits (pyotp refuses < 112)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step (within one step of drift) whose code is ``code``, or None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    center = current_step(now)
    for step in range(center - DRIFT_STEPS, center + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
