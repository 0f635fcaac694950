"""Which callback destinations we are willing to POST to (SSRF protection).

A callback URL must be http(s) with a host that resolves only to globally routable addresses:
private, link-local (cloud metadata at 169.254.169.254), CGNAT, multicast and reserved ranges are
refused. Loopback is allowed only outside production so tests and local receivers work. The check
runs when a job is submitted and again right before every delivery, since DNS can change.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


class DestinationRefused(ValueError):
    pass


def _acceptable(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not address.is_multicast


def check_callback_url(url: str, *, allow_loopback: bool) -> None:
    """Raise ``DestinationRefused`` with a client-safe reason if ``url`` may not be called."""
    if len(url) > MAX_URL_LENGTH:
        raise DestinationRefused(f"must be at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused("must be an http or https URL")
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
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused("host does not resolve") from exc
    addresses = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
    if not addresses:
        raise DestinationRefused("host does not resolve")
    for address in addresses:
        if not _acceptable(address, allow_loopback):
            raise DestinationRefused("resolves to a private, loopback or link-local address")
