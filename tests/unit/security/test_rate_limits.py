"""Specification of the per-address identity: an IPv4 client is its address, an IPv6 client its /64.

One IPv6 subscriber usually holds a whole /64 (often more) and can pick a fresh address from it for
every request, so counting addresses would give them 2**64 budgets.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from app.security.rate_limits import client_network

VECTORS = [
    ("192.0.2.7", "192.0.2.7"),
    ("203.0.113.255", "203.0.113.255"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2:FFFF:FFFF:FFFF:FFFF", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::9", "2001:db8:1:3::/64"),
    ("::1", "::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client seen through a dual-stack socket
    (None, "unknown"),
    ("", "unknown"),
    ("not an address", "unknown"),
]


def test_vectors():
    for address, expected in VECTORS:
        assert client_network(address) == expected, address


ipv6 = st.integers(min_value=0, max_value=2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
host_bits = st.integers(min_value=0, max_value=2**64 - 1)


@given(ipv6, host_bits)
def test_every_address_of_a_slash_64_is_one_client(address, host):
    network = int(ipaddress.IPv6Address(address)) >> 64 << 64
    sibling = str(ipaddress.IPv6Address(network | host))
    if not ipaddress.IPv6Address(address).ipv4_mapped:
        assert client_network(address) == client_network(sibling)


@given(ipv6, ipv6)
def test_addresses_of_different_slash_64s_are_different_clients(first, second):
    a, b = ipaddress.IPv6Address(first), ipaddress.IPv6Address(second)
    if int(a) >> 64 != int(b) >> 64 and not a.ipv4_mapped and not b.ipv4_mapped:
        assert client_network(first) != client_network(second)


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=0, max_value=2**32 - 1))
def test_ipv4_addresses_are_counted_one_by_one(first, second):
    a, b = str(ipaddress.IPv4Address(first)), str(ipaddress.IPv4Address(second))
    assert (client_network(a) == client_network(b)) == (first == second)
