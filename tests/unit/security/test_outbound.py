"""Specification of outbound destination checks (SSRF protection).

Only IP literals, ``localhost`` (answered by /etc/hosts), a name under the reserved ``.invalid``
TLD and names answered by an injected resolver are used, so no query leaves the machine for a
real name. What happens on the wire (pinning, TLS, deadline) is in
tests/integration/security/test_outbound.py.
"""

from __future__ import annotations

import pytest

from app.security.outbound import (
    MAX_URL_LENGTH,
    DestinationRefused,
    Policy,
    Unresolvable,
    check_callback_url,
    vet,
)
from config.settings import Settings

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
    # Addresses that carry or translate to IPv4 reach an IPv4 host the v4 checks never saw.
    pytest.param("http://[64:ff9b::a00:1]/hook", id="nat64-of-private"),
    pytest.param("http://[64:ff9b::5db8:d822]/hook", id="nat64-of-public"),
    pytest.param("http://[64:ff9b:1::1]/hook", id="nat64-local-use"),
    pytest.param("http://[2002:a00:1::1]/hook", id="6to4-of-private"),
    pytest.param("http://[2002:5db8:d822::1]/hook", id="6to4-of-public"),
    pytest.param("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", id="teredo"),
    pytest.param("http://[::ffff:93.184.216.34]/hook", id="mapped-public"),
    pytest.param("http://[::93.184.216.34]/hook", id="compatible-public"),
    pytest.param("http://[::10.0.0.1]/hook", id="compatible-private"),
    pytest.param("http://[2001:db8::1]/hook", id="documentation-v6"),
    pytest.param("http://[100::1]/hook", id="discard-v6"),
    pytest.param("http://[fec0::1]/hook", id="site-local-v6"),
    pytest.param("http://0.1.2.3/hook", id="this-network"),
    pytest.param("http://192.0.0.1/hook", id="ietf-protocol-assignments"),
    pytest.param("http://192.0.2.1/hook", id="test-net-1"),
    pytest.param("http://198.18.0.1/hook", id="benchmarking"),
    pytest.param("http://198.51.100.1/hook", id="test-net-2"),
    pytest.param("http://203.0.113.1/hook", id="test-net-3"),
    pytest.param("http://192.88.99.1/hook", id="6to4-relay-anycast"),
    pytest.param("http://240.0.0.1/hook", id="reserved-240"),
    # IPv4-mapped loopback is refused even where loopback is allowed: nothing needs it.
    pytest.param("http://[::ffff:127.0.0.1]/hook", id="mapped-loopback"),
]

LOOPBACK = [
    pytest.param("http://127.0.0.1:8080/hook", id="v4"),
    pytest.param("http://[::1]:8080/hook", id="v6"),
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


def test_https_is_required_when_the_policy_says_so():
    with pytest.raises(DestinationRefused, match="must be an https URL"):
        check_callback_url(f"http://{PUBLIC_IP}/hook", allow_loopback=False, require_https=True)
    check_callback_url(f"https://{PUBLIC_IP}/hook", allow_loopback=False, require_https=True)


def settings_for(profile: str) -> Settings:
    base = Settings.from_env(
        {
            "APP_ENV": "test",
            "DATABASE_URL": "postgresql://db.invalid/x",
            "REDIS_URL": "redis://redis.invalid/0",
            "SECRET_KEY": "k" * 40,
            "ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",
            "BLIND_INDEX_KEY": "B" * 43 + "=",
        }
    )
    return base.model_copy(update={"env": profile, "allow_loopback_callbacks": profile != "production"})


def test_production_requires_https_and_refuses_loopback():
    assert Policy.for_settings(settings_for("production")) == Policy(allow_loopback=False, require_https=True)


@pytest.mark.parametrize("profile", ["development", "test"])
def test_other_profiles_allow_http_and_loopback(profile):
    assert Policy.for_settings(settings_for(profile)) == Policy(allow_loopback=True, require_https=False)


class Resolver:
    """A resolver whose answers the test controls, counting how often it is asked."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


def test_vet_resolves_once_and_keeps_the_host_name_and_every_vetted_address():
    resolver = Resolver([PUBLIC_IP, "2606:4700:4700::1111"])
    destination = vet("https://receiver.example/hooks/a?x=1#frag", Policy(), resolver=resolver)
    assert resolver.calls == ["receiver.example"]
    assert (destination.scheme, destination.host, destination.port) == ("https", "receiver.example", 443)
    assert destination.target == "/hooks/a?x=1"
    assert [str(a) for a in destination.addresses] == [PUBLIC_IP, "2606:4700:4700::1111"]


def test_vet_defaults_the_path_and_the_http_port():
    destination = vet(f"http://{PUBLIC_IP}", Policy(), resolver=Resolver([PUBLIC_IP]))
    assert (destination.port, destination.target) == (80, "/")


@pytest.mark.parametrize("private", ["10.0.0.1", "169.254.169.254", "64:ff9b::a9fe:a9fe", "::ffff:10.0.0.1"])
def test_one_private_answer_among_public_ones_refuses_the_name(private):
    # A name answering both lets an attacker pick the private one at connect time: refuse it.
    with pytest.raises(DestinationRefused, match="private"):
        vet("https://receiver.example/hook", Policy(), resolver=Resolver([PUBLIC_IP, private]))


def test_a_name_with_no_answer_is_unresolvable():
    with pytest.raises(Unresolvable, match="does not resolve"):
        vet("https://receiver.example/hook", Policy(), resolver=Resolver([]))


def test_a_resolver_failure_is_unresolvable():
    def failing(host: str) -> list[str]:
        raise OSError("name resolution failed")

    with pytest.raises(Unresolvable):
        vet("https://receiver.example/hook", Policy(), resolver=failing)


def test_unresolvable_is_a_destination_refused():
    # At submit time both answer 422; at delivery time only an unresolvable name is retried.
    assert issubclass(Unresolvable, DestinationRefused)
