"""WhatsApp messages (DOMAIN.md "Notifications"): templates, local times and the delivery policy. Pure.

Templates. Five, each rendered two ways from the same facts: a Spanish ``body`` (Chile is the first
market, so messages are written for it; a second language would be a second text per template)
and Twilio ``ContentVariables``, numbered ``"1"``, ``"2"``... in the order of ``TemplateSpec.variables``,
which is the order the approved WhatsApp templates (``TWILIO_CONTENT_SIDS``) must use:

=======================  ==========================================================================
``booking_confirmed``    1 visitor name, 2 building, 3 spot, 4 start, 5 end, 6 confirmation code
``booking_cancelled``    1 building, 2 spot, 3 start
``guest_checked_in``     1 visitor name, 2 spot, 3 check-in time
``password_reset_code``  1 the 6-digit code, 2 minutes it stays valid
``security_notice``      1 what changed (a Spanish phrase), 2 when
=======================  ==========================================================================

Instants are shown in the building's timezone as ``dd-mm-yyyy HH:MM``; they come in as aware
datetimes or ISO 8601 strings with an offset (how they sit in the stored, encrypted variables),
never naive, since a naive time names no instant. Every variable is one line: WhatsApp refuses
template parameters with new lines, tabs or runs of more than four spaces, so whitespace collapses
to one space and control/format characters (bidi overrides included) are dropped.

Delivery policy. ``classify`` sorts a failed send, ``DeliveryPolicy.decide`` turns it and the
attempt number into ``Retry(after_seconds)`` or ``GiveUp``:

- a permanent code fails at once, whatever the HTTP status: 21211 (invalid number), 21408 (region
  not enabled), 21610 (unsubscribed), 63014 (blocked by the user), and 63016 (outside the 24 h
  window) when the message was free-form text (with a template it is judged by its HTTP status);
- 63018 (the channel's rate limit) is retried on a longer clock;
- 429, 5xx, timeouts and no answer at all are retried: exponential backoff with equal jitter
  (half the ceiling fixed, half random), capped, for at most ``max_attempts`` attempts;
- any other answer is a refusal of the request itself, which sending it again will not cure.

21610 and 63014 mean the recipient opted out (``OPT_OUT_CODES``): later booking messages to that
number are not sent (``should_send``); security notices and reset codes always are.
"""

from __future__ import annotations

import enum
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "America/Santiago"
LOCAL_TIME_FORMAT = "%d-%m-%Y %H:%M"


class Template(enum.StrEnum):
    BOOKING_CONFIRMED = "booking_confirmed"
    BOOKING_CANCELLED = "booking_cancelled"
    GUEST_CHECKED_IN = "guest_checked_in"
    PASSWORD_RESET_CODE = "password_reset_code"  # noqa: S105 (a template name)
    SECURITY_NOTICE = "security_notice"


class SecurityChange(enum.StrEnum):
    MFA_ENABLED = "mfa_enabled"
    MFA_DISABLED = "mfa_disabled"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event name)
    NEW_LOGIN = "new_login"


SECURITY_CHANGE_PHRASES: dict[SecurityChange, str] = {
    SecurityChange.MFA_ENABLED: "se activó la verificación en dos pasos",
    SecurityChange.MFA_DISABLED: "se desactivó la verificación en dos pasos",
    SecurityChange.PASSWORD_CHANGED: "se cambió la contraseña",
    SecurityChange.NEW_LOGIN: "se inició una nueva sesión",
}


@dataclass(frozen=True)
class TemplateSpec:
    name: Template
    #: Variable names in ContentVariables order: ``variables[0]`` is ``"1"``.
    variables: tuple[str, ...]
    #: Which of them are instants, shown in the building's local time.
    instants: frozenset[str]
    #: The free-form body, a ``str.format`` text over the variable names.
    text: str
    #: Booking updates obey the resident's preference and opt-outs; the others always go.
    booking_update: bool


TEMPLATES: dict[Template, TemplateSpec] = {
    spec.name: spec
    for spec in (
        TemplateSpec(
            Template.BOOKING_CONFIRMED,
            ("visitor_name", "building", "spot", "starts_at", "ends_at", "confirmation_code"),
            frozenset({"starts_at", "ends_at"}),
            "Estacionate: reserva confirmada para {visitor_name} en {building}, estacionamiento {spot}, "
            "desde el {starts_at} hasta el {ends_at}. Código de confirmación: {confirmation_code}.",
            booking_update=True,
        ),
        TemplateSpec(
            Template.BOOKING_CANCELLED,
            ("building", "spot", "starts_at"),
            frozenset({"starts_at"}),
            "Estacionate: se canceló la reserva del estacionamiento {spot} en {building} del {starts_at}.",
            booking_update=True,
        ),
        TemplateSpec(
            Template.GUEST_CHECKED_IN,
            ("visitor_name", "spot", "checked_in_at"),
            frozenset({"checked_in_at"}),
            "Estacionate: {visitor_name} registró su ingreso al estacionamiento {spot} el {checked_in_at}.",
            booking_update=True,
        ),
        TemplateSpec(
            Template.PASSWORD_RESET_CODE,
            ("code", "valid_minutes"),
            frozenset(),
            "Estacionate: tu código para restablecer la contraseña es {code}. Vence en {valid_minutes} minutos. "
            "No lo compartas con nadie.",
            booking_update=False,
        ),
        TemplateSpec(
            Template.SECURITY_NOTICE,
            ("change", "occurred_at"),
            frozenset({"occurred_at"}),
            "Estacionate: {change} en tu cuenta el {occurred_at}. "
            "Si no fuiste tú, restablece tu contraseña y contacta a soporte.",
            booking_update=False,
        ),
    )
}


@dataclass(frozen=True)
class Rendered:
    """One message ready for a backend; its content stays out of ``repr`` (tracebacks, logs)."""

    template: Template
    body: str = field(repr=False)
    content_variables: dict[str, str] = field(repr=False)

    def content_variables_json(self) -> str:
        """Twilio's ``ContentVariables`` form field: a JSON object of strings, UTF-8 kept as is."""
        return json.dumps(self.content_variables, ensure_ascii=False, separators=(",", ":"))


def local_time(instant: datetime, timezone: str) -> str:
    """``instant`` in ``timezone`` as ``dd-mm-yyyy HH:MM`` (DST from the IANA database)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant needs a timezone offset; a naive time names no instant")
    return instant.astimezone(_zone(timezone)).strftime(LOCAL_TIME_FORMAT)


def render(template: str | Template, variables: Mapping[str, object], timezone: str = DEFAULT_TIMEZONE) -> Rendered:
    """Body and ContentVariables of ``template`` from exactly its variables (missing or extra: ValueError)."""
    try:
        spec = TEMPLATES[Template(template)]
    except ValueError:
        raise ValueError(f"unknown template {template!r}") from None
    missing = [name for name in spec.variables if name not in variables]
    extra = sorted(set(variables) - set(spec.variables))
    if missing or extra:
        raise ValueError(
            f"template {spec.name} needs {', '.join(spec.variables)}; missing {missing}, unexpected {extra}"
        )
    values: dict[str, str] = {}
    for name in spec.variables:
        raw = variables[name]
        if name in spec.instants:
            text = local_time(_instant(name, raw), timezone)
        elif spec.name is Template.SECURITY_NOTICE and name == "change":
            text = _security_phrase(raw)
        else:
            text = one_line(str(raw))
        if not text:
            raise ValueError(f"variable {name} of {spec.name} is blank")
        values[name] = text
    return Rendered(
        template=spec.name,
        body=spec.text.format(**values),
        content_variables={str(i): values[name] for i, name in enumerate(spec.variables, start=1)},
    )


def one_line(text: str) -> str:
    """``text`` as one WhatsApp-safe line: whitespace runs become one space, invisible characters go."""
    kept: list[str] = []
    for ch in text:
        if ch.isspace():
            if kept and kept[-1] != " ":
                kept.append(" ")
        elif ch.isprintable():  # False for control, format (bidi, zero-width) and unassigned
            kept.append(ch)
    return "".join(kept).strip()


def _instant(name: str, raw: object) -> datetime:
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"variable {name} is not an ISO 8601 instant") from None
    if not isinstance(raw, datetime) or raw.tzinfo is None or raw.utcoffset() is None:
        raise ValueError(f"variable {name} must be an instant with a timezone offset")
    return raw


def _security_phrase(raw: object) -> str:
    try:
        return SECURITY_CHANGE_PHRASES[SecurityChange(str(raw))]
    except ValueError:
        raise ValueError(f"unknown security change {raw!r}") from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


# --- who gets what ------------------------------------------------------------------------------

#: Twilio codes meaning the recipient does not want our messages: unsubscribed, blocked the business.
OPT_OUT_CODES = frozenset({21610, 63014})


def is_opt_out(code: int | None) -> bool:
    return code in OPT_OUT_CODES


def should_send(template: str | Template, *, booking_updates: bool, opted_out: bool) -> bool:
    """Booking updates go only to someone who wants them and has not opted out; the rest always go."""
    if not TEMPLATES[Template(template)].booking_update:
        return True
    return booking_updates and not opted_out


# --- delivery policy ----------------------------------------------------------------------------

#: Codes that fail at once, whatever the HTTP status that carried them.
PERMANENT_CODES = frozenset({21211, 21408, 21610, 63014})
#: Outside WhatsApp's 24-hour window: permanent for free-form text, which only a template can fix.
OUTSIDE_WINDOW = 63016
#: The WhatsApp channel's own rate limit: worth waiting for, on a longer clock.
CHANNEL_RATE_LIMIT = 63018


class FailureClass(enum.StrEnum):
    RETRYABLE = "retryable"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class SendFailure:
    """What a failed send looked like on the wire."""

    #: None when no HTTP answer came (timeout, refused or reset connection).
    http_status: int | None = None
    #: Twilio's error code, when its answer had one.
    error_code: int | None = None
    timed_out: bool = False
    #: Sent as ContentSid + ContentVariables rather than Body.
    with_template: bool = False


@dataclass(frozen=True)
class Retry:
    after_seconds: float


@dataclass(frozen=True)
class GiveUp:
    error_code: int | None
    http_status: int | None
    #: The recipient opted out: suppress their later booking messages.
    opted_out: bool
    #: Retryable, but out of attempts (otherwise: a permanent answer).
    exhausted: bool


def classify(failure: SendFailure) -> FailureClass:
    code, status = failure.error_code, failure.http_status
    if code in PERMANENT_CODES or (code == OUTSIDE_WINDOW and not failure.with_template):
        return FailureClass.PERMANENT
    if code == CHANNEL_RATE_LIMIT:
        return FailureClass.RATE_LIMITED
    if status is None or status == 429 or status >= 500:
        return FailureClass.RETRYABLE
    return FailureClass.PERMANENT


@dataclass(frozen=True)
class DeliveryPolicy:
    """Attempt ``n`` (1-based, the one that just failed) waits ``ceiling * (1 + jitter) / 2`` before the next,
    where ``ceiling = min(cap, base * 2 ** (n - 1))``; attempt ``max_attempts`` is the last.

    The defaults retry for about 2.5 to 5 minutes (15 to 30 minutes for the channel's rate limit) before
    giving up: long enough to ride out a Twilio blip, short enough that a confirmation is not a
    surprise an hour later. Every delay is far below the broker's visibility timeout.
    """

    max_attempts: int = 6
    base_seconds: float = 10.0
    cap_seconds: float = 300.0
    rate_limited_base_seconds: float = 60.0
    rate_limited_cap_seconds: float = 1800.0

    def scaled(self, factor: float) -> DeliveryPolicy:
        """The same shape in other units (tests run the schedule in milliseconds)."""
        return replace(
            self,
            base_seconds=self.base_seconds * factor,
            cap_seconds=self.cap_seconds * factor,
            rate_limited_base_seconds=self.rate_limited_base_seconds * factor,
            rate_limited_cap_seconds=self.rate_limited_cap_seconds * factor,
        )

    def decide(self, failure: SendFailure, attempt: int, jitter: float | None = None) -> Retry | GiveUp:
        """What to do after ``attempt`` failed like ``failure``; ``jitter`` in [0, 1] (random if None)."""
        if attempt < 1:
            raise ValueError("attempts are counted from 1")
        if jitter is None:
            jitter = random.random()
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("jitter must lie in [0, 1]")
        kind = classify(failure)
        if kind is FailureClass.PERMANENT or attempt >= self.max_attempts:
            return GiveUp(
                error_code=failure.error_code,
                http_status=failure.http_status,
                opted_out=is_opt_out(failure.error_code),
                exhausted=kind is not FailureClass.PERMANENT,
            )
        if kind is FailureClass.RATE_LIMITED:
            base, cap = self.rate_limited_base_seconds, self.rate_limited_cap_seconds
        else:
            base, cap = self.base_seconds, self.cap_seconds
        ceiling = min(cap, base * 2 ** (attempt - 1))
        return Retry(after_seconds=ceiling * (1.0 + jitter) / 2.0)


DELIVERY_POLICY = DeliveryPolicy()


# --- delivery status ----------------------------------------------------------------------------

#: Our statuses by progress; a status callback only ever moves a message to a higher rank.
_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3, "read": 4}
#: Nothing follows these: a late ``read`` cannot revive a failed message.
_FINAL = frozenset({"failed", "undelivered"})


def next_status(current: str, reported: str) -> str | None:
    """The status after Twilio reports ``reported`` for a message at ``current``; None: leave it.

    Callbacks arrive late, twice, or out of order: ``read`` is never overwritten by a late ``sent``,
    and statuses we do not track (``accepted``, ``scheduled``...) change nothing.
    """
    if reported not in _RANK or current in _FINAL:
        return None
    if _RANK[reported] <= _RANK.get(current, -1):
        return None
    return reported


__all__ = [
    "CHANNEL_RATE_LIMIT",
    "DEFAULT_TIMEZONE",
    "DELIVERY_POLICY",
    "OPT_OUT_CODES",
    "OUTSIDE_WINDOW",
    "PERMANENT_CODES",
    "SECURITY_CHANGE_PHRASES",
    "TEMPLATES",
    "DeliveryPolicy",
    "FailureClass",
    "GiveUp",
    "Rendered",
    "Retry",
    "SecurityChange",
    "SendFailure",
    "Template",
    "TemplateSpec",
    "classify",
    "is_opt_out",
    "local_time",
    "next_status",
    "one_line",
    "render",
    "should_send",
]
