"""DKIM signatures (RFC 6376) on outgoing mail, with an RSA (rsa-sha256) or Ed25519 (RFC 8463) key.

Why papertide signs itself: Gmail and Yahoo offer one-click unsubscribe only when a valid DKIM
signature covers both List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §4), and the usual
relays' default header lists leave List-Unsubscribe-Post out (OpenDKIM's SignHeaders, Exim's
dkim_sign_headers). A relay that signs too adds its own signature beside this one; receivers
accept either.

Canonicalization is relaxed/relaxed, so a relay that rewraps a header or trims trailing spaces
does not break the signature. Every signed header name is listed once more than the message
holds it ("oversigning", RFC 6376 §8.15): a From, Subject or List-Unsubscribe added on the way
then breaks the signature instead of riding on it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

# What the signature covers: who it is from and to, what it says, and the unsubscribe headers a
# mail provider acts on (RFC 8058). A name the message lacks is signed as absent, so it cannot be
# added later either (a List-Unsubscribe on a confirmation email, say).
SIGNED_HEADERS = (
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe",
    "list-unsubscribe-post",
)
# RFC 8301 §3.2: verifiers must refuse RSA keys under 1,024 bits and need check none over 4,096;
# 2,048 is what they expect.
MIN_RSA_BITS = 1024
MAX_RSA_BITS = 4096
_SELECTOR = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
_WSP_RUN = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb" +(?=\r\n)")
_FOLD_WIDTH = 76

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class DkimKeyError(ValueError):
    """The key file cannot sign: missing, unreadable, not a private key, or one DKIM cannot use."""


def load_key(path: Path) -> PrivateKey:
    """The unencrypted PEM private key at `path` (RSA of at least 1,024 bits, or Ed25519)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DkimKeyError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography's word for "this key has a password"
        raise DkimKeyError(f"{path} is encrypted; papertide needs the key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise DkimKeyError(
            f"{path} is not a PEM private key (make one with: openssl genrsa -out dkim.pem 2048)"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DkimKeyError(
                f"{path} is a {key.key_size}-bit RSA key; mail providers refuse DKIM keys under"
                f" {MIN_RSA_BITS} bits (2,048 is usual)"
            )
        if key.key_size > MAX_RSA_BITS:
            raise DkimKeyError(
                f"{path} is a {key.key_size}-bit RSA key; receivers need check none over"
                f" {MAX_RSA_BITS} bits (RFC 8301), so some would not (2,048 is usual)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    kind = "an ECDSA key" if isinstance(key, ec.EllipticCurvePrivateKey) else f"a {type(key).__name__}"
    raise DkimKeyError(f"{path} holds {kind}; DKIM signs with RSA or Ed25519 keys")


def selector_problem(selector: str) -> str | None:
    """Why `selector` cannot name a DKIM key in DNS (<selector>._domainkey.<domain>), or None."""
    if not _SELECTOR.fullmatch(selector):
        return "is not a DNS name (letters, digits and inner hyphens, labels joined by dots)"
    return None


@dataclass(frozen=True)
class DkimSigner:
    """Signs messages for `domain` with the key published at `<selector>._domainkey.<domain>`."""

    domain: str
    selector: str
    key: PrivateKey

    @property
    def algorithm(self) -> str:
        return "ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) else "rsa-sha256"

    def sign(self, message: bytes, *, now: float | None = None) -> bytes:
        """`message` (CRLF line ends, as it goes on the wire) with a DKIM-Signature header in front."""
        head, separator, body = message.partition(b"\r\n\r\n")
        if not separator:  # a message with no body: the whole of it is headers
            head, body = message.removesuffix(b"\r\n"), b""
        fields = _header_fields(head + b"\r\n")
        present: dict[str, list[bytes]] = {}
        for name, field in fields:
            present.setdefault(name, []).append(field)
        signed: list[str] = []
        hashed = b""
        for name in SIGNED_HEADERS:
            instances = present.get(name, [])
            # RFC 6376 §5.4.2: instances are taken from the last one up; the extra name stands for
            # an instance that is not there, which the verifier hashes as nothing.
            signed += [name] * (len(instances) + 1)
            hashed += b"".join(_relaxed_header(field) for field in reversed(instances))
        tags = [
            "v=1",
            f"a={self.algorithm}",
            "c=relaxed/relaxed",
            f"d={self.domain}",
            f"s={self.selector}",
            f"t={int(time.time() if now is None else now)}",
            f"h={':'.join(signed)}",
            f"bh={base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode('ascii')}",
            "b=",
        ]
        unsigned = _folded("DKIM-Signature:", tags)
        data = hashed + _relaxed_header(unsigned).removesuffix(b"\r\n")
        signature = base64.b64encode(self._signature(data)).decode("ascii")
        return _with_signature(unsigned, signature) + message

    def _signature(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(hashlib.sha256(data).digest())  # RFC 8463 §3: Ed25519 of the SHA-256
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def __reduce__(self) -> tuple[object, tuple[str, str, bytes]]:
        # A mailer given to a run goes to its sender processes by pickle; key objects do not pickle.
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return _signer_from_pem, (self.domain, self.selector, pem)

    def dns_record(self) -> tuple[str, str]:
        """The TXT record a receiver looks up: its name and its value."""
        public = self.key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            kind, raw = (
                "ed25519",
                public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
            )
        else:
            kind = "rsa"
            raw = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        value = f"v=DKIM1; k={kind}; p={base64.b64encode(raw).decode('ascii')}"
        return f"{self.selector}._domainkey.{self.domain}", value


def _signer_from_pem(domain: str, selector: str, pem: bytes) -> DkimSigner:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)  # what __reduce__ wrote
    return DkimSigner(domain=domain, selector=selector, key=key)


def _header_fields(head: bytes) -> list[tuple[str, bytes]]:
    """Each header field of a CRLF header block as (lower-case name, the field with its folds)."""
    fields: list[tuple[str, bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, field = fields[-1]
            fields[-1] = (name, field + b"\r\n" + line)
        else:
            fields.append((line.partition(b":")[0].strip().decode("ascii", "replace").lower(), line))
    return [(name, field + b"\r\n") for name, field in fields]


def _relaxed_header(field: bytes) -> bytes:
    """RFC 6376 §3.4.2: lower-case name, unfolded, runs of space one space, none around the colon or at the end."""
    name, _, value = field.partition(b":")
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" \t")
    return name.strip(b" \t").lower() + b":" + value + b"\r\n"


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4: no space at line ends, runs of space one space, no empty lines at the end."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    # Each step only where the message needs it: a substring test is C-fast, and a regex over every
    # byte of a digest cost more than its RSA signature (bench/dkim_sign.py times the whole).
    if b"\t" in body:
        body = body.replace(b"\t", b" ")  # a tab is a run of white space like any other
    if b" \r\n" in body:
        body = _TRAILING_WSP.sub(b"", body)
    while b"  " in body:  # a run of n spaces is gone after log2(n) passes
        body = body.replace(b"  ", b" ")
    body = body.rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def _folded(start: str, tags: list[str]) -> bytes:
    """`start` and the tags joined by "; ", folded before a tag (or inside a long h= list) at the width."""
    lines = [start]
    for n, tag in enumerate(tags):
        text = f" {tag}" + (";" if n < len(tags) - 1 else "")
        for piece in _pieces(text):
            if len(lines[-1]) + len(piece) > _FOLD_WIDTH and lines[-1].strip():
                lines.append("")
                piece = " " + piece.lstrip() if not piece.startswith(" ") else piece
            lines[-1] += piece
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _pieces(text: str) -> list[str]:
    """A tag in pieces a fold may go between: an h= list after its colons, anything else whole."""
    if not text.lstrip().startswith("h="):
        return [text]
    names = text.split(":")
    return [name + ":" for name in names[:-1]] + [names[-1]]


def _with_signature(unsigned: bytes, signature: str) -> bytes:
    """The header with the b= value written in, folded so no line passes the width."""
    lines = unsigned.removesuffix(b"\r\n").split(b"\r\n")
    room = max(_FOLD_WIDTH - len(lines[-1]), 16)
    chunks = [signature[:room]] + [
        signature[start : start + _FOLD_WIDTH - 1] for start in range(room, len(signature), _FOLD_WIDTH - 1)
    ]
    lines[-1] += chunks[0].encode("ascii")
    lines += [b" " + chunk.encode("ascii") for chunk in chunks[1:] if chunk]
    return b"\r\n".join(lines) + b"\r\n"
