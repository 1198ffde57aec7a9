"""Signed links: the tokens sign() writes are itsdangerous's own, so links already in inboxes and new ones verify alike."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from papertide import signing
from papertide.signing import LinkPurpose, LinkState

SECRET = "a-secret-key-of-some-length-0123456789"
PAYLOADS: list[dict[str, object]] = [
    {"s": 12345, "p": 678, "paper": "2501.12345", "v": 1},
    {"s": 1, "p": None, "paper": "hep-th/9901001", "v": -1},
    {"d": 9_876_543_210},
    {"s": 7, "paper": "Ünïcode ✓"},  # not ASCII: JSON keeps it as UTF-8, as itsdangerous does
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_signed_link_is_the_token_itsdangerous_makes(
    payload: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.25)
    reference = URLSafeTimedSerializer(SECRET, salt="papertide-link-vote").dumps(payload)
    assert signing.sign(SECRET, LinkPurpose.VOTE, payload) == reference


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_signed_link_verifies_for_its_purpose_only(payload: dict[str, object]) -> None:
    token = signing.sign(SECRET, LinkPurpose.VOTE, payload)
    assert signing.verify(SECRET, LinkPurpose.VOTE, token) == signing.Verified(LinkState.VALID, payload)
    assert signing.verify(SECRET, LinkPurpose.VIEW, token).state == LinkState.FORGED
    assert signing.verify("another-key", LinkPurpose.VOTE, token).state == LinkState.FORGED


def test_a_changed_payload_or_signature_is_forged() -> None:
    token = signing.sign(SECRET, LinkPurpose.VIEW, {"d": 41})
    body, stamp, mac = token.split(".")
    other = signing.sign(SECRET, LinkPurpose.VIEW, {"d": 42}).split(".")[0]
    assert signing.verify(SECRET, LinkPurpose.VIEW, f"{other}.{stamp}.{mac}").state == LinkState.FORGED
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    assert signing.verify(SECRET, LinkPurpose.VIEW, f"{body}.{stamp}.{flipped}").state == LinkState.FORGED


def test_an_old_link_has_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)
    token = signing.sign(SECRET, LinkPurpose.VIEW, {"d": 1})
    monkeypatch.undo()
    assert signing.verify(SECRET, LinkPurpose.VIEW, token).state == LinkState.EXPIRED
