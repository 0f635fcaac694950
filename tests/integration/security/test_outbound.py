"""Outbound requests on the wire: pinned to the vetted address, TLS verified against the host name,
never redirected, and bounded by one wall-clock deadline however slowly the receiver answers.

Receivers are real local servers (pytest-httpserver, a trickling socket server); names are
answered by an injected resolver, the stand-in for a DNS server an attacker controls. Every
127.0.0.0/8 address is loopback on Linux, so 127.0.0.2 plays "the other address".
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator

import pytest
import trustme
from pytest_httpserver import HTTPServer
from werkzeug import Response

from app.security import outbound
from app.security.outbound import DeadlineExceeded, DeliveryFailed, DestinationRefused, Policy
from tests.support.receivers import TLS_TRICKLE, TrickleReceiver

LOCAL = Policy(allow_loopback=True, require_https=False)
BODY = b'{"ok":true}'
HEADERS = {"content-type": "application/json"}


class Resolver:
    """Answers each query with the next of its answers (the last one repeats), counting queries."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


@pytest.fixture
def receiver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def other_receiver(receiver: HTTPServer) -> Iterator[HTTPServer]:
    """A second server on the same port at another address: where a rebinding would send us."""
    server = HTTPServer(host="127.0.0.2", port=receiver.port)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_the_request_goes_to_the_vetted_address_when_the_name_rebinds(receiver, other_receiver):
    for server in (receiver, other_receiver):
        server.expect_request("/hook", method="POST").respond_with_data("ok")
    # First answer (the one checked): 127.0.0.1. Every later answer: 127.0.0.2.
    resolver = Resolver(["127.0.0.1"], ["127.0.0.2"])
    answer = outbound.post(
        f"http://receiver.test:{receiver.port}/hook", BODY, HEADERS, deadline=5, policy=LOCAL, resolver=resolver
    )
    assert answer.status == 200
    assert resolver.calls == ["receiver.test"], "the name must be resolved exactly once"
    assert len(receiver.log) == 1
    assert other_receiver.log == []
    request, _ = receiver.log[0]
    assert request.headers["Host"] == f"receiver.test:{receiver.port}"
    assert request.get_data() == BODY
    assert request.headers["Content-Type"] == "application/json"


def test_a_name_answering_a_refused_address_is_never_connected_to(receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    resolver = Resolver(["127.0.0.1"])
    with pytest.raises(DestinationRefused):
        outbound.post(
            f"http://receiver.test:{receiver.port}/hook",
            BODY,
            HEADERS,
            deadline=5,
            policy=Policy(allow_loopback=False),
            resolver=resolver,
        )
    assert receiver.log == []


def test_http_is_refused_when_https_is_required(receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    with pytest.raises(DestinationRefused, match="https"):
        outbound.post(
            receiver.url_for("/hook"), BODY, HEADERS, deadline=5, policy=Policy(allow_loopback=True, require_https=True)
        )
    assert receiver.log == []


def test_redirects_are_answers_not_instructions(receiver, other_receiver):
    location = f"http://127.0.0.2:{receiver.port}/internal"
    receiver.expect_request("/hook").respond_with_response(Response("", status=307, headers={"Location": location}))
    other_receiver.expect_request("/internal").respond_with_data("secret")
    answer = outbound.post(receiver.url_for("/hook"), BODY, HEADERS, deadline=5, policy=LOCAL)
    assert answer.status == 307
    assert other_receiver.log == []


def test_the_answer_body_is_read_up_to_the_limit(receiver):
    receiver.expect_request("/hook").respond_with_data("x" * 100_000)
    answer = outbound.post(receiver.url_for("/hook"), BODY, HEADERS, deadline=5, policy=LOCAL, max_body=1000)
    assert (answer.status, len(answer.body)) == (200, 1000)


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def tls_receiver(ca: trustme.CA, *names: str) -> tuple[HTTPServer, list[str | None]]:
    """An HTTPS receiver on 127.0.0.1 whose certificate names ``names``; records the SNI it was sent."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    seen: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: seen.append(name)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    return server, seen


def test_https_goes_to_the_pinned_address_with_sni_and_a_verified_certificate(ca, ca_bundle):
    server, sni = tls_receiver(ca, "receiver.test")
    try:
        server.expect_request("/hook").respond_with_data("ok")
        answer = outbound.post(
            f"https://receiver.test:{server.port}/hook",
            BODY,
            HEADERS,
            deadline=5,
            policy=LOCAL,
            resolver=Resolver(["127.0.0.1"]),
            ca_bundle=ca_bundle,
        )
        assert answer.status == 200
        assert sni == ["receiver.test"]
        assert server.log[0][0].headers["Host"] == f"receiver.test:{server.port}"
    finally:
        server.stop()


def test_a_certificate_for_another_name_is_refused(ca, ca_bundle):
    server, _ = tls_receiver(ca, "other.test")
    try:
        server.expect_request("/hook").respond_with_data("ok")
        with pytest.raises(DeliveryFailed, match="certificate"):
            outbound.post(
                f"https://receiver.test:{server.port}/hook",
                BODY,
                HEADERS,
                deadline=5,
                policy=LOCAL,
                resolver=Resolver(["127.0.0.1"]),
                ca_bundle=ca_bundle,
            )
        assert server.log == []
    finally:
        server.stop()


def test_a_certificate_from_an_unknown_authority_is_refused(ca):
    # Without the test CA in the bundle, the default (certifi) trust store knows nothing of it.
    server, _ = tls_receiver(ca, "receiver.test")
    try:
        server.expect_request("/hook").respond_with_data("ok")
        with pytest.raises(DeliveryFailed, match="certificate"):
            outbound.post(
                f"https://receiver.test:{server.port}/hook",
                BODY,
                HEADERS,
                deadline=5,
                policy=LOCAL,
                resolver=Resolver(["127.0.0.1"]),
            )
        assert server.log == []
    finally:
        server.stop()


# --- the deadline ---------------------------------------------------------------------------

DEADLINE = 1.0
MARGIN = 0.5


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline():
    with TrickleReceiver(interval=0.1) as slow:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            outbound.post(slow.url(), BODY, HEADERS, deadline=DEADLINE, policy=LOCAL)
        assert time.monotonic() - started < DEADLINE + MARGIN
        (connection,) = slow.wait_for(1, closed=True, timeout=5)
        assert connection.held_for < DEADLINE + MARGIN


def test_a_receiver_trickling_its_tls_handshake_is_cut_off_at_the_deadline():
    with TrickleReceiver(prefix=TLS_TRICKLE, interval=0.1) as slow:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            outbound.post(slow.url(scheme="https"), BODY, HEADERS, deadline=DEADLINE, policy=LOCAL)
        assert time.monotonic() - started < DEADLINE + MARGIN
        (connection,) = slow.wait_for(1, closed=True, timeout=5)
        assert connection.held_for < DEADLINE + MARGIN


def test_a_slow_resolver_counts_against_the_deadline():
    answered = threading.Event()

    def slow_resolver(host: str) -> list[str]:
        answered.wait(30)  # a resolver that answers only once the test is over
        return ["127.0.0.1"]

    started = time.monotonic()
    try:
        with pytest.raises(DeadlineExceeded):
            outbound.post(
                "http://receiver.test:9/hook", BODY, HEADERS, deadline=DEADLINE, policy=LOCAL, resolver=slow_resolver
            )
        assert time.monotonic() - started < DEADLINE + MARGIN
    finally:
        answered.set()


def test_a_refused_connection_is_a_delivery_failure_not_a_deadline():
    with TrickleReceiver() as closed:
        url = closed.url()
    with pytest.raises(DeliveryFailed, match="connect"):
        outbound.post(url, BODY, HEADERS, deadline=DEADLINE, policy=LOCAL)
