"""DKIM: what a real SMTP server (aiosmtpd) receives carries a signature that an independent
verifier (dkimpy, given the DNS record `papertide digest dkim-record` prints) accepts, covering
both unsubscribe headers (RFC 8058 §4: without that, Gmail and Yahoo offer no one-click
unsubscribe); a change on the way breaks it; a key or setting that cannot sign stops startup."""

from __future__ import annotations

import base64
import pickle
import re
from datetime import date
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from papertide.cli import app
from papertide.config import Settings, get_settings
from papertide.digests.mailer import Envelope, SmtpMailer, dkim_signer, mailer_from_settings
from papertide.digests.render import confirmation_message, digest_message
from papertide.dkim import DkimKeyError, DkimSigner
from papertide.models import DeliveryStatus, DigestDelivery, JobRun
from papertide.worker import jobs
from tests.digests.test_wire import arguments
from tests.helpers import Inbox, digest_ready, smtp_server

# openssl genrsa 512: too short for any receiver (RFC 8301), refused at startup.
WEAK_KEY = b"""-----BEGIN PRIVATE KEY-----
MIIBUwIBADANBgkqhkiG9w0BAQEFAASCAT0wggE5AgEAAkEAzU4CQ4OMM6w0KUWf
GPSQ2p0Nxp7gb5/Hv/6anaOPxeOHNRv2uCZtTZdTs83MhbVg1mjfAtOq9s+TeyRy
/twFFwIDAQABAkASOcylpbX6mF0BFPcsxfleDvc8HLqb7jlTaAzd1blbvdBqpsb9
s/7zISshpDbGnlk1Y1VBORgzXE9CalYpy3ExAiEA8x4mdONkiqAMl6J65xVb1lSY
OXQrTbTcWAd9L6uEA/0CIQDYLu5lCHWld2pACUGhHLKbgNK7AWXcDK+ebEdnDITX
owIga+fV6cuDtIOVEzhqlGZGfLrPVbDaB4NeyTOJvL7DuYECIQCdKEkAQ80a1Bv2
n4QJds5VA6qubg65kLNe7QJfZJdyFwIfWfYFhOAeQNAW+EQBdSXjm+dWvy2/vjVj
w88qOyScDA==
-----END PRIVATE KEY-----
"""
runner = CliRunner()


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(params=["rsa", "ed25519"])
def signer(request: pytest.FixtureRequest, rsa_key: rsa.RSAPrivateKey) -> DkimSigner:
    key = rsa_key if request.param == "rsa" else ed25519.Ed25519PrivateKey.generate()
    return DkimSigner(domain="example.org", selector="papertide1", key=key)


def verified(message: bytes, signer: DkimSigner) -> bool:
    """dkimpy's verdict, with DNS answering the record the signer says to publish."""
    name, value = signer.dns_record()

    def dns(queried: bytes, timeout: float = 5) -> bytes | None:
        return value.encode("ascii") if queried.decode().rstrip(".") == name else None

    return bool(dkimpy.verify(message, dnsfunc=dns))


def signature_tags(message: bytes) -> dict[str, str]:
    found = re.search(rb"^DKIM-Signature:(.*?)\r\n(?! )", message, re.S | re.M)
    assert found, message[:400]
    unfolded = re.sub(r"\s+", "", found.group(1).decode())
    return dict(tag.split("=", 1) for tag in unfolded.split(";") if tag)


def received_digest(signer: DkimSigner, **changes: object) -> bytes:
    kwargs = arguments(**changes)
    inbox = Inbox()
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5, signer=signer)
        with mailer.session() as post:
            post.send(Envelope("digest@example.org", str(kwargs["to"]), bytes(digest_message(**kwargs))))
    [received] = inbox.raw
    return received


def test_a_digest_a_real_server_received_verifies_and_signs_both_unsubscribe_headers(
    signer: DkimSigner,
) -> None:
    received = received_digest(signer)

    assert received.startswith(b"DKIM-Signature: v=1; a=")
    assert verified(received, signer)
    tags = signature_tags(received)
    assert tags["d"] == "example.org"
    assert tags["s"] == "papertide1"
    assert tags["c"] == "relaxed/relaxed"
    signed = tags["h"].split(":")
    assert {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    } <= set(signed)
    # Each is listed once more than the message has it, so a second one added on the way breaks it.
    assert signed.count("from") == signed.count("list-unsubscribe") == 2
    assert max(len(line) for line in received.split(b"\r\n\r\n")[0].split(b"\r\n")) <= 998


def test_a_digest_changed_on_the_way_no_longer_verifies(signer: DkimSigner) -> None:
    received = received_digest(signer)
    unsubscribe = re.search(rb"List-Unsubscribe: <([^>]+)>", received)
    assert unsubscribe

    assert not verified(received.replace(unsubscribe.group(1), b"https://evil.example/u"), signer)
    assert not verified(
        received.replace(b"\r\n\r\n", b"\r\nList-Unsubscribe: <https://evil.example/u>\r\n\r\n", 1), signer
    )
    head, _, body = received.partition(b"\r\n\r\n")
    assert not verified(head + b"\r\nFrom: someone@evil.example\r\n\r\n" + body, signer)
    assert not verified(head + b"\r\n\r\n" + body.replace(b"papertide", b"papertidf", 1), signer)
    # What relaxed canonicalization lets a relay do: fold a header again, pad a line end.
    refolded = received.replace(b"\r\nSubject: ", b"\r\nSubject:    \r\n\t", 1)
    assert verified(refolded, signer)
    assert verified(head + b"\r\n\r\n" + body.replace(b"\r\n", b"  \r\n", 3), signer)


def test_a_confirmation_email_is_signed_and_cannot_gain_an_unsubscribe_header(signer: DkimSigner) -> None:
    message = confirmation_message(
        sender="Pâpertide <digest@example.org>",
        to="reader@example.org",
        confirm_url="https://papers.example.org/confirm/t",
        manage_url="https://papers.example.org/manage/m",
        interests=["speech synthesis"],
        frequency="daily",
    )
    inbox = Inbox()
    with smtp_server(inbox) as port:
        SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5, signer=signer).send(message)
    [received] = inbox.raw

    assert verified(received, signer)
    assert "list-unsubscribe" in signature_tags(received)["h"].split(":"), "signed as absent"
    forged = received.replace(b"\r\n\r\n", b"\r\nList-Unsubscribe: <https://evil.example/>\r\n\r\n", 1)
    assert not verified(forged, signer)


def test_a_signer_goes_to_a_sender_process_whole(signer: DkimSigner) -> None:
    copy = pickle.loads(pickle.dumps(signer))

    assert copy.dns_record() == signer.dns_record()
    assert verified(copy.sign(b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"), signer)


def test_the_dns_record_publishes_the_public_key(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = DkimSigner(domain="example.org", selector="2026.papertide", key=rsa_key)
    name, value = signer.dns_record()

    assert name == "2026.papertide._domainkey.example.org"
    published = value.removeprefix("v=DKIM1; k=rsa; p=")
    public = serialization.load_der_public_key(base64.b64decode(published))
    assert public == rsa_key.public_key()


def key_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "dkim.pem"
    path.write_bytes(data)
    return path


def test_a_run_from_the_settings_signs_every_digest_for_the_from_domain(
    database: str,
    session: Session,
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest_ready(["a@example.org", "b@example.org"])
    inbox = Inbox()
    with smtp_server(inbox) as port:
        monkeypatch.setenv("PAPERTIDE_SMTP_URL", f"smtp://127.0.0.1:{port}")
        monkeypatch.setenv("PAPERTIDE_MAIL_FROM", "papertide <digest@mail.example.org>")
        monkeypatch.setenv("PAPERTIDE_DKIM_KEY_FILE", str(key_file(tmp_path, pem(rsa_key))))
        monkeypatch.setenv("PAPERTIDE_DKIM_SELECTOR", "papertide1")
        monkeypatch.setenv("PAPERTIDE_DKIM_DOMAIN", "Example.org.")
        get_settings.cache_clear()
        signer = dkim_signer(get_settings())
        assert signer is not None
        jobs.send_digests(
            digest_date=date(2026, 11, 24), mailer=mailer_from_settings(get_settings()), encoder=None
        )

    assert len(inbox.raw) == 2
    for received in inbox.raw:
        assert signature_tags(received)["d"] == "example.org", "the parent domain, as DKIM_DOMAIN says"
        assert verified(received, signer)


def test_dkim_record_prints_the_record_to_publish_and_says_when_dkim_is_off(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    off = runner.invoke(app, ["digest", "dkim-record"])

    monkeypatch.setenv("PAPERTIDE_MAIL_FROM", "digest@example.org")
    monkeypatch.setenv("PAPERTIDE_DKIM_KEY_FILE", str(key_file(tmp_path, pem(rsa_key))))
    monkeypatch.setenv("PAPERTIDE_DKIM_SELECTOR", "papertide1")
    get_settings.cache_clear()
    on = runner.invoke(app, ["digest", "dkim-record"])

    assert off.exit_code == 1
    assert "DKIM is off: set PAPERTIDE_DKIM_KEY_FILE and PAPERTIDE_DKIM_SELECTOR" in off.output
    assert on.exit_code == 0, on.output
    line = on.stdout.strip()
    assert line.startswith("papertide1._domainkey.example.org. IN TXT ( ")
    strings = re.findall(r'"([^"]*)"', line)
    assert all(len(s) <= 255 for s in strings), "a TXT string holds at most 255 characters"
    value = "".join(strings)
    public = serialization.load_der_public_key(base64.b64decode(value.removeprefix("v=DKIM1; k=rsa; p=")))
    assert public == rsa_key.public_key()


def test_a_key_written_over_the_file_while_running_is_not_used_under_the_old_selector(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The selector is read once per process; so is the key, or mail would be signed with the new
    key under a selector whose DNS record holds the old one, and fail everywhere until a restart."""
    settings = Settings(
        mail_from="digest@example.org", dkim_key_file=key_file(tmp_path, pem(rsa_key)), dkim_selector="old1"
    )
    before = dkim_signer(settings)
    key_file(tmp_path, pem(ed25519.Ed25519PrivateKey.generate()))  # the next key, before the restart
    after = dkim_signer(settings)

    assert before is not None
    assert after is not None
    message = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"
    assert verified(after.sign(message), before), "still the key the published old1 record holds"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (None, r"cannot read .*missing\.pem"),
        ("huge", "4160-bit RSA key; receivers need check none over 4096 bits"),
        (b"not a key\n", "is not a PEM private key"),
        (WEAK_KEY, "512-bit RSA key; mail providers refuse DKIM keys under 1024 bits"),
        ("ec", "holds an ECDSA key; DKIM signs with RSA or Ed25519 keys"),
        ("encrypted", "is encrypted; papertide needs the key without a passphrase"),
    ],
)
def test_a_key_file_that_cannot_sign_stops_startup_naming_the_setting(
    tmp_path: Path, data: bytes | str | None, says: str
) -> None:
    if data is None:
        path = tmp_path / "missing.pem"
    elif data == "huge":
        path = key_file(tmp_path, pem(rsa.generate_private_key(public_exponent=65537, key_size=4160)))
    elif data == "ec":
        path = key_file(tmp_path, pem(ec.generate_private_key(ec.SECP256R1())))
    elif data == "encrypted":
        key = ed25519.Ed25519PrivateKey.generate()
        path = key_file(
            tmp_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
        )
    else:
        assert isinstance(data, bytes)
        path = key_file(tmp_path, data)

    with pytest.raises(ValidationError, match=rf"PAPERTIDE_DKIM_KEY_FILE: .*{says}"):
        Settings(dkim_key_file=path, dkim_selector="papertide1")


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (
            {"dkim_selector": "papertide1"},
            "PAPERTIDE_DKIM_SELECTOR is set but PAPERTIDE_DKIM_KEY_FILE is not",
        ),
        ({"dkim_domain": "example.org"}, "PAPERTIDE_DKIM_DOMAIN is set but PAPERTIDE_DKIM_KEY_FILE is not"),
        ({"key": True}, "PAPERTIDE_DKIM_KEY_FILE is set but PAPERTIDE_DKIM_SELECTOR is not"),
        ({"key": True, "dkim_selector": "pt_1"}, "PAPERTIDE_DKIM_SELECTOR='pt_1' is not a DNS name"),
        ({"key": True, "dkim_selector": "pt1", "dkim_domain": "other.example"}, "must be MAIL_FROM's domain"),
        ({"key": True, "dkim_selector": "pt1", "dkim_domain": "le.org"}, "must be MAIL_FROM's domain"),
    ],
)
def test_dkim_settings_that_do_not_fit_together_stop_startup(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, settings: dict[str, object], says: str
) -> None:
    values: dict[str, Any] = {name: value for name, value in settings.items() if name != "key"}
    if settings.get("key"):
        values["dkim_key_file"] = key_file(tmp_path, pem(rsa_key))

    with pytest.raises(ValidationError, match=re.escape(says)):
        Settings(mail_from="digest@mail.example.org", **values)


def test_empty_dkim_settings_are_unset_and_a_parent_domain_signs(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    unset: dict[str, Any] = {
        "dkim_key_file": "",
        "dkim_selector": "",
        "dkim_domain": "",
    }  # as compose passes them
    empty = Settings(**unset)
    parent = Settings(
        mail_from="digest@mail.example.org",
        dkim_key_file=key_file(tmp_path, pem(rsa_key)),
        dkim_selector="papertide1",
        dkim_domain="example.org",
    )

    assert dkim_signer(empty) is None
    assert mailer_from_settings(empty).__class__.__name__ == "OutboxMailer"
    signer = dkim_signer(parent)
    assert signer is not None
    assert (signer.domain, signer.selector) == ("example.org", "papertide1")


def test_a_key_file_gone_since_startup_fails_the_run_naming_it_and_sends_nothing_unsigned(
    database: str,
    session: Session,
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest_ready(["a@example.org"])
    path = key_file(tmp_path, pem(rsa_key))
    inbox = Inbox()
    with smtp_server(inbox) as port:
        monkeypatch.setenv("PAPERTIDE_SMTP_URL", f"smtp://127.0.0.1:{port}")
        monkeypatch.setenv("PAPERTIDE_DKIM_KEY_FILE", str(path))
        monkeypatch.setenv("PAPERTIDE_DKIM_SELECTOR", "papertide1")
        get_settings.cache_clear()
        get_settings()  # started with the key in place
        path.unlink()
        with pytest.raises(DkimKeyError, match=r"PAPERTIDE_DKIM_KEY_FILE: cannot read .*dkim\.pem"):
            jobs.send_digests(digest_date=date(2026, 11, 24), encoder=None)
        path.write_bytes(b"overwritten by mistake\n")
        with pytest.raises(DkimKeyError, match=r"PAPERTIDE_DKIM_KEY_FILE: .*is not a PEM private key"):
            jobs.send_digests(digest_date=date(2026, 11, 24), encoder=None)

    runs = session.scalars(select(JobRun).where(JobRun.job == "digest").order_by(JobRun.id)).all()
    assert [run.status for run in runs] == ["failed", "failed"]
    assert runs[0].error is not None
    assert "PAPERTIDE_DKIM_KEY_FILE: cannot read" in runs[0].error
    assert inbox.raw == [], "nothing went out unsigned"
    assert {d.status for d in session.scalars(select(DigestDelivery))} <= {DeliveryStatus.PENDING}
