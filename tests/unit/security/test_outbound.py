"""Specification of callback destination checks (SSRF protection).

Only IP literals, ``localhost`` (answered by /etc/hosts) and a name under the reserved
``.invalid`` TLD are used, so no query leaves the machine for a real name.
"""

from __future__ import annotations

import pytest

from app.security.outbound import MAX_URL_LENGTH, DestinationRefused, check_callback_url

PUBLIC_IP = "93.184.216.34"

PRIVATE_OR_SPECIAL = [
    pytest.param("http://10.0.0.1/hook", id="rfc1918-10"),
    pytest.param("http://192.168.1.1/hook", id="rfc1918-192.168"),
    pytest.param("http://172.16.0.1/hook", id="rfc1918-172.16"),
    pytest.param("http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
    pytest.param("http://100.64.0.1/hook", id="cgnat"),
    pytest.param("http://0.0.0.0/hook", id="unspecified-v4"),
    pytest.param("http://[::]/hook", id="unspecified-v6"),
    pytest.param("http://224.0.0.1/hook", id="multicast-v4"),
    pytest.param("http://[ff02::1]/hook", id="multicast-v6"),
    pytest.param("http://[::ffff:10.0.0.1]/hook", id="mapped-private"),
    pytest.param("http://[::ffff:169.254.169.254]/hook", id="mapped-metadata"),
    pytest.param("http://[fd00::1]/hook", id="unique-local-v6"),
    pytest.param("http://[fe80::1]/hook", id="link-local-v6"),
    pytest.param("http://255.255.255.255/hook", id="broadcast"),
]

LOOPBACK = [
    pytest.param("http://127.0.0.1:8080/hook", id="v4"),
    pytest.param("http://[::1]:8080/hook", id="v6"),
    pytest.param("http://[::ffff:127.0.0.1]/hook", id="mapped-v4"),
    pytest.param("http://localhost:8080/hook", id="localhost"),
    pytest.param("http://127.0.0.2/hook", id="other-127"),
    pytest.param("http://127.1/hook", id="short-form"),
    pytest.param("http://2130706433/hook", id="decimal-form"),
]


@pytest.mark.parametrize("url", [f"https://{PUBLIC_IP}/hook", f"http://{PUBLIC_IP}:8443/hooks?x=1"])
def test_public_ip_literal_is_accepted(url):
    check_callback_url(url, allow_loopback=False)


def test_public_ipv6_literal_is_accepted():
    check_callback_url("https://[2606:4700:4700::1111]/hook", allow_loopback=False)


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://{PUBLIC_IP}/hook",
        f"file://{PUBLIC_IP}/etc/passwd",
        f"gopher://{PUBLIC_IP}/",
        "javascript:alert(1)",
        f"//{PUBLIC_IP}/hook",
        f"{PUBLIC_IP}/hook",
    ],
)
def test_only_http_and_https_are_accepted(url):
    with pytest.raises(DestinationRefused, match="http or https"):
        check_callback_url(url, allow_loopback=True)


def test_url_without_host_is_refused():
    with pytest.raises(DestinationRefused):
        check_callback_url("http:///hook", allow_loopback=True)


@pytest.mark.parametrize("allow_loopback", [False, True])
@pytest.mark.parametrize("url", PRIVATE_OR_SPECIAL)
def test_private_link_local_cgnat_multicast_and_unspecified_addresses_are_refused(url, allow_loopback):
    with pytest.raises(DestinationRefused):
        check_callback_url(url, allow_loopback=allow_loopback)


@pytest.mark.parametrize("url", LOOPBACK)
def test_loopback_is_refused_when_not_allowed(url):
    with pytest.raises(DestinationRefused):
        check_callback_url(url, allow_loopback=False)


@pytest.mark.parametrize("url", LOOPBACK)
def test_loopback_is_accepted_when_allowed(url):
    check_callback_url(url, allow_loopback=True)


def test_unresolvable_host_is_refused():
    with pytest.raises(DestinationRefused, match="does not resolve"):
        check_callback_url("https://no-such-receiver.invalid/hook", allow_loopback=True)


def test_url_at_the_length_limit_is_accepted():
    prefix = f"https://{PUBLIC_IP}/"
    url = prefix + "a" * (MAX_URL_LENGTH - len(prefix))
    assert len(url) == MAX_URL_LENGTH
    check_callback_url(url, allow_loopback=False)


def test_over_long_url_is_refused():
    prefix = f"https://{PUBLIC_IP}/"
    url = prefix + "a" * (MAX_URL_LENGTH - len(prefix) + 1)
    with pytest.raises(DestinationRefused, match=f"at most {MAX_URL_LENGTH}"):
        check_callback_url(url, allow_loopback=False)


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "http", "8080x"])
def test_bad_port_is_refused(port):
    with pytest.raises(DestinationRefused, match="invalid port"):
        check_callback_url(f"http://{PUBLIC_IP}:{port}/hook", allow_loopback=False)


def test_port_zero_is_refused():
    # Nothing listens on port 0: such a URL can never be delivered to and must not be accepted.
    with pytest.raises(DestinationRefused):
        check_callback_url(f"http://{PUBLIC_IP}:0/hook", allow_loopback=False)


def test_destination_refused_is_a_value_error():
    assert issubclass(DestinationRefused, ValueError)
