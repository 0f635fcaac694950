"""Specification of the AES-256-GCM keyring that encrypts personal data at rest."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.security.keyring import FORMAT_VERSION, NONCE_BYTES, DecryptionError, Keyring, ciphertext_prefix

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(64, 96))
AD = "users.email"

ring = Keyring([("k1", OLD_KEY)])

texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)


def rotated_ring() -> Keyring:
    """The ring after rotation: a new primary key, the old one kept for reading."""
    return Keyring([("k2", NEW_KEY), ("k1", OLD_KEY)])


@given(plaintext=st.binary(max_size=512), associated_data=texts)
def test_round_trip_returns_the_plaintext_for_any_bytes_and_associated_data(plaintext, associated_data):
    assert ring.decrypt(ring.encrypt(plaintext, associated_data), associated_data) == plaintext


def test_ciphertext_does_not_contain_the_plaintext():
    plaintext = b"ana.perez@example.cl"
    assert plaintext not in ring.encrypt(plaintext, AD)


def test_ciphertext_embeds_the_key_id():
    assert ring.key_id_of(ring.encrypt(b"x", AD)) == "k1"


def test_the_first_key_encrypts():
    blob = rotated_ring().encrypt(b"x", AD)
    assert rotated_ring().key_id_of(blob) == "k2"
    assert Keyring([("k2", NEW_KEY)]).decrypt(blob, AD) == b"x"
    with pytest.raises(DecryptionError):
        Keyring([("k1", OLD_KEY)]).decrypt(blob, AD)


def test_older_keys_still_decrypt_after_rotation():
    old_blob = Keyring([("k1", OLD_KEY)]).encrypt(b"written before rotation", AD)
    assert rotated_ring().decrypt(old_blob, AD) == b"written before rotation"


def test_needs_rotation_only_for_ciphertexts_under_an_older_key():
    new = rotated_ring()
    assert new.needs_rotation(ring.encrypt(b"x", AD)) is True
    assert new.needs_rotation(new.encrypt(b"x", AD)) is False


def test_a_key_id_that_extends_the_primary_one_still_needs_rotation():
    # The id's length is part of the prefix: "k10" is not "k1" followed by data.
    primary, longer = Keyring([("k1", NEW_KEY)]), Keyring([("k10", OLD_KEY)])
    assert primary.needs_rotation(longer.encrypt(b"x", AD)) is True
    assert longer.needs_rotation(primary.encrypt(b"x", AD)) is True


def test_every_ciphertext_starts_with_its_keys_prefix():
    assert ciphertext_prefix("k2") == bytes([FORMAT_VERSION, 2]) + b"k2"
    assert rotated_ring().encrypt(b"x", AD).startswith(ciphertext_prefix("k2"))
    assert rotated_ring().primary_prefix == ciphertext_prefix("k2")


def test_needs_rotation_refuses_what_is_not_a_ciphertext():
    with pytest.raises(DecryptionError):
        rotated_ring().needs_rotation(b"plain text, never encrypted")


def test_from_spec_makes_the_first_listed_key_primary():
    spec = f"k2:{base64.b64encode(NEW_KEY).decode()},k1:{base64.b64encode(OLD_KEY).decode()}"
    keyring = Keyring.from_spec(spec)
    assert keyring.primary_id == "k2"
    assert keyring.key_ids == ("k2", "k1")
    assert keyring.decrypt(ring.encrypt(b"old", AD), AD) == b"old"


def test_empty_keyring_is_refused():
    with pytest.raises(ValueError):
        Keyring([])


def test_two_encryptions_of_the_same_value_differ():
    first, second = ring.encrypt(b"same", AD), ring.encrypt(b"same", AD)
    assert first != second
    header = 2 + len("k1")
    assert first[header : header + NONCE_BYTES] != second[header : header + NONCE_BYTES]


@given(plaintext=st.binary(max_size=64), data=st.data())
def test_tampered_ciphertext_raises(plaintext, data):
    blob = bytearray(ring.encrypt(plaintext, AD))
    index = data.draw(st.integers(min_value=0, max_value=len(blob) - 1), label="index")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="mask")
    blob[index] ^= mask
    with pytest.raises(DecryptionError):
        ring.decrypt(bytes(blob), AD)


@given(plaintext=st.binary(max_size=64), data=st.data())
def test_tampered_ciphertext_raises_in_a_multi_key_ring(plaintext, data):
    keyring = Keyring([("k1", OLD_KEY), ("k2", NEW_KEY), ("k3", bytes(32))])
    blob = bytearray(keyring.encrypt(plaintext, AD))
    index = data.draw(st.integers(min_value=0, max_value=len(blob) - 1), label="index")
    blob[index] ^= data.draw(st.integers(min_value=1, max_value=255), label="mask")
    with pytest.raises(DecryptionError):
        keyring.decrypt(bytes(blob), AD)


@given(plaintext=st.binary(max_size=64), written_for=texts, read_as=texts)
def test_wrong_associated_data_raises(plaintext, written_for, read_as):
    if written_for == read_as:
        read_as += "x"
    blob = ring.encrypt(plaintext, written_for)
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, read_as)


def test_ciphertext_copied_to_another_column_raises():
    blob = ring.encrypt(b"+56912345678", "users.phone")
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, "users.email")


def test_unknown_key_id_raises():
    blob = Keyring([("retired", OLD_KEY)]).encrypt(b"x", AD)
    with pytest.raises(DecryptionError, match="unknown key id"):
        rotated_ring().decrypt(blob, AD)


def test_same_key_id_with_different_key_material_raises():
    blob = Keyring([("k1", NEW_KEY)]).encrypt(b"x", AD)
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, AD)


@given(plaintext=st.binary(max_size=64), data=st.data())
def test_truncated_ciphertext_raises(plaintext, data):
    blob = ring.encrypt(plaintext, AD)
    length = data.draw(st.integers(min_value=0, max_value=len(blob) - 1), label="length")
    with pytest.raises(DecryptionError):
        ring.decrypt(blob[:length], AD)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x02\x02k1" + bytes(40), b"not a ciphertext at all, really"])
def test_foreign_bytes_raise(blob):
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, AD)


def test_key_id_of_garbage_raises():
    with pytest.raises(DecryptionError):
        ring.key_id_of(b"\x00garbage")
