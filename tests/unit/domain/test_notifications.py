"""Specification of WhatsApp messages (DOMAIN.md "Notifications"): templates, local times, delivery policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.notifications import (
    DEFAULT_TIMEZONE,
    DELIVERY_POLICY,
    OPT_OUT_CODES,
    TEMPLATES,
    DeliveryPolicy,
    FailureClass,
    GiveUp,
    Retry,
    SecurityChange,
    SendFailure,
    Template,
    classify,
    is_opt_out,
    local_time,
    next_status,
    render,
    should_send,
)

SANTIAGO = "America/Santiago"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- local times: dd-mm-yyyy HH:MM in the building's timezone -------------------------------


@pytest.mark.parametrize(
    ("instant", "shown"),
    [
        # Summer time (UTC-3) until 2026-04-05 03:00 UTC, when 00:00 local falls back to 23:00.
        (utc(2026, 1, 15, 11, 0), "15-01-2026 08:00"),
        (utc(2026, 4, 4, 23, 0), "04-04-2026 20:00"),
        (utc(2026, 4, 5, 2, 30), "04-04-2026 23:30"),
        (utc(2026, 4, 5, 2, 59), "04-04-2026 23:59"),
        (utc(2026, 4, 5, 3, 0), "04-04-2026 23:00"),  # the hour repeats, now at UTC-4
        (utc(2026, 4, 5, 3, 30), "04-04-2026 23:30"),
        (utc(2026, 4, 5, 11, 0), "05-04-2026 07:00"),
        # Winter time (UTC-4) until 2026-09-06 04:00 UTC, when 00:00 local springs to 01:00.
        (utc(2026, 9, 6, 3, 59), "05-09-2026 23:59"),
        (utc(2026, 9, 6, 4, 0), "06-09-2026 01:00"),  # 00:00-00:59 never happens that night
        (utc(2026, 9, 6, 11, 0), "06-09-2026 08:00"),
        (utc(2026, 12, 31, 23, 59), "31-12-2026 20:59"),
    ],
)
def test_instants_are_shown_in_santiago_across_both_dst_changes(instant, shown):
    assert local_time(instant, SANTIAGO) == shown


def test_an_instant_given_with_another_offset_is_the_same_instant():
    assert local_time(datetime(2026, 4, 5, 5, 30, tzinfo=timezone(timedelta(hours=2))), SANTIAGO) == "04-04-2026 23:30"


def test_other_building_timezones_are_honoured():
    assert local_time(utc(2026, 7, 1, 12, 0), "America/Punta_Arenas") == "01-07-2026 09:00"
    assert local_time(utc(2026, 7, 1, 12, 0), "Pacific/Easter") == "01-07-2026 06:00"


def test_a_naive_datetime_is_refused_because_its_instant_is_unknown():
    with pytest.raises(ValueError, match="timezone"):
        local_time(datetime(2026, 4, 5, 2, 30), SANTIAGO)


def test_an_unknown_timezone_is_refused():
    with pytest.raises(ValueError):
        local_time(utc(2026, 1, 1), "Mars/Olympus_Mons")


def test_the_default_timezone_is_santiago():
    assert DEFAULT_TIMEZONE == SANTIAGO


# --- templates --------------------------------------------------------------------------------

CONFIRMED = {
    "visitor_name": "Ana Pérez",
    "building": "Torre Los Leones",
    "spot": "V-12",
    # A night block across the April fall-back: 20:00 (UTC-3) to 07:00 (UTC-4) local.
    "starts_at": utc(2026, 4, 4, 23, 0),
    "ends_at": utc(2026, 4, 5, 11, 0),
    "confirmation_code": "K7P2QX9M",
}


def test_every_domain_template_is_defined():
    assert {t.value for t in Template} == {
        "booking_confirmed",
        "booking_cancelled",
        "guest_checked_in",
        "password_reset_code",
        "security_notice",
    }
    assert set(TEMPLATES) == set(Template)


@pytest.mark.parametrize(
    ("template", "order"),
    [
        ("booking_confirmed", ("visitor_name", "building", "spot", "starts_at", "ends_at", "confirmation_code")),
        ("booking_cancelled", ("building", "spot", "starts_at")),
        ("guest_checked_in", ("visitor_name", "spot", "checked_in_at")),
        ("password_reset_code", ("code", "valid_minutes")),
        ("security_notice", ("change", "occurred_at")),
    ],
)
def test_content_variables_are_numbered_in_the_documented_order(template, order):
    assert TEMPLATES[Template(template)].variables == order


def test_booking_confirmed_vector_across_the_dst_change():
    rendered = render("booking_confirmed", CONFIRMED, SANTIAGO)
    assert rendered.template is Template.BOOKING_CONFIRMED
    assert rendered.content_variables == {
        "1": "Ana Pérez",
        "2": "Torre Los Leones",
        "3": "V-12",
        "4": "04-04-2026 20:00",
        "5": "05-04-2026 07:00",
        "6": "K7P2QX9M",
    }
    assert rendered.body == (
        "Estacionate: reserva confirmada para Ana Pérez en Torre Los Leones, estacionamiento V-12, "
        "desde el 04-04-2026 20:00 hasta el 05-04-2026 07:00. Código de confirmación: K7P2QX9M."
    )


def test_booking_cancelled_vector():
    rendered = render(
        Template.BOOKING_CANCELLED,
        {"building": "Torre Los Leones", "spot": "V-12", "starts_at": "2026-09-06T04:00:00+00:00"},
        SANTIAGO,
    )
    assert rendered.content_variables == {"1": "Torre Los Leones", "2": "V-12", "3": "06-09-2026 01:00"}
    assert rendered.body == (
        "Estacionate: se canceló la reserva del estacionamiento V-12 en Torre Los Leones del 06-09-2026 01:00."
    )


def test_guest_checked_in_vector():
    rendered = render(
        "guest_checked_in",
        {"visitor_name": "Ana Pérez", "spot": "V-12", "checked_in_at": utc(2026, 4, 5, 3, 15)},
        SANTIAGO,
    )
    assert rendered.content_variables == {"1": "Ana Pérez", "2": "V-12", "3": "04-04-2026 23:15"}
    assert rendered.body == "Estacionate: Ana Pérez registró su ingreso al estacionamiento V-12 el 04-04-2026 23:15."


def test_password_reset_code_vector_needs_no_timezone():
    rendered = render("password_reset_code", {"code": "042917", "valid_minutes": 10})
    assert rendered.content_variables == {"1": "042917", "2": "10"}
    assert rendered.body == (
        "Estacionate: tu código para restablecer la contraseña es 042917. Vence en 10 minutos. "
        "No lo compartas con nadie."
    )


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ("mfa_enabled", "se activó la verificación en dos pasos"),
        ("mfa_disabled", "se desactivó la verificación en dos pasos"),
        ("password_changed", "se cambió la contraseña"),
        ("new_login", "se inició una nueva sesión"),
    ],
)
def test_security_notice_vectors(change, phrase):
    rendered = render("security_notice", {"change": change, "occurred_at": utc(2026, 9, 6, 4, 30)}, SANTIAGO)
    assert rendered.content_variables == {"1": phrase, "2": "06-09-2026 01:30"}
    assert rendered.body == (
        f"Estacionate: {phrase} en tu cuenta el 06-09-2026 01:30. "
        "Si no fuiste tú, restablece tu contraseña y contacta a soporte."
    )


def test_security_changes_are_exactly_the_four_of_the_domain():
    assert {c.value for c in SecurityChange} == {"mfa_enabled", "mfa_disabled", "password_changed", "new_login"}


def test_an_unknown_security_change_is_refused():
    with pytest.raises(ValueError, match="change"):
        render("security_notice", {"change": "email_changed", "occurred_at": utc(2026, 1, 1)})


def test_content_variables_json_is_what_twilio_expects():
    rendered = render("booking_confirmed", CONFIRMED, SANTIAGO)
    decoded = json.loads(rendered.content_variables_json())
    assert decoded == rendered.content_variables
    assert "Pérez" in rendered.content_variables_json()  # UTF-8, not \u escapes


def test_an_unknown_template_is_refused():
    with pytest.raises(ValueError, match="template"):
        render("booking_reminder", {}, SANTIAGO)


def test_a_missing_variable_is_refused_by_name():
    facts = {k: v for k, v in CONFIRMED.items() if k != "confirmation_code"}
    with pytest.raises(ValueError, match="confirmation_code"):
        render("booking_confirmed", facts, SANTIAGO)


def test_an_unexpected_variable_is_refused_so_no_fact_is_silently_dropped():
    with pytest.raises(ValueError, match="visitor_phone"):
        render("booking_confirmed", {**CONFIRMED, "visitor_phone": "+56912345678"}, SANTIAGO)


@pytest.mark.parametrize("bad", ["2026-04-05T02:30:00", "yesterday", 1775356200, datetime(2026, 4, 5, 2, 30)])
def test_an_instant_without_an_offset_or_not_an_instant_is_refused(bad):
    with pytest.raises(ValueError, match="starts_at"):
        render("booking_confirmed", {**CONFIRMED, "starts_at": bad}, SANTIAGO)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Ana\nPérez", "Ana Pérez"),
        ("Ana\t\tPérez", "Ana Pérez"),
        ("  Ana      Pérez  ", "Ana Pérez"),
        ("Ana\u202ePérez", "AnaPérez"),  # a bidi override could make the text read backwards
        ("Ana\x00\x07Pérez", "AnaPérez"),
        ("Zoë 🚗", "Zoë 🚗"),
    ],
)
def test_variables_lose_line_breaks_control_characters_and_long_space_runs(raw, clean):
    # WhatsApp refuses template parameters with new lines, tabs or more than four spaces in a row.
    facts = {**CONFIRMED, "visitor_name": raw}
    rendered = render("booking_confirmed", facts, SANTIAGO)
    assert rendered.content_variables["1"] == clean
    assert rendered.body.startswith(f"Estacionate: reserva confirmada para {clean} en ")


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_a_blank_variable_is_refused(blank):
    with pytest.raises(ValueError, match="visitor_name"):
        render("booking_confirmed", {**CONFIRMED, "visitor_name": blank}, SANTIAGO)


def test_the_rendered_message_does_not_show_its_content_in_its_repr():
    rendered = render("password_reset_code", {"code": "042917", "valid_minutes": 10})
    assert "042917" not in repr(rendered)
    assert "password_reset_code" in repr(rendered)


@given(st.text(min_size=1, max_size=100).filter(lambda s: s.strip() and any(c.isprintable() for c in s.strip())))
def test_any_visitor_name_renders_to_one_line_without_control_characters(name):
    try:
        rendered = render("guest_checked_in", {"visitor_name": name, "spot": "1", "checked_in_at": utc(2026, 1, 1)})
    except ValueError as exc:
        assert "visitor_name" in str(exc)  # only a name that sanitizes to nothing is refused
        return
    for text in (rendered.body, *rendered.content_variables.values()):
        assert "\n" not in text and "\t" not in text and "     " not in text
        assert all(ch.isprintable() or ch == " " for ch in text)


# --- who gets what --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "booking_updates", "opted_out", "send"),
    [
        ("booking_confirmed", True, False, True),
        ("booking_confirmed", False, False, False),
        ("booking_confirmed", True, True, False),
        ("booking_cancelled", False, False, False),
        ("guest_checked_in", True, True, False),
        ("password_reset_code", False, True, True),
        ("security_notice", False, True, True),
        ("security_notice", True, False, True),
    ],
)
def test_booking_updates_obey_the_preference_and_opt_outs_while_security_messages_always_go(
    template, booking_updates, opted_out, send
):
    assert should_send(template, booking_updates=booking_updates, opted_out=opted_out) is send


def test_the_opt_out_codes_are_unsubscribed_and_blocked_by_the_user():
    assert frozenset({21610, 63014}) == OPT_OUT_CODES
    assert is_opt_out(21610) and is_opt_out(63014)
    assert not is_opt_out(21211) and not is_opt_out(None) and not is_opt_out(63016)


# --- delivery policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (SendFailure(http_status=429, error_code=20429), FailureClass.RETRYABLE),
        (SendFailure(http_status=500, error_code=20500), FailureClass.RETRYABLE),
        (SendFailure(http_status=502), FailureClass.RETRYABLE),
        (SendFailure(http_status=503), FailureClass.RETRYABLE),
        (SendFailure(timed_out=True), FailureClass.RETRYABLE),
        (SendFailure(), FailureClass.RETRYABLE),  # no answer at all: connection refused or reset
        (SendFailure(http_status=429, error_code=63018), FailureClass.RATE_LIMITED),
        (SendFailure(http_status=400, error_code=63018), FailureClass.RATE_LIMITED),
        (SendFailure(http_status=400, error_code=21211), FailureClass.PERMANENT),
        (SendFailure(http_status=400, error_code=21408), FailureClass.PERMANENT),
        (SendFailure(http_status=400, error_code=21610), FailureClass.PERMANENT),
        (SendFailure(http_status=400, error_code=63014), FailureClass.PERMANENT),
        (SendFailure(http_status=400, error_code=63016), FailureClass.PERMANENT),
        # A permanent code wins over a status that would otherwise be retried.
        (SendFailure(http_status=500, error_code=21211), FailureClass.PERMANENT),
        (SendFailure(http_status=429, error_code=21610), FailureClass.PERMANENT),
        (SendFailure(http_status=503, error_code=63016), FailureClass.PERMANENT),
        # 63016 (outside the 24 h window) is only permanent for free-form text: a template may be sent.
        (SendFailure(http_status=503, error_code=63016, with_template=True), FailureClass.RETRYABLE),
        (SendFailure(http_status=400, error_code=63016, with_template=True), FailureClass.PERMANENT),
        # Any other refusal of the request itself is not cured by sending it again.
        (SendFailure(http_status=400, error_code=21602), FailureClass.PERMANENT),
        (SendFailure(http_status=401, error_code=20003), FailureClass.PERMANENT),
        (SendFailure(http_status=404, error_code=20404), FailureClass.PERMANENT),
    ],
)
def test_failures_are_classified(failure, kind):
    assert classify(failure) is kind


def test_the_default_policy_numbers():
    assert (
        DeliveryPolicy(
            max_attempts=6,
            base_seconds=10.0,
            cap_seconds=300.0,
            rate_limited_base_seconds=60.0,
            rate_limited_cap_seconds=1800.0,
        )
        == DELIVERY_POLICY
    )


@pytest.mark.parametrize(
    ("attempt", "jitter", "seconds"),
    [
        (1, 0.0, 5.0),
        (1, 1.0, 10.0),
        (1, 0.5, 7.5),
        (2, 0.0, 10.0),
        (2, 0.5, 15.0),
        (3, 1.0, 40.0),
        (4, 0.25, 50.0),
        (5, 1.0, 160.0),
    ],
)
def test_retryable_failures_back_off_exponentially_with_equal_jitter(attempt, jitter, seconds):
    for failure in (SendFailure(http_status=429), SendFailure(http_status=500), SendFailure(timed_out=True)):
        assert DELIVERY_POLICY.decide(failure, attempt, jitter=jitter) == Retry(after_seconds=seconds)


@pytest.mark.parametrize(
    ("attempt", "jitter", "seconds"),
    [(1, 0.0, 30.0), (1, 1.0, 60.0), (2, 0.5, 90.0), (4, 1.0, 480.0), (5, 0.0, 480.0)],
)
def test_a_whatsapp_rate_limit_waits_longer(attempt, jitter, seconds):
    failure = SendFailure(http_status=429, error_code=63018)
    assert DELIVERY_POLICY.decide(failure, attempt, jitter=jitter) == Retry(after_seconds=seconds)
    plain = DELIVERY_POLICY.decide(SendFailure(http_status=429), attempt, jitter=jitter)
    assert isinstance(plain, Retry) and plain.after_seconds < seconds


def test_the_wait_is_capped():
    policy = DeliveryPolicy(max_attempts=30)
    assert policy.decide(SendFailure(http_status=500), 12, jitter=1.0) == Retry(after_seconds=300.0)
    assert policy.decide(SendFailure(http_status=500), 12, jitter=0.0) == Retry(after_seconds=150.0)
    assert policy.decide(SendFailure(error_code=63018), 20, jitter=1.0) == Retry(after_seconds=1800.0)


@pytest.mark.parametrize(
    "failure",
    [
        SendFailure(http_status=429),
        SendFailure(http_status=500),
        SendFailure(timed_out=True),
        SendFailure(error_code=63018),
    ],
)
def test_attempts_are_bounded(failure):
    assert isinstance(DELIVERY_POLICY.decide(failure, 5, jitter=0.5), Retry)
    assert DELIVERY_POLICY.decide(failure, 6, jitter=0.5) == GiveUp(
        error_code=failure.error_code, http_status=failure.http_status, opted_out=False, exhausted=True
    )


@pytest.mark.parametrize(
    ("code", "opted_out"),
    [(21211, False), (21408, False), (21610, True), (63014, True), (63016, False)],
)
def test_permanent_codes_fail_at_the_first_attempt_with_their_code(code, opted_out):
    decision = DELIVERY_POLICY.decide(SendFailure(http_status=400, error_code=code), 1, jitter=0.5)
    assert decision == GiveUp(error_code=code, http_status=400, opted_out=opted_out, exhausted=False)


def test_a_scaled_policy_keeps_its_shape_in_smaller_units():
    fast = DELIVERY_POLICY.scaled(0.01)
    assert fast.max_attempts == DELIVERY_POLICY.max_attempts
    assert fast.decide(SendFailure(http_status=429), 1, jitter=1.0) == Retry(after_seconds=pytest.approx(0.1))
    assert fast.decide(SendFailure(error_code=63018), 1, jitter=1.0) == Retry(after_seconds=pytest.approx(0.6))


@pytest.mark.parametrize(("attempt", "jitter"), [(0, 0.5), (-1, 0.5), (1, -0.1), (1, 1.5)])
def test_nonsense_arguments_are_refused(attempt, jitter):
    with pytest.raises(ValueError):
        DELIVERY_POLICY.decide(SendFailure(http_status=500), attempt, jitter=jitter)


@given(attempt=st.integers(min_value=1, max_value=5))
def test_without_a_jitter_the_wait_lies_between_half_and_all_of_the_ceiling(attempt):
    decision = DELIVERY_POLICY.decide(SendFailure(http_status=503), attempt)
    ceiling = min(300.0, 10.0 * 2 ** (attempt - 1))
    assert isinstance(decision, Retry)
    assert ceiling / 2 <= decision.after_seconds <= ceiling


# --- status callbacks only move forward -----------------------------------------------------


@pytest.mark.parametrize(
    ("current", "reported", "result"),
    [
        ("sending", "queued", None),
        ("queued", "sent", "sent"),
        ("sending", "sent", "sent"),
        ("sent", "delivered", "delivered"),
        ("delivered", "read", "read"),
        ("sent", "read", "read"),
        ("read", "sent", None),
        ("read", "delivered", None),
        ("delivered", "delivered", None),  # a duplicate changes nothing
        ("sent", "failed", "failed"),
        ("sent", "undelivered", "undelivered"),
        ("delivered", "failed", None),
        ("failed", "delivered", None),
        ("undelivered", "read", None),
        ("sent", "accepted", None),  # Twilio statuses we do not track
        ("sent", "bogus", None),
    ],
)
def test_a_reported_status_only_moves_a_message_forward(current, reported, result):
    assert next_status(current, reported) == result
