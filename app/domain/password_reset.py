"""Password-reset codes (DOMAIN.md "Password reset"): the code, its keyed hash, expiry and attempts. Pure.

- The code is 6 digits from ``secrets`` (leading zeros kept): short enough to type from WhatsApp,
  which is why it lives 10 minutes (OWASP ASVS 6.5.5) and dies after 5 wrong guesses: an attacker
  gets 5 tries in 10**6.
- Only ``HMAC-SHA256(key, subject NUL code)`` is stored. The key is server-side, so a copy of the
  database cannot be brute-forced offline over the million codes; the subject (the account's id)
  binds a hash to its account, so a stored hash copied to another account's row matches nothing.
- ``check`` decides one submission and returns what to store: a spent code (used once, or
  replaced by a newer request) and an expired one are refused without costing an attempt; expiry
  is checked before the code is compared, so a late guess learns nothing; a wrong or malformed
  guess costs one, and the fifth kills the code, after which even the right code is refused.
- Request limits (honoured per account and per IP per hour; the rest answer 202 and send nothing)
  are numbers here and counters wherever requests are counted.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
REQUESTS_PER_ACCOUNT_PER_HOUR = 3
REQUESTS_PER_IP_PER_HOUR = 10
MIN_KEY_BYTES = 32

_WELL_FORMED = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def is_well_formed(code: str) -> bool:
    """Exactly six ASCII digits (``str.isdigit`` would also take other scripts' digits)."""
    return _WELL_FORMED.fullmatch(code) is not None


def hash_code(key: bytes, subject: str, code: str) -> str:
    """Hex HMAC-SHA256 of ``subject NUL code`` under ``key`` (at least 32 bytes)."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the reset-code key must be at least {MIN_KEY_BYTES} bytes")
    # surrogatepass: a JSON body may carry a lone surrogate, which must be a wrong guess, not a crash.
    message = f"{subject}\x00{code}".encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def expires_at(issued_at: datetime) -> datetime:
    return issued_at + CODE_TTL


@dataclass(frozen=True)
class ResetCode:
    """What is stored for a code (never the code itself)."""

    code_hash: str
    expires_at: datetime
    failed_attempts: int = 0
    #: Used once already, or replaced by a newer request.
    spent: bool = False


def issue(key: bytes, subject: str, *, now: datetime) -> tuple[str, ResetCode]:
    """A fresh code to send and the row to store for it."""
    code = new_code()
    return code, ResetCode(code_hash=hash_code(key, subject, code), expires_at=expires_at(now))


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    KILLED = "killed"
    EXPIRED = "expired"
    SPENT = "spent"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    #: The count to store after this submission.
    failed_attempts: int

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @property
    def attempts_left(self) -> int:
        return max(0, MAX_ATTEMPTS - self.failed_attempts)


def check(state: ResetCode, submitted: str, *, key: bytes, subject: str, now: datetime) -> Verdict:
    """Judge one submission of ``submitted`` against ``state`` at ``now`` (aware)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    failed = state.failed_attempts
    if state.spent:
        return Verdict(Outcome.SPENT, failed)
    if failed >= MAX_ATTEMPTS:
        return Verdict(Outcome.KILLED, failed)
    if now >= state.expires_at:
        return Verdict(Outcome.EXPIRED, failed)
    # Hash even a malformed guess, so both paths cost the same.
    matches = hmac.compare_digest(hash_code(key, subject, submitted), state.code_hash)
    if matches and is_well_formed(submitted):
        return Verdict(Outcome.ACCEPTED, failed)
    failed += 1
    return Verdict(Outcome.KILLED if failed >= MAX_ATTEMPTS else Outcome.WRONG, failed)


__all__ = [
    "CODE_DIGITS",
    "CODE_TTL",
    "MAX_ATTEMPTS",
    "REQUESTS_PER_ACCOUNT_PER_HOUR",
    "REQUESTS_PER_IP_PER_HOUR",
    "Outcome",
    "ResetCode",
    "Verdict",
    "check",
    "expires_at",
    "hash_code",
    "is_well_formed",
    "issue",
    "new_code",
]
