"""KeyRing: cookie tokens, sealing of session data, and row keys.

These tests need no database: KeyRing does no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest

from flask_portal_session import crypto
from flask_portal_session.crypto import KeyRing, new_session_id, row_key

SECRET = "crypto-test-secret-0123456789-abcdef"
OLD_SECRET = "crypto-test-old-secret-0123456789-xyz"
OLDER_SECRET = "crypto-test-older-secret-0123456789-q"

#: Characters of the base64url alphabet, in the order of their 6-bit values.
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def encode(raw: bytes) -> str:
    """Return base64url without padding, the cookie token's text form."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(token: str) -> bytes:
    """Return the bytes of a base64url token written without padding."""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing(SECRET)


@pytest.fixture
def session_id() -> bytes:
    return new_session_id()


# -- tokens -----------------------------------------------------------------


def test_token_round_trip(ring: KeyRing, session_id: bytes) -> None:
    token = ring.encode_token(session_id)

    assert ring.decode_token(token) == (session_id, 0)


def test_token_is_base64url_without_padding(ring: KeyRing, session_id: bytes) -> None:
    token = ring.encode_token(session_id)

    assert set(token) <= set(ALPHABET)
    assert "=" not in token


def test_token_layout_is_version_id_tag(ring: KeyRing, session_id: bytes) -> None:
    raw = decode(ring.encode_token(session_id))

    assert raw[0] == crypto.TOKEN_VERSION
    assert raw[1:33] == session_id
    assert len(raw) - 33 >= 16


def test_session_ids_are_32_random_bytes() -> None:
    ids = {new_session_id() for _ in range(100)}

    assert len(ids) == 100
    assert {len(value) for value in ids} == {32}


def test_token_every_byte_bit_flip_rejected(ring: KeyRing, session_id: bytes) -> None:
    raw = decode(ring.encode_token(session_id))
    accepted = []
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            if ring.decode_token(encode(bytes(flipped))) is not None:
                accepted.append((index, bit))

    assert accepted == []


def test_token_every_character_bit_flip_rejected(ring: KeyRing, session_id: bytes) -> None:
    # Flips bits of the cookie text itself, as a damaged or edited cookie would
    # arrive. The last character carries 4 bits that base64 leaves unused, so a
    # decoder that ignores them accepts a second spelling of the same token.
    token = ring.encode_token(session_id)
    accepted = []
    for index in range(len(token)):
        for bit in range(7):
            character = chr(ord(token[index]) ^ (1 << bit))
            flipped = token[:index] + character + token[index + 1 :]
            if ring.decode_token(flipped) is not None:
                accepted.append((index, token[index], character))

    assert accepted == []


def test_token_noncanonical_spelling_rejected(ring: KeyRing, session_id: bytes) -> None:
    # The last character's low 4 bits are padding and must be zero. Setting
    # one gives a second cookie value that decodes to the same bytes.
    token = ring.encode_token(session_id)
    last = ALPHABET.index(token[-1])
    variant = token[:-1] + ALPHABET[last | 0x01]

    assert decode(variant) == decode(token)
    assert ring.decode_token(variant) is None


def test_token_truncated_rejected(ring: KeyRing, session_id: bytes) -> None:
    token = ring.encode_token(session_id)

    for length in range(len(token)):
        assert ring.decode_token(token[:length]) is None, length


def test_token_extended_rejected(ring: KeyRing, session_id: bytes) -> None:
    token = ring.encode_token(session_id)

    assert ring.decode_token(token + "A") is None
    assert ring.decode_token(token + "AAAA") is None
    assert ring.decode_token(token + "==") is None
    assert ring.decode_token(token + token) is None


def test_token_extra_raw_bytes_rejected(ring: KeyRing, session_id: bytes) -> None:
    raw = decode(ring.encode_token(session_id))

    assert ring.decode_token(encode(raw + b"\x00")) is None
    assert ring.decode_token(encode(raw[:-1])) is None


def test_token_empty_rejected(ring: KeyRing) -> None:
    assert ring.decode_token("") is None


@pytest.mark.parametrize(
    "token",
    [
        "!" * 66,
        "é" * 66,
        "\x00" * 66,
        " " * 66,
        "A" * 65 + "=",
        "A" * 65 + "+",
        "A" * 65 + "/",
        "not a token",
    ],
)
def test_token_non_base64_rejected(ring: KeyRing, token: str) -> None:
    assert ring.decode_token(token) is None


def test_token_all_zero_bytes_rejected(ring: KeyRing) -> None:
    assert ring.decode_token("A" * 66) is None


def test_token_standard_base64_alphabet_rejected(ring: KeyRing) -> None:
    # Spell tokens that contain "-" or "_" with "+" and "/" instead.
    tokens = [ring.encode_token(new_session_id()) for _ in range(50)]
    urlsafe = [token for token in tokens if "-" in token or "_" in token]
    standard = [token.replace("-", "+").replace("_", "/") for token in urlsafe]

    assert urlsafe
    assert [ring.decode_token(token) for token in standard] == [None] * len(standard)


def test_token_wrong_version_rejected(ring: KeyRing, session_id: bytes) -> None:
    # The body has version 2 and a valid tag, so only the version check can
    # reject it. NOTE: the tag is built with the ring's private key.
    body = bytes([crypto.TOKEN_VERSION + 1]) + session_id
    tag = hmac.digest(ring._keys[0].tag_key, body, "sha256")[: crypto.TAG_BYTES]

    assert ring.decode_token(encode(body + tag)) is None


def test_token_version_swapped_breaks_tag(ring: KeyRing, session_id: bytes) -> None:
    raw = bytearray(decode(ring.encode_token(session_id)))
    raw[0] = 0

    assert ring.decode_token(encode(bytes(raw))) is None


def test_token_other_secret_rejected(session_id: bytes) -> None:
    token = KeyRing(OLD_SECRET).encode_token(session_id)

    assert KeyRing(SECRET).decode_token(token) is None


def test_token_fallback_secret_index_one(session_id: bytes) -> None:
    token = KeyRing(OLD_SECRET).encode_token(session_id)
    ring = KeyRing(SECRET, [OLD_SECRET])

    assert ring.decode_token(token) == (session_id, 1)


def test_token_second_fallback_index_two(session_id: bytes) -> None:
    token = KeyRing(OLDER_SECRET).encode_token(session_id)
    ring = KeyRing(SECRET, [OLD_SECRET, OLDER_SECRET])

    assert ring.decode_token(token) == (session_id, 2)


def test_token_encoded_with_current_secret(session_id: bytes) -> None:
    ring = KeyRing(SECRET, [OLD_SECRET])
    token = ring.encode_token(session_id)

    assert ring.decode_token(token) == (session_id, 0)
    assert KeyRing(SECRET).decode_token(token) == (session_id, 0)
    assert KeyRing(OLD_SECRET).decode_token(token) is None


def test_keyring_empty_secret_raises() -> None:
    with pytest.raises(ValueError, match="secret"):
        KeyRing("")


# -- sealing ----------------------------------------------------------------


def test_seal_open_round_trip(ring: KeyRing, session_id: bytes) -> None:
    key = row_key(session_id)
    plaintext = b'{"cart": [1, 2, 3]}'

    blob, key_id = ring.seal(plaintext, key)

    assert ring.open(blob, key, key_id) == plaintext


def test_seal_empty_plaintext_round_trip(ring: KeyRing, session_id: bytes) -> None:
    key = row_key(session_id)

    blob, key_id = ring.seal(b"", key)

    assert ring.open(blob, key, key_id) == b""


def test_seal_uses_current_key_id(session_id: bytes) -> None:
    ring = KeyRing(SECRET, [OLD_SECRET])

    _, key_id = ring.seal(b"data", row_key(session_id))

    assert key_id == ring.current_key_id
    assert key_id == KeyRing(SECRET).current_key_id
    assert key_id != KeyRing(OLD_SECRET).current_key_id


def test_seal_hides_plaintext(ring: KeyRing, session_id: bytes) -> None:
    plaintext = b"developer-email@example.test"

    blob, _ = ring.seal(plaintext, row_key(session_id))

    assert plaintext not in blob


def test_seal_fresh_nonce_per_write(ring: KeyRing, session_id: bytes) -> None:
    key = row_key(session_id)

    first, _ = ring.seal(b"same data", key)
    second, _ = ring.seal(b"same data", key)

    assert first != second


def test_open_other_row_key_fails(ring: KeyRing) -> None:
    key = row_key(new_session_id())
    other_key = row_key(new_session_id())
    blob, key_id = ring.seal(b"data", key)

    assert ring.open(blob, other_key, key_id) is None


def test_open_every_flipped_byte_fails(ring: KeyRing, session_id: bytes) -> None:
    key = row_key(session_id)
    blob, key_id = ring.seal(b"some session data", key)
    opened = []
    for index in range(len(blob)):
        flipped = bytearray(blob)
        flipped[index] ^= 0x01
        if ring.open(bytes(flipped), key, key_id) is not None:
            opened.append(index)

    assert opened == []


def test_open_truncated_blob_fails(ring: KeyRing, session_id: bytes) -> None:
    key = row_key(session_id)
    blob, key_id = ring.seal(b"some session data", key)

    for length in range(len(blob)):
        assert ring.open(blob[:length], key, key_id) is None, length


def test_open_unknown_key_id_fails(ring: KeyRing, session_id: bytes) -> None:
    key = row_key(session_id)
    blob, _ = ring.seal(b"data", key)

    assert ring.open(blob, key, "0" * 16) is None
    assert ring.open(blob, key, "") is None


def test_open_other_secret_fails(session_id: bytes) -> None:
    key = row_key(session_id)
    other = KeyRing(OLD_SECRET)
    blob, key_id = other.seal(b"data", key)

    assert KeyRing(SECRET).open(blob, key, key_id) is None


def test_open_key_id_of_other_secret_fails(session_id: bytes) -> None:
    # The blob was sealed with the current secret but is labelled with the
    # fallback's key id, so the fallback key is tried and must fail.
    ring = KeyRing(SECRET, [OLD_SECRET])
    key = row_key(session_id)
    blob, _ = ring.seal(b"data", key)

    assert ring.open(blob, key, KeyRing(OLD_SECRET).current_key_id) is None


def test_open_fallback_sealed_blob(session_id: bytes) -> None:
    key = row_key(session_id)
    blob, key_id = KeyRing(OLD_SECRET).seal(b"old data", key)
    ring = KeyRing(SECRET, [OLD_SECRET])

    assert ring.open(blob, key, key_id) == b"old data"


def test_keyring_knows_fallback_key_ids() -> None:
    ring = KeyRing(SECRET, [OLD_SECRET])

    assert ring.knows_key_id(KeyRing(SECRET).current_key_id)
    assert ring.knows_key_id(KeyRing(OLD_SECRET).current_key_id)
    assert not ring.knows_key_id(KeyRing(OLDER_SECRET).current_key_id)


# -- row keys -----------------------------------------------------------------


def test_row_key_is_sha256_hex(session_id: bytes) -> None:
    assert row_key(session_id) == hashlib.sha256(session_id).hexdigest()


def test_row_key_is_64_ascii_hex(session_id: bytes) -> None:
    key = row_key(session_id)

    assert len(key) == 64
    assert set(key) <= set("0123456789abcdef")


def test_row_key_hides_session_id(ring: KeyRing, session_id: bytes) -> None:
    key = row_key(session_id)

    assert session_id.hex() not in key
    assert encode(session_id) not in key
    assert ring.encode_token(session_id) not in key


@pytest.mark.parametrize("key_length", [0, 1, 32, 64, 65, 200])
def test_cookie_tagger_matches_hmac_sha256(key_length: int) -> None:
    for body_length in (0, 1, 33, 64, 65, 300):
        key = os.urandom(key_length)
        body = os.urandom(body_length)

        expected = hmac.digest(key, body, "sha256")[: crypto.TAG_BYTES]

        assert crypto.CookieTagger(key).tag(body) == expected


def test_cookie_tagger_reusable_for_many_bodies() -> None:
    tagger = crypto.CookieTagger(b"k" * 32)
    bodies = [os.urandom(33) for _ in range(20)]

    tags = [tagger.tag(body) for body in bodies]

    assert tags == [hmac.digest(b"k" * 32, body, "sha256")[: crypto.TAG_BYTES] for body in bodies]
