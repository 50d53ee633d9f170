"""WeCom's message crypto for server callbacks (WXBizMsgCrypt), on `cryptography`'s AES.

- signature: SHA-1 of the sorted token, timestamp, nonce and ciphertext, hex;
- cipher: AES-256-CBC, key = base64 of the 43-character EncodingAESKey plus "=", IV = the
  key's first 16 bytes; plaintext = 16 random bytes, 4-byte big-endian length, message,
  receive id (the corp id); PKCS#7 padding to 32-byte blocks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass
from xml.etree import ElementTree

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_BITS = 256  # WeCom pads to 32 bytes, not AES's 16
TIMESTAMP_WINDOW_SECONDS = 300
MAX_BODY_BYTES = 64 * 1024


class CallbackRefused(Exception):
    """The request is not a genuine, fresh WeCom callback (answered 403, nothing written)."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


@dataclass(frozen=True)
class WeComCrypto:
    token: str
    aes_key: str  # the 43-character EncodingAESKey
    corp_id: str

    @property
    def key(self) -> bytes:
        try:
            key = base64.b64decode(self.aes_key + "=")
        except binascii.Error as exc:
            raise ValueError("EncodingAESKey is not base64") from exc
        if len(self.aes_key) != 43 or len(key) != 32:
            raise ValueError("EncodingAESKey must be 43 characters (32 bytes)")
        return key

    def _cipher(self) -> Cipher:
        key = self.key
        return Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def encrypt(self, message: str, *, random_prefix: bytes | None = None) -> str:
        body = message.encode()
        plain = (
            (random_prefix or os.urandom(16))
            + struct.pack(">I", len(body))
            + body
            + self.corp_id.encode()
        )
        padder = padding.PKCS7(BLOCK_BITS).padder()
        padded = padder.update(plain) + padder.finalize()
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> tuple[str, str]:
        """(message, receive id); CallbackRefused on anything malformed."""
        try:
            data = base64.b64decode(encrypted, validate=True)
            if not data or len(data) % 16:
                raise ValueError("ciphertext length")
            decryptor = self._cipher().decryptor()
            padded = decryptor.update(data) + decryptor.finalize()
            unpadder = padding.PKCS7(BLOCK_BITS).unpadder()
            plain = unpadder.update(padded) + unpadder.finalize()
            (length,) = struct.unpack(">I", plain[16:20])
            if 20 + length > len(plain):
                raise ValueError("message length")
            return plain[20 : 20 + length].decode(), plain[20 + length :].decode()
        except (ValueError, binascii.Error, struct.error, UnicodeDecodeError) as exc:
            raise CallbackRefused(f"cannot decrypt: {exc}") from exc

    def check(
        self,
        *,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        encrypted: str,
        now: float | None = None,
        window: int | None = TIMESTAMP_WINDOW_SECONDS,
    ) -> str:
        """The decrypted message of a genuine, fresh callback for our corp."""
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected, (msg_signature or "").lower()):
            raise CallbackRefused("bad signature")
        if window is not None:
            try:
                age = (time.time() if now is None else now) - int(timestamp)
            except ValueError:
                raise CallbackRefused("bad timestamp") from None
            if abs(age) > window:
                raise CallbackRefused("stale timestamp")
        message, receive_id = self.decrypt(encrypted)
        if receive_id != self.corp_id:
            raise CallbackRefused("wrong corp id")
        return message

    def envelope(self, message: str, *, timestamp: str, nonce: str) -> tuple[str, str]:
        """(msg_signature, XML body) of an encrypted callback (the fake WeCom sends these;
        a passive reply would use the same form)."""
        encrypted = self.encrypt(message)
        sig = signature(self.token, timestamp, nonce, encrypted)
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
        )
        return sig, body


def encrypted_field(body: bytes) -> str:
    """The <Encrypt> of a callback body (bounded, no DTDs: ElementTree expands no entities
    from outside, and a DOCTYPE is refused outright)."""
    if len(body) > MAX_BODY_BYTES or b"<!DOCTYPE" in body.upper():
        raise CallbackRefused("body refused")
    try:
        node = ElementTree.fromstring(body).find("Encrypt")
    except ElementTree.ParseError as exc:
        raise CallbackRefused("bad XML") from exc
    if node is None or not node.text:
        raise CallbackRefused("no Encrypt")
    return node.text.strip()


def parse_fields(message: str) -> dict[str, str]:
    """A decrypted event's flat fields (Event, ChangeType, State, WelcomeCode …)."""
    if len(message) > MAX_BODY_BYTES or "<!DOCTYPE" in message.upper():
        raise CallbackRefused("message refused")
    try:
        root = ElementTree.fromstring(message)
    except ElementTree.ParseError as exc:
        raise CallbackRefused("bad event XML") from exc
    fields = {child.tag: (child.text or "").strip() for child in root if len(child) == 0}
    # MemChangeList (group joins) holds <Item> children: keep them as a comma list.
    for child in root:
        if len(child):
            fields[child.tag] = ",".join((i.text or "").strip() for i in child)
    return fields
