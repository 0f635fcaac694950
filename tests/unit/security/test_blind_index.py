"""Specification of HMAC blind indexes: equality search over encrypted identity values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.security import blind_index
from app.security.blind_index import BlindIndexer

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

indexer = BlindIndexer(KEY)

local_parts = st.from_regex(r"[A-Za-z0-9._+-]{1,20}", fullmatch=True)
domains = st.from_regex(r"[A-Za-z0-9-]{1,15}\.[A-Za-z]{2,6}", fullmatch=True)
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
padding = st.text(alphabet=" \t\n", max_size=3)


def test_index_is_a_sha256_sized_digest():
    assert len(indexer.index("email", "ana@example.cl")) == 32


def test_index_is_deterministic_for_the_same_key():
    assert BlindIndexer(KEY).index("email", "ana@example.cl") == BlindIndexer(KEY).index("email", "ana@example.cl")


def test_same_email_in_different_case_and_whitespace_gives_the_same_index():
    assert indexer.index("email", "  Ana@Example.CL \n") == indexer.index("email", "ana@example.cl")


@given(email=emails, before=padding, after=padding, data=st.data())
def test_any_casing_and_padding_of_an_email_gives_the_same_index(email, before, after, data):
    recased = "".join(c.upper() if data.draw(st.booleans()) else c.lower() for c in email)
    assert indexer.index("email", before + recased + after) == indexer.index("email", email.lower())


def test_different_emails_give_different_indexes():
    assert indexer.index("email", "ana@example.cl") != indexer.index("email", "ana@example.com")


@given(email=emails, scope_a=st.text(max_size=36), scope_b=st.text(max_size=36))
def test_different_scope_gives_a_different_index(email, scope_a, scope_b):
    if scope_a == scope_b:
        scope_b += "-other"
    assert indexer.index("email", email, scope=scope_a) != indexer.index("email", email, scope=scope_b)


def test_default_scope_differs_from_a_named_scope():
    assert indexer.index("email", "ana@example.cl") != indexer.index("email", "ana@example.cl", scope="building-1")


def test_different_purpose_gives_a_different_index(monkeypatch):
    monkeypatch.setitem(blind_index.NORMALIZERS, "username", lambda value: value.strip().lower())
    assert indexer.index("email", "ana@example.cl") != indexer.index("username", "ana@example.cl")


def test_unknown_purpose_is_refused():
    with pytest.raises(KeyError):
        indexer.index("no-such-purpose", "ana@example.cl")


def test_different_key_gives_a_different_index():
    assert BlindIndexer(OTHER_KEY).index("email", "ana@example.cl") != indexer.index("email", "ana@example.cl")


@pytest.mark.parametrize("length", [0, 16, 31])
def test_short_key_is_refused(length):
    with pytest.raises(ValueError, match="at least 32 bytes"):
        BlindIndexer(bytes(length))


def test_longer_key_is_accepted():
    assert len(BlindIndexer(bytes(64)).index("email", "ana@example.cl")) == 32
