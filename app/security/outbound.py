"""Outbound HTTP to destinations users name (SSRF protection), pinned and within one deadline.

Every request this service makes to a URL a user gave us (job callbacks today; operator webhooks
and the like later) goes through ``post`` here, and nowhere else.

Who may be called (``vet``):

- http or https only, and https only when the policy says so (production);
- the host is resolved ONCE and EVERY address it answers must be globally routable: private,
  loopback, link-local (cloud metadata at 169.254.169.254), CGNAT, multicast, documentation and
  reserved ranges are refused, and so is every IPv6 range that carries or translates to an IPv4
  address the IPv4 checks never saw: IPv4-mapped ``::ffff:0:0/96``, IPv4-compatible ``::/96``,
  NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16`` and Teredo ``2001::/32``;
- loopback (127.0.0.0/8, ::1) only where the policy allows it (never in production).

How it is called (``post``):

- **Pinned.** A check that resolves the name and a client that resolves it again can be told two
  different answers (DNS rebinding: public for the check, 10.0.0.1 for the connection). So the
  connection goes to an address that was vetted, by number, while the URL's host name is kept
  for the ``Host`` header and for TLS: SNI and certificate verification are against the name.
- **One deadline.** A single wall-clock deadline covers resolving, connecting, the TLS handshake,
  sending and reading the answer. Per-operation socket timeouts alone do not bound a receiver
  that trickles a byte every few seconds (each read succeeds), so a watchdog timer shuts the
  socket down when the deadline passes, whatever the request is blocked in.
- **Nothing implicit.** Redirects are answers, not instructions (a 3xx is returned as is); proxy
  settings from the environment are ignored; credentials in the URL are not sent.

Errors carry client-safe reasons (never the URL, which can hold a token): ``DestinationRefused``
(policy; ``Unresolvable`` when the name does not resolve, which may be temporary),
``DeadlineExceeded`` and ``DeliveryFailed`` (refused connection, TLS failure, malformed answer).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi

MAX_URL_LENGTH = 2048
#: Bytes of the answer's body read at most (a callback needs only the status).
MAX_ANSWER_BYTES = 64 * 1024
#: How long the API waits for a callback URL's name to resolve while validating a request.
SUBMIT_RESOLVE_SECONDS = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``host -> addresses``: the system resolver, or a stand-in in tests.
Resolver = Callable[[str], Iterable[str]]

#: Refused whatever ``is_global`` says (its answers differ across Python versions and some of
#: these, NAT64 and 6to4 among them, are "global" while reaching IPv4 hosts behind our back).
REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # CGNAT
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "240.0.0.0/4",  # reserved, and 255.255.255.255
        "::/96",  # IPv4-compatible (deprecated), and ::
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local use
        "100::/64",  # discard
        "2001::/32",  # Teredo
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "fec0::/10",  # site-local (deprecated)
    )
)


class OutboundError(Exception):
    """A request that could not be made or completed; ``str()`` is safe to show and to store."""


class DestinationRefused(OutboundError, ValueError):
    """The URL or an address its host resolves to is not one we call."""


class Unresolvable(DestinationRefused):
    """The host does not resolve (now): refused at submit, retried at delivery."""


class DeadlineExceeded(OutboundError):
    def __init__(self) -> None:
        super().__init__("deadline exceeded")


class DeliveryFailed(OutboundError):
    """Connection refused or reset, TLS failure, or an answer that is not HTTP."""


@dataclass(frozen=True)
class Policy:
    allow_loopback: bool = False
    require_https: bool = False

    @classmethod
    def for_settings(cls, settings: Any) -> Policy:
        """Production: https only, never loopback. Elsewhere: as ``ALLOW_LOOPBACK_CALLBACKS`` says."""
        return cls(
            allow_loopback=bool(settings.allow_loopback_callbacks) and not settings.is_production,
            require_https=settings.is_production,
        )


@dataclass(frozen=True)
class Destination:
    """A vetted URL: where to connect (``addresses``) and what to call it (``host``)."""

    scheme: str
    host: str
    port: int
    target: str  # path and query
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes  # at most ``max_body`` bytes


def acceptable(address: IPAddress, *, allow_loopback: bool) -> bool:
    if address.is_loopback:
        return allow_loopback
    if any(address in network for network in REFUSED_NETWORKS if network.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def system_resolver(host: str) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


def _resolve(resolver: Resolver, host: str, timeout: float | None) -> list[str]:
    """``resolver(host)``, given up after ``timeout`` (getaddrinfo itself cannot be interrupted)."""
    try:
        return [str(ipaddress.ip_address(host))]  # a literal needs no resolver
    except ValueError:
        pass
    if timeout is None:
        return list(resolver(host))
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = list(resolver(host))
        except BaseException as exc:  # handed back to the waiting thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="outbound-resolve", daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    if thread.is_alive():
        raise DeadlineExceeded()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]


def vet(url: str, policy: Policy, *, resolver: Resolver = system_resolver, timeout: float | None = None) -> Destination:
    """Check ``url`` against ``policy`` and resolve its host once; raise ``DestinationRefused``."""
    if len(url) > MAX_URL_LENGTH:
        raise DestinationRefused(f"must be at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused("must be an http or https URL")
    if policy.require_https and parts.scheme != "https":
        raise DestinationRefused("must be an https URL")
    host = parts.hostname
    if not host:
        raise DestinationRefused("must name a host")
    try:
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused("has an invalid port") from exc
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    elif port == 0:
        raise DestinationRefused("has an invalid port")
    try:
        answers = _resolve(resolver, host, timeout)
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(a.split("%", 1)[0]) for a in answers))
    except DeadlineExceeded:
        raise
    except (OSError, UnicodeError, ValueError) as exc:
        raise Unresolvable("host does not resolve") from exc
    if not addresses:
        raise Unresolvable("host does not resolve")
    for address in addresses:
        if not acceptable(address, allow_loopback=policy.allow_loopback):
            raise DestinationRefused("resolves to a private, loopback or link-local address")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, host, port, target, addresses)


def check_callback_url(
    url: str, *, allow_loopback: bool, require_https: bool = False, resolver: Resolver = system_resolver
) -> None:
    """Raise ``DestinationRefused`` with a client-safe reason if ``url`` may not be called."""
    try:
        vet(url, Policy(allow_loopback, require_https), resolver=resolver, timeout=SUBMIT_RESOLVE_SECONDS)
    except DeadlineExceeded as exc:
        raise Unresolvable("host did not resolve in time") from exc


class _Watchdog:
    """Shuts the watched socket down at the deadline, unblocking whatever operation waits on it.

    It keeps a duplicate of the socket's descriptor: ``shutdown`` acts on the connection, not the
    descriptor, so it also reaches the socket after TLS has wrapped (and taken over) the original.
    """

    def __init__(self, seconds: float) -> None:
        self.ends_at = time.monotonic() + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._guard: socket.socket | None = None
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.ends_at - time.monotonic()
        if left <= 0 or self.fired:
            raise DeadlineExceeded()
        return left

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._release()
            if self.fired:
                raise DeadlineExceeded()
            self._guard = sock.dup()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._guard is not None:
                # Not connected yet: nothing to shut down, the connect timeout is the remaining time.
                with contextlib.suppress(OSError):
                    self._guard.shutdown(socket.SHUT_RDWR)

    def _release(self) -> None:
        if self._guard is not None:
            self._guard.close()
            self._guard = None

    def stop(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._release()


class _PinnedConnection(http.client.HTTPConnection):
    """http.client over a socket we connected ourselves; ``host`` is only the name we send."""

    def __init__(self, host: str, port: int, sock: socket.socket, default_port: int) -> None:
        super().__init__(host, port)
        self.default_port = default_port  # so Host carries no port when the URL had none
        self._pinned = sock

    def connect(self) -> None:
        self.sock = self._pinned


def _connect(destination: Destination, watchdog: _Watchdog) -> socket.socket:
    failure: OSError | None = None
    for address in destination.addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            watchdog.watch(sock)
            sock.settimeout(watchdog.remaining())
            sock.connect((str(address), destination.port))
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
            watchdog.remaining()  # past the deadline: stop trying further addresses
        except BaseException:
            sock.close()
            raise
    raise DeliveryFailed("could not connect") from failure


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle or certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context  # CERT_REQUIRED and check_hostname: verification against the URL's host name


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    deadline: float,
    policy: Policy,
    resolver: Resolver = system_resolver,
    ca_bundle: str | None = None,
    max_body: int = MAX_ANSWER_BYTES,
) -> Answer:
    """POST ``body`` to ``url`` within ``deadline`` seconds, connected to a vetted address.

    ``ca_bundle`` is a PEM file of trusted authorities (default: certifi's Mozilla bundle).
    Raises ``DestinationRefused``, ``DeadlineExceeded`` or ``DeliveryFailed``.
    """
    watchdog = _Watchdog(deadline)
    sock: socket.socket | None = None
    connection: _PinnedConnection | None = None
    try:
        destination = vet(url, policy, resolver=resolver, timeout=watchdog.remaining())
        sock = _connect(destination, watchdog)
        if destination.scheme == "https":
            sock.settimeout(watchdog.remaining())
            sock = _tls_context(ca_bundle).wrap_socket(sock, server_hostname=destination.host)
        connection = _PinnedConnection(
            destination.host, destination.port, sock, 443 if destination.scheme == "https" else 80
        )
        sock.settimeout(watchdog.remaining())
        connection.request("POST", destination.target, body=body, headers=dict(headers))
        response = connection.getresponse()
        data = response.read(max_body)
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except OutboundError:
        if watchdog.fired:
            raise DeadlineExceeded() from None
        raise
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryFailed("TLS certificate not valid for the host") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if watchdog.fired or isinstance(exc, TimeoutError):
            raise DeadlineExceeded() from None
        if isinstance(exc, ssl.SSLError):
            raise DeliveryFailed("TLS handshake failed") from exc
        if isinstance(exc, http.client.HTTPException):
            raise DeliveryFailed("the answer is not valid HTTP") from exc
        raise DeliveryFailed("connection failed") from exc
    finally:
        watchdog.stop()
        if connection is not None:
            connection.close()
        elif sock is not None:
            sock.close()
