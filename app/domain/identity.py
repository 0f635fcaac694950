"""Chilean identity values: RUT (modulo-11 check digit), phone numbers (E.164), pure functions."""

from __future__ import annotations

import re

import email_validator

_RUT_BODY = re.compile(r"^\d{1,8}$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class InvalidIdentity(ValueError):
    """The value is not a valid RUT / phone number; the message is safe to show the client."""


def rut_check_digit(body: str) -> str:
    """Modulo 11 over the digits right to left with weights 2..7: 11 -> '0', 10 -> 'K'."""
    total, weight = 0, 2
    for digit in reversed(body):
        total += int(digit) * weight
        weight = 2 if weight == 7 else weight + 1
    remainder = 11 - total % 11
    return {11: "0", 10: "K"}.get(remainder, str(remainder))


def normalize_rut(value: str) -> str:
    """``12.345.678-5`` / ``123456785`` / ``12345678-5`` -> ``12345678-5``; raises on a bad check digit."""
    compact = re.sub(r"[.\-\s]", "", value).upper()
    if len(compact) < 2:
        raise InvalidIdentity("RUT is too short")
    body, check = compact[:-1].lstrip("0") or "0", compact[-1]
    if not _RUT_BODY.match(body) or body == "0" or not (check.isdigit() or check == "K"):
        raise InvalidIdentity("RUT must be digits followed by a check digit (0-9 or K)")
    if rut_check_digit(body) != check:
        raise InvalidIdentity("RUT check digit does not match")
    return f"{body}-{check}"


def normalize_phone(value: str) -> str:
    """E.164; a Chilean mobile may be given as its 9 digits (``9 1234 5678`` -> ``+56912345678``)."""
    compact = re.sub(r"[\s\-().]", "", value)
    if re.fullmatch(r"9\d{8}", compact):
        compact = "+56" + compact
    elif re.fullmatch(r"569\d{8}", compact):
        compact = "+" + compact
    if not _E164.match(compact):
        raise InvalidIdentity("phone must be in E.164 form (+56912345678) or a 9-digit Chilean mobile")
    if compact.startswith("+56") and len(compact) != 12:
        raise InvalidIdentity("a Chilean number has 9 digits after +56")
    return compact


#: RFC 5321's limit on a path is 256 octets; 320 (64 + @ + 255) is the generous bound every
#: body has always allowed. Checked first, so a megabyte of text costs nothing to refuse.
MAX_EMAIL_LENGTH = 320


def normalize_email(value: str) -> str:
    """The one e-mail rule: a syntactically valid address (``email-validator``), lower-cased.

    No DNS look-up (the address is an identifier here: nothing is ever mailed to it) and the
    RFC 2606 ``.test`` domain is accepted, so fixtures never need a real domain. Unicode is
    NFC-normalised and the whole address lower-cased, so ``" Ana@Example.CL "`` and
    ``"ana@example.cl"`` are one person (one blind index, one stored form).
    """
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidIdentity(f"not an e-mail address: at most {MAX_EMAIL_LENGTH} characters")
    try:
        found = email_validator.validate_email(value.strip(), check_deliverability=False, test_environment=True)
    except email_validator.EmailNotValidError as exc:
        raise InvalidIdentity(f"not an e-mail address: {exc}") from None
    return found.normalized.lower()


def normalize_ip(value: str) -> str:
    """An IP address in its canonical form (``::ffff:1.2.3.4`` stays distinct from ``1.2.3.4``)."""
    import ipaddress

    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError as exc:
        raise InvalidIdentity("not an IP address") from exc
