"""Issue 13's acceptance: WhatsApp through the real pipeline to a Twilio-compatible HTTP server.

Real API app, Celery worker processes, PostgreSQL and Redis; Twilio is ``tests/support/fake_twilio.py``
(a real local HTTP server the real ``twilio`` client reaches through ``TWILIO_API_BASE``). Nothing of
ours or of the library is patched. The module shares one stack (one worker serving every queue);
the tests that stop or kill workers have stacks of their own.

Every resident login sends a ``security_notice`` (a new login), so tests count the messages of
what they did (by destination and template), not all requests, and ``settled`` waits for the
pipeline to be idle before a test scripts the fake's answers.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import BASE_DATABASE_URL, ISOLATED_REDIS_DBS, stack_env
from tests.support.fake_twilio import FakeTwilio, ReceivedRequest, sign_status_callback
from tests.support.stack import BIN, ROOT, Stack, create_database, drop_database
from tests.support.waiting import wait_until
from tests.support.world import soon, valid_rut

pytestmark = pytest.mark.slow

PUBLIC_BASE_URL = "https://api.estacionate.example"
CALLBACK_PATH = "/v1/webhooks/twilio/status"
STATUS_CALLBACK = PUBLIC_BASE_URL + CALLBACK_PATH


def phone() -> str:
    """A fresh Chilean mobile, so each test's messages are told apart by destination."""
    return "+569" + f"{uuid.uuid4().int % 10**8:08d}"


# --- the stack ----------------------------------------------------------------------------------


def twilio_env(fake: FakeTwilio) -> dict[str, str]:
    return {**fake.env(), "PUBLIC_BASE_URL": PUBLIC_BASE_URL}


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeTwilio() as server:
        yield server


def _stack(template_database: str, keys: dict[str, str], workdir, fake: FakeTwilio, label: str) -> tuple[Stack, str]:
    name = f"estacionate_test_{os.getpid()}_{label}{uuid.uuid4().hex[:6]}"
    create_database(BASE_DATABASE_URL, name, template=template_database)
    env = {**stack_env(name, next(ISOLATED_REDIS_DBS), keys), **twilio_env(fake)}
    stack = Stack(env, workdir, label)
    stack.redis.flushdb()
    return stack, name


@pytest.fixture(scope="module")
def notified(template_database, keys, api_log, tmp_path_factory, fake) -> Any:
    """A stack whose worker sends to the fake Twilio (one worker, every queue)."""
    stack, name = _stack(template_database, keys, tmp_path_factory.mktemp("notified"), fake, "notify")
    try:
        stack.start_worker(concurrency=2)
        yield stack
    finally:
        stack.close()
        drop_database(BASE_DATABASE_URL, name)


@dataclass
class Place:
    admin: dict[str, str]
    building_id: str
    spot_id: str


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def make_place(stack: Stack) -> Place:
    admin = stack.login(stack.create_user(role="platform_admin"))
    client = stack.client()
    org = ok(client.post("/v1/organizations", json={"name": f"Notify {uuid.uuid4().hex[:6]}"}, headers=admin), 201)
    building = ok(
        client.post(
            f"/v1/organizations/{org['id']}/buildings",
            json={
                "name": "Torre Los Leones",
                "address": "Av. Providencia 1234",
                "contact_email": "ops@example.test",
                "max_upcoming_bookings_per_resident": 100,
                "timezone": "America/Santiago",
            },
            headers=admin,
        ),
        201,
    )
    ok(client.post(f"/v1/buildings/{building['id']}/units", json={"unit_number": "101"}, headers=admin), 201)
    spot = ok(client.post(f"/v1/buildings/{building['id']}/spots", json={"spot_number": "V-12"}, headers=admin), 201)
    return Place(admin, building["id"], spot["id"])


@dataclass
class Person:
    email: str
    password: str
    phone: str
    user_id: str
    headers: dict[str, str]


def resident(stack: Stack, place: Place, *, with_phone: str | None = None) -> Person:
    """A verified resident with a phone, registered through the API, logged in."""
    number = with_phone or phone()
    body = {
        "email": f"resident-{uuid.uuid4().hex[:10]}@home.test",
        "password": "resident-password",
        "first_name": "Ana",
        "last_name": "Pérez",
        "rut": valid_rut(),
        "phone": number,
        "building_id": place.building_id,
        "unit_number": "101",
    }
    registered = ok(stack.client().post("/v1/auth/register", json=body), 201)
    ok(stack.client().post(f"/v1/residents/{registered['id']}/verify", headers=place.admin))
    headers = stack.login(body)
    user_id = stack.sql("SELECT user_id::text FROM residents WHERE id = %s", (registered["id"],))[0][0]
    return Person(body["email"], body["password"], number, user_id, headers)


def new_block(stack: Stack, place: Place, start: str, end: str) -> str:
    body = {"start": start, "end": end, "duration": "11h", "base_price_clp": 5000}
    return ok(stack.client().post(f"/v1/spots/{place.spot_id}/blocks", json=body, headers=place.admin), 201)["id"]


def book(stack: Stack, person: Person, block_id: str, **extra: Any) -> dict[str, Any]:
    body = {"availability_block_id": block_id, "visitor_name": "Marta Rojas", "vehicle_plate": "BBCL12", **extra}
    accepted = ok(stack.client().post("/v1/bookings", json=body, headers=person.headers), 202)
    job = stack.wait_job(person.headers, accepted["job_id"])
    assert job["status"] == "succeeded", job
    return job["result"]["booking"]


def to(number: str) -> str:
    return "whatsapp:" + number


def requests_to(fake: FakeTwilio, number: str, containing: str = "") -> list[ReceivedRequest]:
    return [r for r in fake.requests if r.form.get("To") == to(number) and containing in r.form.get("Body", "")]


def rows(stack: Stack, where: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    columns = "template, recipient, status, error_code, attempts, provider_sid"
    return stack.sql(f"SELECT {columns} FROM notifications WHERE {where} ORDER BY created_at", params)  # noqa: S608


def settled(stack: Stack, timeout: float = 30) -> None:
    """Every message job has ended and no event delivery is pending: the fake hears nothing more."""
    wait_until(
        lambda: (
            stack.sql(
                "SELECT (SELECT count(*) FROM jobs WHERE type = 'notification.send'"
                " AND status IN ('queued', 'running'))"
                " + (SELECT count(*) FROM events e WHERE NOT EXISTS"
                "    (SELECT 1 FROM event_receipts r WHERE r.event_id = e.id AND r.subscriber = 'notifications')"
                "    AND e.type IN ('booking.confirmed', 'booking.cancelled', 'booking.checked_in'))"
            )[0][0]
            == 0
        ),
        timeout,
        message="notifications never settled",
    )


ZONE = ZoneInfo("America/Santiago")


def local(instant: str) -> str:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(ZONE).strftime("%d-%m-%Y %H:%M")


@pytest.fixture(scope="module")
def place(notified) -> Place:
    return make_place(notified)


# --- bookings -----------------------------------------------------------------------------------


def test_a_booking_with_a_visitor_phone_across_a_dst_change_sends_exactly_two_messages(
    template_database, keys, api_log, tmp_path, fake
):
    """Resident and visitor each get one ``booking_confirmed``: code, local start and end, callback.

    No IANA zone changes its offset within the 30 days a block can be booked ahead, so the booking
    is made for a block soon and then moved (in the database, before the event is delivered: the
    system queue has no worker yet) to the night Chile leaves summer time, 2027-04-04 00:00 local
    (-03 -> -04): what the subscriber reads is a booking across a DST change.
    """
    stack, name = _stack(template_database, keys, tmp_path, fake, "dst")
    try:
        stack.start_worker(concurrency=1, label="interactive", queues=["interactive"])
        place = make_place(stack)
        person = resident(stack, place)
        visitor = phone()
        block = new_block(stack, place, soon(days=3), soon(days=3, hours=11))
        booking = book(stack, person, block, visitor_phone=visitor)
        start, end = "2027-04-04T00:00:00+00:00", "2027-04-04T11:00:00+00:00"  # 21:00 -03, then 07:00 -04
        stack.sql("UPDATE bookings SET block_start = %s, block_end = %s WHERE id = %s", (start, end, booking["id"]))
        stack.start_worker(concurrency=1, label="system", queues=["system"])  # the event is delivered now

        wait_until(lambda: requests_to(fake, visitor) and requests_to(fake, person.phone, "reserva"), 60)
        settled(stack)
        confirmed = [r for r in fake.requests if booking["confirmation_code"] in r.form.get("Body", "")]
        assert sorted(r.form["To"] for r in confirmed) == sorted([to(person.phone), to(visitor)])
        for received in confirmed:
            body = received.form["Body"]
            assert "desde el 03-04-2027 21:00 hasta el 04-04-2027 07:00" in body, body
            assert "Marta Rojas" in body and "Torre Los Leones" in body and "V-12" in body
            assert received.form["StatusCallback"] == STATUS_CALLBACK
            assert received.form["From"] == fake.whatsapp_from and received.authorized
        sids = {r.form["To"]: r.sid for r in confirmed}
        assert sorted(rows(stack, "booking_id = %s", (booking["id"],))) == [
            ("booking_confirmed", "resident", "sent", None, 1, sids[to(person.phone)]),
            ("booking_confirmed", "visitor", "sent", None, 1, sids[to(visitor)]),
        ]
    finally:
        stack.close()
        drop_database(BASE_DATABASE_URL, name)


def test_cancelling_sends_booking_cancelled_to_resident_and_visitor(notified, place, fake):
    person, visitor = resident(notified, place), phone()
    block = new_block(notified, place, soon(days=4), soon(days=4, hours=11))
    booking = book(notified, person, block, visitor_phone=visitor)
    accepted = ok(notified.client().post(f"/v1/bookings/{booking['id']}/cancel", json={}, headers=person.headers), 202)
    assert notified.wait_job(person.headers, accepted["job_id"])["status"] == "succeeded"
    settled(notified)
    for number in (person.phone, visitor):
        (cancelled,) = requests_to(fake, number, "se canceló")
        assert f"del {local(booking['start'])}" in cancelled.form["Body"]
    templates = sorted(r[:2] for r in rows(notified, "booking_id = %s", (booking["id"],)))
    assert templates == [
        ("booking_cancelled", "resident"),
        ("booking_cancelled", "visitor"),
        ("booking_confirmed", "resident"),
        ("booking_confirmed", "visitor"),
    ]


def test_a_check_in_sends_guest_checked_in_to_the_resident_only(notified, place, fake):
    person, visitor = resident(notified, place), phone()
    block = new_block(notified, place, soon(days=5), soon(days=5, hours=11))
    booking = book(notified, person, block, visitor_phone=visitor)
    notified.sql(
        "UPDATE bookings SET block_start = now(), block_end = now() + interval '11 hours' WHERE id = %s",
        (booking["id"],),
    )
    ok(notified.client().post(f"/v1/bookings/{booking['id']}/check-in", json={}, headers=place.admin))
    settled(notified)
    (checked_in,) = requests_to(fake, person.phone, "registró su ingreso")
    assert "Marta Rojas" in checked_in.form["Body"] and "V-12" in checked_in.form["Body"]
    assert requests_to(fake, visitor, "registró su ingreso") == []
    assert len(requests_to(fake, visitor)) == 1  # the confirmation only


# --- retries and failures -------------------------------------------------------------------------


def request_reset(stack: Stack, email: str, ip: str | None = None) -> Any:
    """From an address of its own unless told (10 requests per address an hour are honoured)."""
    address = ip or f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    return stack.client().post("/v1/auth/password-reset", json={"email": email}, environ_base={"REMOTE_ADDR": address})


def test_429_429_then_201_delivers_on_the_third_request(notified, place, fake):
    person = resident(notified, place)
    settled(notified)
    fake.fail_next(2, 429)
    assert request_reset(notified, person.email).status_code == 202
    wait_until(lambda: len(requests_to(fake, person.phone, "restablecer")) == 3, 30)
    settled(notified)
    statuses = [r.answered_status for r in requests_to(fake, person.phone, "restablecer")]
    assert statuses == [429, 429, 201]
    assert rows(notified, "user_id = %s AND template = 'password_reset_code'", (person.user_id,))[0][2:5] == (
        "sent",
        None,
        3,
    )


def test_5xx_answers_are_retried_a_bounded_number_of_times_then_the_message_fails(notified, place, fake):
    from app.domain.notifications import DELIVERY_POLICY

    person = resident(notified, place)
    settled(notified)
    fake.fail_next(DELIVERY_POLICY.max_attempts, 500)
    request_reset(notified, person.email)
    settled(notified)
    answers = [r.answered_status for r in requests_to(fake, person.phone, "restablecer")]
    assert answers == [500] * DELIVERY_POLICY.max_attempts  # six, then no more
    (row,) = rows(notified, "user_id = %s AND template = 'password_reset_code'", (person.user_id,))
    assert row[2:5] == ("failed", 20500, DELIVERY_POLICY.max_attempts)


def test_63018_the_channels_rate_limit_waits_on_the_longer_clock(notified, place, fake):
    from app.domain.notifications import DELIVERY_POLICY

    scale = notified.settings.notification_retry_scale
    waits = {}
    for status, code in ((429, None), (429, 63018)):
        person = resident(notified, place)
        settled(notified)
        fake.fail_next(1, status, code)
        request_reset(notified, person.email)
        settled(notified)
        # The reset code's job: the newest message job (the pipeline was idle before the request).
        (row,) = notified.sql(
            "SELECT id::text FROM jobs WHERE type = 'notification.send' ORDER BY created_at DESC LIMIT 1"
        )
        retried = [
            line["retry_in_s"]
            for line in notified.worker_lines()
            if line.get("message") == "job retried later" and line.get("job_id") == row[0]
        ]
        (waits[code],) = retried
        assert [r.answered_status for r in requests_to(fake, person.phone, "restablecer")] == [status, 201]
    # Equal jitter: between half and all of the first step of each clock.
    assert DELIVERY_POLICY.base_seconds * scale / 2 <= waits[None] <= DELIVERY_POLICY.base_seconds * scale + 0.001
    low = DELIVERY_POLICY.rate_limited_base_seconds * scale / 2
    assert low <= waits[63018] <= DELIVERY_POLICY.rate_limited_base_seconds * scale + 0.001


def test_21211_fails_at_once_after_exactly_one_request(notified, place, fake):
    person = resident(notified, place)
    settled(notified)
    fake.fail_next(1, 400, 21211)
    request_reset(notified, person.email)
    settled(notified)
    assert [r.answered_status for r in requests_to(fake, person.phone, "restablecer")] == [400]
    (row,) = rows(notified, "user_id = %s AND template = 'password_reset_code'", (person.user_id,))
    assert row[2:5] == ("failed", 21211, 1)
    listed = ok(notified.client().get("/v1/me/notifications", headers=person.headers))["items"]
    assert {"template": "password_reset_code", "status": "failed", "error_code": 21211}.items() <= listed[0].items()


def test_with_booking_updates_off_no_booking_message_is_sent_but_the_reset_code_still_is(notified, place, fake):
    person = resident(notified, place)
    answer = ok(
        notified.client().patch(
            "/v1/me/notification-preferences", json={"booking_updates": False}, headers=person.headers
        )
    )
    assert answer == {"booking_updates": False}
    block = new_block(notified, place, soon(days=6), soon(days=6, hours=11))
    visitor = phone()
    booking = book(notified, person, block, visitor_phone=visitor)
    request_reset(notified, person.email)
    settled(notified)
    assert requests_to(fake, person.phone, booking["confirmation_code"]) == []
    assert len(requests_to(fake, person.phone, "restablecer")) == 1
    assert len(requests_to(fake, visitor, booking["confirmation_code"])) == 1  # the visitor has no such switch


def test_an_opt_out_answer_suppresses_later_booking_messages_to_that_number(notified, place, fake):
    person, visitor = resident(notified, place), phone()
    settled(notified)
    fake.fail_next(1, 400, 21610)  # the visitor's number unsubscribed
    first = book(
        notified, person, new_block(notified, place, soon(days=7), soon(days=7, hours=11)), visitor_phone=visitor
    )
    settled(notified)
    assert [r.answered_status for r in requests_to(fake, visitor)] + [
        r.answered_status for r in requests_to(fake, person.phone, first["confirmation_code"])
    ] in ([400, 201], [201, 400])
    # whichever of the two got the scripted 21610 is opted out; book again and count
    before = {n: len(requests_to(fake, n)) for n in (visitor, person.phone)}
    opted = visitor if requests_to(fake, visitor)[0].answered_status == 400 else person.phone
    second = book(
        notified, person, new_block(notified, place, soon(days=8), soon(days=8, hours=11)), visitor_phone=visitor
    )
    settled(notified)
    assert len(requests_to(fake, opted, second["confirmation_code"])) == 0
    assert len(requests_to(fake, opted)) == before[opted]


# --- status callbacks ---------------------------------------------------------------------------


def callback(stack: Stack, fake: FakeTwilio, sid: str, status: str, *, signature: str | None = None, sign=True):
    params = fake.status_callback_params(sid, status)
    headers = {}
    if sign:
        headers["X-Twilio-Signature"] = signature or sign_status_callback(fake.auth_token, STATUS_CALLBACK, params)
    return stack.client().post(CALLBACK_PATH, data=params, headers=headers)


def test_status_callbacks_move_a_message_forward_only_and_need_twilios_signature(notified, place, fake):
    person = resident(notified, place)
    request_reset(notified, person.email)
    settled(notified)
    (sent,) = requests_to(fake, person.phone, "restablecer")
    status = lambda: rows(notified, "provider_sid = %s", (sent.sid,))[0][2]  # noqa: E731
    assert status() == "sent"

    assert callback(notified, fake, sent.sid, "delivered").status_code == 204
    assert status() == "delivered"
    assert callback(notified, fake, sent.sid, "read").status_code == 204
    assert status() == "read"
    assert callback(notified, fake, sent.sid, "sent").status_code == 204  # late: changes nothing
    assert callback(notified, fake, sent.sid, "read").status_code == 204  # a duplicate: harmless
    assert status() == "read"

    forged = callback(notified, fake, sent.sid, "failed", signature="bm90IGEgc2lnbmF0dXJl")
    missing = callback(notified, fake, sent.sid, "failed", sign=False)
    assert (forged.status_code, missing.status_code) == (403, 403)
    assert forged.get_json()["type"] == "/problems/forbidden"
    assert status() == "read"
    # Signed over another URL (the Host it came through, not PUBLIC_BASE_URL): refused too.
    params = fake.status_callback_params(sent.sid, "failed")
    elsewhere = sign_status_callback(fake.auth_token, "http://localhost" + CALLBACK_PATH, params)
    assert (
        notified.client().post(CALLBACK_PATH, data=params, headers={"X-Twilio-Signature": elsewhere}).status_code == 403
    )
    assert callback(notified, fake, "SM" + "0" * 32, "delivered").status_code == 204  # unknown sid: nothing


# --- password reset -----------------------------------------------------------------------------


def reset_code(fake: FakeTwilio, number: str, nth: int = -1) -> str:
    bodies = [r.form["Body"] for r in requests_to(fake, number, "restablecer")]
    match = re.search(r"es (\d{6})\.", bodies[nth])
    assert match, bodies[nth]
    return match.group(1)


def confirm(stack: Stack, email: str, code: str, password: str = "a-brand-new-password") -> Any:
    return stack.client().post(
        "/v1/auth/password-reset/confirm", json={"email": email, "code": code, "new_password": password}
    )


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_five_wrong_codes_kill_the_code(notified, place, fake):
    person = resident(notified, place)
    request_reset(notified, person.email)
    settled(notified)
    code = reset_code(fake, person.phone)
    for _ in range(5):
        assert confirm(notified, person.email, wrong(code)).status_code == 401
    refused = confirm(notified, person.email, code)
    assert refused.status_code == 401 and refused.get_json()["type"] == "/problems/unauthenticated"
    assert notified.sql("SELECT failed_attempts FROM password_reset_codes WHERE user_id = %s", (person.user_id,)) == [
        (5,)
    ]
    assert (
        notified.client().post("/v1/auth/login", json={"email": person.email, "password": person.password}).status_code
        == 200
    )


def test_a_replaced_code_is_refused_and_the_right_one_works_once_ending_every_session(notified, place, fake):
    person = resident(notified, place)
    other_session = notified.login({"email": person.email, "password": person.password})
    request_reset(notified, person.email)
    settled(notified)
    first = reset_code(fake, person.phone)
    request_reset(notified, person.email)
    settled(notified)
    second = reset_code(fake, person.phone)
    if first != second:  # (six random digits may repeat, one time in a million: then the check is moot)
        assert confirm(notified, person.email, first).status_code == 401
    assert confirm(notified, person.email, second).status_code == 204
    assert confirm(notified, person.email, second, "yet-another-password").status_code == 401  # used once
    for headers in (person.headers, other_session):
        assert notified.client().get("/v1/me", headers=headers).status_code == 401
    old = notified.client().post("/v1/auth/login", json={"email": person.email, "password": person.password})
    assert old.status_code == 401
    new = notified.client().post("/v1/auth/login", json={"email": person.email, "password": "a-brand-new-password"})
    assert new.status_code == 200
    actions = notified.sql(
        "SELECT action FROM audit_logs WHERE entity_type = 'user' AND entity_id = %s ORDER BY occurred_at",
        (person.user_id,),
    )
    assert ("auth.password_reset",) in actions
    settled(notified)
    assert requests_to(fake, person.phone, "se cambió la contraseña")  # the security notice


def test_a_reset_clears_the_login_lockout(notified, place, fake):
    person = resident(notified, place)
    for _ in range(notified.settings.login_lock_threshold):
        notified.client().post("/v1/auth/login", json={"email": person.email, "password": "wrong-password!"})
    locked = notified.client().post("/v1/auth/login", json={"email": person.email, "password": person.password})
    assert locked.status_code == 429
    request_reset(notified, person.email)
    settled(notified)
    assert confirm(notified, person.email, reset_code(fake, person.phone)).status_code == 204
    login = notified.client().post("/v1/auth/login", json={"email": person.email, "password": "a-brand-new-password"})
    assert login.status_code == 200


def test_an_expired_code_is_refused_on_a_simulated_clock(notified, place, fake):
    from app.problems import Problem
    from app.services import password_reset
    from app.unit_of_work import unit_of_work

    person = resident(notified, place)
    request_reset(notified, person.email)
    settled(notified)
    code = reset_code(fake, person.phone)
    issued = notified.sql("SELECT expires_at FROM password_reset_codes WHERE user_id = %s", (person.user_id,))[0][0]
    with notified.context():
        with pytest.raises(Problem) as late, unit_of_work():
            password_reset.confirm(person.email, code, "a-brand-new-password", None, None, now=issued)
        assert late.value.status == 401
        with unit_of_work():  # a second before expiry the same code is still good
            password_reset.confirm(
                person.email, code, "a-brand-new-password", None, None, now=issued - timedelta(seconds=1)
            )


def test_an_unknown_email_sends_nothing_and_answers_like_a_known_one(notified, place, fake):
    person = resident(notified, place)
    settled(notified)
    before = len(fake.requests)
    timings = {"known": [], "unknown": []}
    answers = {}
    for _ in range(3):
        for kind, email in (("known", person.email), ("unknown", f"nobody-{uuid.uuid4().hex[:8]}@home.test")):
            started = time.monotonic()
            response = request_reset(notified, email)
            timings[kind].append(time.monotonic() - started)
            answers[kind] = (response.status_code, response.get_json())
    assert answers["known"] == answers["unknown"]
    assert answers["known"][0] == 202
    settled(notified)
    assert len(fake.requests) - before == 3  # the known account's three (its hourly limit), nothing else
    median = {k: sorted(v)[1] for k, v in timings.items()}
    assert abs(median["known"] - median["unknown"]) < 0.1, median


def test_reset_requests_beyond_three_an_hour_per_account_send_nothing(notified, place, fake):
    person = resident(notified, place)
    for _ in range(5):
        assert request_reset(notified, person.email).status_code == 202
    settled(notified)
    assert len(requests_to(fake, person.phone, "restablecer")) == 3


def test_reset_requests_beyond_ten_an_hour_per_address_send_nothing(notified, place, fake):
    people = [resident(notified, place) for _ in range(11)]
    for person in people:
        assert request_reset(notified, person.email, ip="192.0.2.77").status_code == 202
    settled(notified)
    sent = [len(requests_to(fake, person.phone, "restablecer")) for person in people]
    assert sent == [1] * 10 + [0]


# --- the log ------------------------------------------------------------------------------------


def test_the_log_lists_only_the_callers_messages_and_the_cli_shows_them_masked(notified, place, fake):
    person, other = resident(notified, place), resident(notified, place)
    request_reset(notified, person.email)
    settled(notified)
    mine = ok(notified.client().get("/v1/me/notifications?limit=1", headers=person.headers))
    assert len(mine["items"]) == 1 and mine["next_cursor"]
    item = mine["items"][0]
    assert set(item) == {"id", "channel", "template", "status", "error_code", "created_at", "updated_at"}
    assert item["channel"] == "whatsapp" and item["template"] == "password_reset_code"
    rest = ok(notified.client().get(f"/v1/me/notifications?cursor={mine['next_cursor']}", headers=person.headers))
    assert [i["template"] for i in rest["items"]] == ["security_notice"]  # the login
    theirs = ok(notified.client().get("/v1/me/notifications", headers=other.headers))["items"]
    assert item["id"] not in {i["id"] for i in theirs}

    shown = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "notifications", "show", "--last", "3"],
        env=notified.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert len([line for line in shown.splitlines() if not line.startswith("    ")]) == 3
    assert other.phone not in shown and other.phone[-3:] in shown


# --- privacy ------------------------------------------------------------------------------------


def test_no_phone_number_or_message_text_reaches_a_log_and_destinations_are_only_encrypted(
    notified, place, fake, api_log
):
    person, visitor = resident(notified, place), phone()
    booking = book(
        notified, person, new_block(notified, place, soon(days=9), soon(days=9, hours=11)), visitor_phone=visitor
    )
    request_reset(notified, person.email)
    settled(notified)
    code = reset_code(fake, person.phone)
    logs = api_log.read_text() + "".join(p.log_path.read_text() for p in notified.processes)
    for secret in (person.phone, visitor, person.phone[1:], visitor[1:], "Marta Rojas", "restablecer", code):
        assert secret not in logs, secret
    assert booking["confirmation_code"] not in logs
    for number in (person.phone, visitor):
        stored = notified.sql(
            "SELECT count(*) FROM notifications WHERE position(convert_to(%s, 'UTF8') IN destination_encrypted) > 0"
            " OR position(convert_to(%s, 'UTF8') IN variables_encrypted) > 0",
            (number, number),
        )
        assert stored == [(0,)]
    assert notified.sql(
        "SELECT count(*) FROM notifications WHERE position(convert_to('Marta', 'UTF8') IN variables_encrypted) > 0"
    ) == [(0,)]
    # A reset code does not outlive its message.
    assert notified.sql(
        "SELECT count(*) FROM notifications WHERE template = 'password_reset_code' AND status = 'sent'"
        " AND variables_encrypted IS NOT NULL"
    ) == [(0,)]


def test_scrub_for_user_erases_destinations_and_variables_of_the_users_messages(notified, place, fake):
    from app.services import notifications
    from app.unit_of_work import unit_of_work

    person, visitor = resident(notified, place), phone()
    booking = book(
        notified, person, new_block(notified, place, soon(days=10), soon(days=10, hours=11)), visitor_phone=visitor
    )
    settled(notified)
    with notified.context(), unit_of_work():
        exported = notifications.export_for_user(uuid.UUID(person.user_id))
    assert {e["template"] for e in exported} == {"security_notice", "booking_confirmed"}
    assert {e["destination"] for e in exported} == {person.phone}
    with notified.context(), unit_of_work():
        scrubbed = notifications.scrub_for_user(uuid.UUID(person.user_id))
    assert scrubbed >= 3  # the login notice, the resident's and the visitor's confirmations
    left = notified.sql(
        "SELECT count(*) FROM notifications WHERE (user_id = %s OR booking_id = %s) AND"
        " (destination_encrypted IS NOT NULL OR destination_bidx IS NOT NULL OR variables_encrypted IS NOT NULL)",
        (person.user_id, booking["id"]),
    )
    assert left == [(0,)]
    assert ok(notified.client().get("/v1/me/notifications", headers=person.headers))["items"]  # the log stays
    with notified.context(), unit_of_work():
        assert {e["destination"] for e in notifications.export_for_user(uuid.UUID(person.user_id))} == {None}


def test_the_status_callback_takes_form_bodies_only(notified):
    answer = notified.client().post(CALLBACK_PATH, json={"MessageSid": "SM1", "MessageStatus": "read"})
    assert answer.status_code == 415 and answer.get_json()["type"] == "/problems/unsupported-media-type"


# --- no duplicate sends -------------------------------------------------------------------------


def test_a_worker_sigkilled_inside_the_provider_call_never_sends_twice(
    template_database, keys, api_log, tmp_path, fake
):
    """The row is committed ``sending`` before the call: the redelivered job finds it and stops."""
    stack, name = _stack(template_database, keys, tmp_path, fake, "kill")
    try:
        stack.start_worker(concurrency=1, label="system", queues=["system"])
        stack.start_beat()  # the relay: re-publishes the job once the dead worker's lease expires
        doomed = stack.start_worker(concurrency=1, label="interactive", queues=["interactive"])
        place = make_place(stack)
        person = resident(stack, place)
        settled(stack)
        hold = fake.hold_next()
        request_reset(stack, person.email)
        hold.wait_arrived()  # the worker is inside the provider call now
        row = lambda: rows(stack, "user_id = %s AND template = 'password_reset_code'", (person.user_id,))[0]  # noqa: E731
        assert row()[2:5] == ("sending", None, 1), "committed as sending before the call"
        doomed.kill()
        hold.release()  # Twilio accepted it; nobody is left to hear the answer
        job = stack.sql("SELECT id::text FROM jobs WHERE type = 'notification.send' ORDER BY created_at DESC LIMIT 1")
        stack.start_worker(concurrency=1, label="interactive", queues=["interactive"])
        wait_until(
            lambda: stack.sql("SELECT status, attempts FROM jobs WHERE id = %s", (job[0][0],))[0] in [("succeeded", 2)],
            60,
            message="the job was never taken over",
        )
        assert len(requests_to(fake, person.phone, "restablecer")) == 1
        assert row()[2] == "sending"  # outcome unknown: never re-sent (README "Notifications")
    finally:
        stack.close()
        drop_database(BASE_DATABASE_URL, name)


# --- security notices and metrics ---------------------------------------------------------------


def test_security_notices_tell_the_account_of_mfa_on_and_off_a_password_change_and_a_new_login(notified, place, fake):
    import pyotp

    person = resident(notified, place)  # logged in: a new-login notice
    client = notified.client()
    secret = ok(client.post("/v1/auth/mfa/enroll", headers=person.headers))["secret"]
    confirmed = ok(client.post("/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=person.headers))
    headers = {"Authorization": f"Bearer {confirmed['access_token']}"}
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: the current one was just used
    ok(client.post("/v1/auth/mfa/disable", json={"password": person.password, "code": code}, headers=headers), 204)
    body = {"current_password": person.password, "new_password": "another-long-password"}
    ok(client.post("/v1/auth/password", json=body, headers=headers), 204)
    settled(notified)
    notices = [r.form["Body"] for r in requests_to(fake, person.phone, "en tu cuenta")]
    for change in (
        "se inició una nueva sesión",
        "se activó la verificación en dos pasos",
        "se desactivó la verificación en dos pasos",
        "se cambió la contraseña",
    ):
        assert any(change in text for text in notices), (change, notices)


def test_metrics_count_messages_by_template_and_status(notified, place):
    person = resident(notified, place)
    request_reset(notified, person.email)
    scrape = notified.client().get("/metrics").get_data(as_text=True)
    assert re.search(r'notifications_total\{status="queued",template="password_reset_code"\} [1-9]', scrape)
    assert "# TYPE notification_provider_latency_seconds histogram" in scrape


# --- production settings ------------------------------------------------------------------------


def test_production_without_twilio_settings_exits_with_one_clear_line(notified):
    import base64
    import secrets

    env = {
        **{k: v for k, v in notified.env.items() if not k.startswith("TWILIO_") and k != "PUBLIC_BASE_URL"},
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "notifications", "show"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Estacionate refuses to start: production sends WhatsApp through Twilio, so TWILIO_ACCOUNT_SID, "
        "TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM, PUBLIC_BASE_URL must be set too"
    ]
