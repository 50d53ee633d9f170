"""WeCom's message crypto: WeCom's own published test vectors, round trips, and every way a
callback is refused (signature, corp id, age, malformed)."""

import time

import pytest

from core.channels.wecom.crypto import (
    CallbackRefused,
    WeComCrypto,
    encrypted_field,
    parse_fields,
    signature,
)

# The sample of WeCom's callback documentation (developer.work.weixin.qq.com, 加解密方案).
SAMPLE = WeComCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
MESSAGE = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUp"
    "j911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue"
    "06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw"
    "+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MB"
    "H27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDB"
    "S8R07+qN+E7Q=="
)


def test_wecoms_url_verification_vector() -> None:
    assert signature("QDG6eK", "1409659589", "263014780", ECHO) == (
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    )
    echo = SAMPLE.check(
        msg_signature="5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        timestamp="1409659589",
        nonce="263014780",
        encrypted=ECHO,
        window=None,  # the sample is from 2014
    )
    assert echo == "1616140317555161061"


def test_wecoms_message_vector_decrypts_to_its_xml() -> None:
    message = SAMPLE.check(
        msg_signature="477715d11cdb4164915debcba66cb864d751f3e6",
        timestamp="1409659813",
        nonce="1372623149",
        encrypted=MESSAGE,
        window=None,
    )
    fields = parse_fields(message)
    assert (fields["Content"], fields["FromUserName"], fields["MsgId"]) == (
        "hello",
        "mycreate",
        "4561255354251345929",
    )


def test_known_vector_round_trip_with_a_fixed_random_prefix() -> None:
    plain, _ = SAMPLE.decrypt(MESSAGE)
    # The plaintext's first 16 bytes are random; with the same ones the ciphertext repeats.
    import base64

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = SAMPLE.key
    raw = base64.b64decode(MESSAGE)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    prefix = (decryptor.update(raw) + decryptor.finalize())[:16]
    assert SAMPLE.encrypt(plain, random_prefix=prefix) == MESSAGE


@pytest.mark.parametrize("text", ["", "a", "x" * 11, "好" * 7, "y" * 32, "<xml>" + "z" * 5000])
def test_round_trip_pads_to_32_bytes(text: str) -> None:
    import base64

    encrypted = SAMPLE.encrypt(text)
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert SAMPLE.decrypt(encrypted) == (text, "wx5823bf96d3bd56c7")


def _signed(crypto: WeComCrypto, text: str, ts: int):
    encrypted = crypto.encrypt(text)
    return encrypted, signature(crypto.token, str(ts), "n1", encrypted)


def test_refusals() -> None:
    now = int(time.time())
    encrypted, sig = _signed(SAMPLE, "<xml/>", now)
    ok = {"timestamp": str(now), "nonce": "n1", "encrypted": encrypted}
    assert SAMPLE.check(msg_signature=sig, **ok) == "<xml/>"
    with pytest.raises(CallbackRefused, match="signature"):
        SAMPLE.check(msg_signature="0" * 40, **ok)
    with pytest.raises(CallbackRefused, match="stale"):
        old, old_sig = _signed(SAMPLE, "<xml/>", now - 301)
        SAMPLE.check(msg_signature=old_sig, timestamp=str(now - 301), nonce="n1", encrypted=old)
    other = WeComCrypto(SAMPLE.token, SAMPLE.aes_key, "wwsomeoneelse")
    theirs, their_sig = _signed(other, "<xml/>", now)
    with pytest.raises(CallbackRefused, match="corp"):
        SAMPLE.check(msg_signature=their_sig, timestamp=str(now), nonce="n1", encrypted=theirs)
    garbage = "QUJD"  # base64 of 3 bytes: not a ciphertext
    with pytest.raises(CallbackRefused):
        SAMPLE.check(
            msg_signature=signature(SAMPLE.token, str(now), "n1", garbage),
            timestamp=str(now),
            nonce="n1",
            encrypted=garbage,
        )


def test_bodies_with_entities_or_no_encrypt_are_refused() -> None:
    with pytest.raises(CallbackRefused):
        encrypted_field(b'<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>')
    with pytest.raises(CallbackRefused):
        encrypted_field(b"<xml><ToUserName>x</ToUserName></xml>")
    with pytest.raises(CallbackRefused):
        encrypted_field(b"not xml")
    assert encrypted_field(b"<xml><Encrypt><![CDATA[abc]]></Encrypt></xml>") == "abc"


def test_a_bad_aes_key_is_refused() -> None:
    with pytest.raises(ValueError):
        WeComCrypto("t", "short", "c").encrypt("x")
