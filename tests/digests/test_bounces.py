"""Bounces and complaints that come back by mail after a relay took the digest (`papertide digest
bounce`): real reports recorded from Postfix, Sendmail, Amazon SES, Oracle Messaging Server, Exim
and Yahoo's feedback loop (tests/fixtures/bounces, from sisimai/set-of-emails), each made to
return a digest this test sent through a real SMTP server: the digest's Message-ID put in the
returned message's headers and its reader's address in place of the recorded one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from papertide.cli import app
from papertide.digests.mailer import SmtpMailer
from papertide.digests.reports import MAX_REPORT_BYTES, NotAReport, ReportKind, read_report
from papertide.digests.service import next_digest
from papertide.models import DigestDelivery, MailSuppression, Subscriber, SubscriberStatus, SubscriberToken
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.helpers import (
    Inbox,
    digest_ready,
    point_at_a_database_nobody_runs,
    smtp_server,
    subscriber_by_email,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bounces"
DAY = date(2026, 11, 24)
READER = "reader@example.org"
runner = CliRunner()


def recorded(name: str) -> bytes:
    return (FIXTURES / f"{name}.eml").read_bytes()


def returning(name: str, *, message_id: str, replace: dict[str, str], header: str = "Message-ID") -> bytes:
    """The recorded report `name`, about the digest `message_id`: its returned message (message/rfc822
    or text/rfc822-headers) carries that Message-ID in place of its own (the recorded samples had
    theirs removed or anonymised), and each address in `replace` is written as the one it maps to.
    `header` "X-Papertide-Digest": the relay's own Message-ID is kept (Amazon SES writes its own),
    and the id comes back in that header, as the digest carries it."""
    raw = recorded(name)
    for old, new in replace.items():
        raw = raw.replace(old.encode(), new.encode())
    part = re.search(rb"(?im)^content-type:\s*(message/rfc822|text/rfc822-headers)[^\n]*\n", raw)
    if part is None:  # the report's third part, whatever its type (Oracle's: text/plain)
        after = raw.lower().index(b"message/delivery-status")
        part = re.compile(rb"(?im)^content-type:[^\n]*\n").search(raw, after + 1)
    assert part, f"{name} returns no message"
    headers_end = raw.index(b"\n\n", part.end() - 1) + 2  # the part's own headers end here
    returned = raw[headers_end:]
    if header == "Message-ID":
        returned = re.sub(rb"(?im)^message-id:[^\n]*\n", b"", returned, count=1)
    return raw[:headers_end] + f"{header}: {message_id}\n".encode() + returned


def bounce(*args: str, stdin: bytes | None = None) -> Result:
    return runner.invoke(app, ["digest", "bounce", *args], input=stdin)


@pytest.fixture
def relay() -> Iterator[tuple[Inbox, SmtpMailer]]:
    """A real SMTP server (aiosmtpd): the relay that takes the digests and later bounces one."""
    inbox = Inbox()
    with smtp_server(inbox) as port:
        yield inbox, _mailer(port)


@pytest.fixture
def sent(database: str, session: Session, relay: tuple[Inbox, SmtpMailer]) -> DigestDelivery:
    """The reader's digest of DAY, sent through the relay."""
    digest_ready([READER, "other@example.org"])
    inbox, mailer = relay
    result = jobs.send_digests(digest_date=DAY, mailer=mailer, encoder=None)
    assert result.sent == 2
    delivery = session.scalars(
        select(DigestDelivery).join(Subscriber).where(Subscriber.email == READER)
    ).one()
    [quoted] = [m["Message-ID"] for m in inbox.messages if m["To"] == READER]
    assert quoted == delivery.message_id
    return delivery


def _mailer(port: int) -> SmtpMailer:
    return SmtpMailer(f"smtp://127.0.0.1:{port}")


def suppression(session: Session) -> MailSuppression | None:
    session.expire_all()
    return session.scalars(select(MailSuppression).where(MailSuppression.email == READER)).first()


@pytest.mark.parametrize(
    ("name", "replace", "code", "header"),
    [
        # Two recipients: ours unknown (5.1.1), another's mailbox disabled.
        ("lhost-postfix-02", {"userunknown@example.co.jp": READER}, "5.1.1", "Message-ID"),
        ("lhost-postfix-02", {"filtered@example.co.jp": READER}, "5.2.1", "Message-ID"),  # mailbox disabled
        ("lhost-sendmail-01", {"userunknown@bouncehammer.jp": READER}, "5.1.1", "Message-ID"),
        # SES wrote its own Message-ID on the way out: the digest's header still names it.
        ("lhost-amazonses-05", {"bounce@simulator.amazonses.com": READER}, "5.1.1", "X-Papertide-Digest"),
    ],
)
def test_a_later_bounce_for_an_address_that_takes_no_mail_suppresses_it_and_no_digest_goes_again(
    sent: DigestDelivery,
    session: Session,
    tmp_path: Path,
    name: str,
    replace: dict[str, str],
    code: str,
    header: str,
) -> None:
    report = tmp_path / "report.eml"
    report.write_bytes(returning(name, message_id=str(sent.message_id), replace=replace, header=header))

    result = bounce(str(report))

    assert result.exit_code == 0, result.output
    assert f"{report}: suppressed: r***@example.org: bounced after the relay took it: {code}" in result.output
    row = suppression(session)
    assert row is not None
    assert row.delivery_id == sent.id
    assert row.reason.startswith(f"bounced after the relay took it: {code}")
    reader = subscriber_by_email(session, READER)
    assert next_digest(session, reader, now=datetime.now(UTC)) is None, "the manage page names no next digest"
    inbox = Inbox()
    with smtp_server(inbox) as port:
        jobs.send_digests(digest_date=DAY + timedelta(days=1), mailer=_mailer(port), encoder=None)
    assert [m["To"] for m in inbox.messages] == ["other@example.org"], "the other reader's digest still goes"


def test_the_bounce_a_real_postfix_wrote_for_a_papertide_digest_suppresses_its_reader(
    sent: DigestDelivery, session: Session
) -> None:
    """Recorded on this project's machine: Postfix 3.7.11 took a digest `papertide digest send`
    handed it, found no such local user, and bounced it into the MAIL_FROM mailbox. Its returned
    message is a papertide digest, with the Message-ID and X-Papertide-Digest of that run's database
    (here replaced by this test's digest's) and the reader that run mailed (here ours)."""
    recorded_id = b"<digest-1-20261128.oivcc2dsotkxbbbb@localhost>"
    raw = recorded("postfix-3.7-papertide-digest")
    assert raw.count(recorded_id) == 2, "both ids came back in the returned digest"
    raw = raw.replace(recorded_id, str(sent.message_id).encode()).replace(
        b"nobody-here@localhost", READER.encode()
    )

    result = bounce(stdin=raw)

    assert result.exit_code == 0
    assert (
        'stdin: suppressed: r***@example.org: bounced after the relay took it: 5.1.1 X-Postfix; unknown user: "nobody-here"'
        in result.output
    )
    assert suppression(session) is not None


def test_a_bounce_piped_in_on_standard_input_counts_once_however_often_it_comes(
    sent: DigestDelivery, session: Session
) -> None:
    raw = returning(
        "lhost-sendmail-01", message_id=str(sent.message_id), replace={"userunknown@bouncehammer.jp": READER}
    )

    first, again = bounce(stdin=raw), bounce(stdin=raw)

    assert first.exit_code == again.exit_code == 0
    assert "stdin: suppressed: r***@example.org" in first.output
    assert "stdin: ignored: a bounce of digest" in again.output
    assert "is suppressed already" in again.output
    assert session.scalar(select(MailSuppression.email).where(MailSuppression.email == READER)) == READER


def test_a_bounce_for_a_local_mailbox_without_a_domain_counts_as_the_readers(
    sent: DigestDelivery, session: Session
) -> None:
    # Final-Recipient "rfc822; r": the relay delivered locally and names the mailbox alone.
    replace = {"kijitora@example.org": READER, "r@p351355.pool.example.ne.jp": "r"}
    result = bounce(stdin=returning("lhost-postfix-01", message_id=str(sent.message_id), replace=replace))

    assert "stdin: suppressed: r***@example.org: bounced after the relay took it: 5.1.1" in result.output


def test_a_database_this_release_cannot_migrate_keeps_the_report_for_later(
    sent: DigestDelivery, session: Session
) -> None:
    # A rollback: the database is at a migration this install does not know.
    session.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    session.commit()

    result = bounce(stdin=recorded("lhost-sendmail-01"))

    assert result.exit_code == 75, result.output
    assert "error: the database cannot be prepared (CommandError: " in result.output


def test_a_bounce_of_an_address_that_forwarded_the_digest_on_leaves_it(
    sent: DigestDelivery, session: Session
) -> None:
    # Postfix expanded the reader's address (an alias) and one target failed: Original-Recipient is
    # the reader's, Final-Recipient the dead target's. The others it forwards to may have it.
    raw = returning(
        "lhost-postfix-01", message_id=str(sent.message_id), replace={"kijitora@example.org": READER}
    )

    result = bounce(stdin=raw)

    assert result.exit_code == 0
    assert "r***@example.org forwarded it to r***@p351355.pool.example.ne.jp, which failed" in result.output
    assert suppression(session) is None


def test_a_late_bounce_counts_until_a_link_mailed_after_its_digest_is_opened(
    sent: DigestDelivery, session: Session, tmp_path: Path, relay: tuple[Inbox, SmtpMailer]
) -> None:
    """Monday's digest went out; Tuesday's went out too; Monday's 5.1.1 comes back only now. The
    reader opening Monday's own manage link (even before the bounce: a link scanner does) proves
    nothing about after Monday. Opening Tuesday's does: the suppression is lifted, whichever came
    first, and Monday's bounce handled again leaves the address alone."""
    inbox, mailer = relay
    monday = [m for m in inbox.messages if m["To"] == READER][-1]
    a_day = timedelta(days=1)
    session.execute(  # Monday was a day ago, its manage link made then
        update(DigestDelivery)
        .where(DigestDelivery.id == sent.id)
        .values(created_at=DigestDelivery.created_at - a_day, sent_at=DigestDelivery.sent_at - a_day)
    )
    session.execute(update(SubscriberToken).values(created_at=SubscriberToken.created_at - a_day))
    session.commit()
    assert jobs.send_digests(digest_date=DAY + a_day, mailer=mailer, encoder=None).sent == 2
    tuesday = [m for m in inbox.messages if m["To"] == READER][-1]
    report = tmp_path / "monday-bounced.eml"
    replace = {"userunknown@bouncehammer.jp": READER}
    report.write_bytes(returning("lhost-sendmail-01", message_id=str(sent.message_id), replace=replace))

    with TestClient(create_app()) as client:
        assert client.get(f"/manage/{manage_token(monday)}").status_code == 200
        handled = bounce(str(report)).output
        assert ": suppressed: r***@example.org" in handled, "Monday's own link proves nothing after Monday"
        page = client.get(f"/manage/{manage_token(tuesday)}")
        # Monday's link again, after Tuesday's: what the reader has shown is not taken back.
        assert client.get(f"/manage/{manage_token(monday)}").status_code == 200
    assert 'id="suppressed"' not in page.text
    assert suppression(session) is None, "lifted: Tuesday's link reached the reader after Monday's digest"
    again = bounce(str(report))

    assert "has opened a link mailed after it, so the address takes mail" in again.output
    assert suppression(session) is None


def manage_token(digest: EmailMessage) -> str:
    body = digest.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r"/manage/([A-Za-z0-9_\-]+)", body.get_content())
    assert found, "the digest links its manage page"
    return found.group(1)


@pytest.mark.parametrize(
    ("name", "replace", "said"),
    [
        ("lhost-postfix-03", {"kijitora@example.net": READER}, "failed 5.0.0"),  # no reason given
        ("lhost-amazonses-07", {"6@neko.nyaan.example.org": READER}, "failed 5.7.6"),  # a policy block
        ("lhost-messagingserver-07", {"kijitora@2jo.example.jp": READER}, "delayed 4.4.7"),  # still trying
    ],
)
def test_a_bounce_that_does_not_say_the_address_is_bad_changes_nothing(
    sent: DigestDelivery, session: Session, name: str, replace: dict[str, str], said: str
) -> None:
    result = bounce(stdin=returning(name, message_id=str(sent.message_id), replace=replace))

    assert result.exit_code == 0, result.output
    assert f"stdin: ignored: a bounce of digest {sent.id} to r***@example.org: {said}" in result.output
    assert "only a failed 5.1.x or 5.2.1 says the address takes no mail" in result.output
    assert suppression(session) is None
    reader = subscriber_by_email(session, READER)
    assert next_digest(session, reader, now=datetime.now(UTC)) is not None


def test_a_forged_bounce_that_cannot_quote_the_digests_message_id_changes_nothing(
    sent: DigestDelivery, session: Session
) -> None:
    """Anyone can mail the bounce address. The number and date of a digest are guessable; its
    Message-ID's tag is not, so a report that guesses it is refused, whatever it claims."""
    guessed = re.sub(r"\.[a-z2-7]{16}@", ".aaaaaaaaaaaaaaaa@", str(sent.message_id))
    untagged = re.sub(r"\.[a-z2-7]{16}@", "@", str(sent.message_id))
    replace = {"userunknown@bouncehammer.jp": READER}

    forged = [
        bounce(stdin=returning("lhost-sendmail-01", message_id=mid, replace=replace))
        for mid in (guessed, untagged, re.sub(r"@.*>", "@exämple.org>", guessed))
    ]
    other = bounce(stdin=returning("lhost-sendmail-01", message_id=str(sent.message_id), replace={}))

    assert f"ignored: a bounce quoting {guessed}, which papertide did not send" in forged[0].output
    assert "ignored: a bounce about a message that is not a papertide digest" in forged[1].output
    # Not ASCII after the @ (hmac.compare_digest takes ASCII str only): not an id papertide writes.
    assert "ignored: a bounce about a message that is not a papertide digest" in forged[2].output
    assert f"ignored: a bounce of digest {sent.id} that names no recipient of it" in other.output
    assert all(r.exit_code == 0 for r in [*forged, other])
    assert suppression(session) is None


def test_a_complaint_from_whoever_the_reader_forwarded_the_digest_to_leaves_the_reader(
    sent: DigestDelivery, session: Session
) -> None:
    # Yahoo names the address that complained: not the reader's, so the reader's forward's.
    raw = returning("arf-02", message_id=str(sent.message_id), replace={})

    result = bounce(stdin=raw)

    assert (
        f"ignored: a complaint about digest {sent.id} from t***@yahoo.com, not its reader r***@example.org"
        in result.output
    )
    assert subscriber_by_email(session, READER).status == SubscriberStatus.CONFIRMED


def test_a_complaint_unsubscribes_the_reader_once(sent: DigestDelivery, session: Session) -> None:
    raw = returning(
        "arf-02",
        message_id=str(sent.message_id),
        replace={"this-local-part-does-not-exist-on-yahoo@yahoo.com": READER},
    )

    first, again = bounce(stdin=raw), bounce(stdin=raw)

    assert first.exit_code == again.exit_code == 0
    assert (
        f"stdin: unsubscribed: r***@example.org: a complaint (abuse) about digest {sent.id}" in first.output
    )
    assert "has unsubscribed already" in again.output
    reader = subscriber_by_email(session, READER)
    assert reader.status == SubscriberStatus.UNSUBSCRIBED
    assert subscriber_by_email(session, "other@example.org").status == SubscriberStatus.CONFIRMED


def test_a_complaint_that_names_nobody_counts_for_the_digests_reader_and_not_spam_does_not(
    sent: DigestDelivery, session: Session
) -> None:
    # Most providers redact who complained: the digest's id alone says whose it was.
    raw = returning("arf-02", message_id=str(sent.message_id), replace={})
    redacted = re.sub(rb"(?m)^Original-Rcpt-To:[^\n]*\n", b"", raw)
    not_spam = redacted.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")

    kept = bounce(stdin=not_spam)
    assert (
        f"stdin: ignored: a complaint of type 'not-spam' about digest {sent.id}: not a wish to stop"
        in kept.output
    )
    assert subscriber_by_email(session, READER).status == SubscriberStatus.CONFIRMED

    result = bounce(stdin=redacted)

    assert (
        f"stdin: unsubscribed: r***@example.org: a complaint (abuse) about digest {sent.id}" in result.output
    )
    assert subscriber_by_email(session, READER).status == SubscriberStatus.UNSUBSCRIBED


def test_a_report_about_an_earlier_subscriptions_digest_changes_nothing(
    sent: DigestDelivery, session: Session
) -> None:
    # The reader left and confirmed again since: the address has taken mail after that digest.
    session.execute(
        update(Subscriber)
        .where(Subscriber.email == READER)
        .values(confirmed_at=sent.created_at + timedelta(hours=2))
    )
    session.commit()
    replace = {"userunknown@bouncehammer.jp": READER}

    result = bounce(stdin=returning("lhost-sendmail-01", message_id=str(sent.message_id), replace=replace))
    ours = {"this-local-part-does-not-exist-on-yahoo@yahoo.com": READER}
    complaint = bounce(stdin=returning("arf-02", message_id=str(sent.message_id), replace=ours))

    assert "confirmed a new subscription: the address has taken mail since" in result.output
    assert "confirmed a new subscription" in complaint.output
    assert suppression(session) is None
    assert subscriber_by_email(session, READER).status == SubscriberStatus.CONFIRMED


def test_messages_that_are_not_reports_are_named_and_left(
    sent: DigestDelivery, session: Session, tmp_path: Path
) -> None:
    files = {
        "exim": recorded("lhost-exim-01"),  # Exim's plain-text bounce: no status a program can read
        "binary": bytes(range(256)) * 64,
        "huge": b"Content-Type: multipart/report; report-type=delivery-status\n\n" + b"x" * MAX_REPORT_BYTES,
        "empty": b"",
    }
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)

    result = bounce(*(str(tmp_path / name) for name in files), str(tmp_path / "missing"))

    assert result.exit_code == 66, "a file it could not read"
    assert (
        f"{tmp_path / 'exim'}: ignored: not a report papertide reads: a text/plain message" in result.output
    )
    assert "more than a delivery report holds" in result.output
    assert result.output.count(": ignored: not a report papertide reads") == 4
    assert f"error: {tmp_path / 'missing'}: cannot read it" in result.output
    assert "Traceback" not in result.output
    assert suppression(session) is None


def test_a_database_that_cannot_be_reached_asks_the_mail_server_to_try_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    point_at_a_database_nobody_runs(monkeypatch)

    result = bounce(stdin=recorded("lhost-sendmail-01"))

    assert result.exit_code == 75, "EX_TEMPFAIL: the mail server keeps the message and tries again"
    assert "error: cannot reach the database (" in result.output


def test_each_recorded_report_reads_as_its_mail_server_wrote_it() -> None:
    two = read_report(recorded("lhost-postfix-02"))
    assert two.kind == ReportKind.BOUNCE
    assert [(r.final, r.action, r.status) for r in two.recipients] == [
        ("filtered@example.co.jp", "failed", (5, 2, 1)),
        ("userunknown@example.co.jp", "failed", (5, 1, 1)),
    ]
    assert [r.bad_address for r in two.recipients] == [True, True]
    alias = read_report(recorded("lhost-postfix-01")).recipients[0]
    assert (alias.final, alias.original) == ("r@p351355.pool.example.ne.jp", "kijitora@example.org")
    delayed = read_report(recorded("lhost-messagingserver-07")).recipients[0]
    assert (delayed.action, delayed.status, delayed.bad_address) == ("delayed", (4, 4, 7), False)
    policy = read_report(recorded("lhost-amazonses-07")).recipients[0]
    assert (policy.status, policy.bad_address) == ((5, 7, 6), False)
    complaint = read_report(recorded("arf-02"))
    assert (complaint.kind, complaint.feedback_type) == (ReportKind.COMPLAINT, "abuse")
    assert complaint.digest is None, "the recorded messages are not papertide's"
    with pytest.raises(NotAReport, match="text/plain"):
        read_report(recorded("lhost-exim-01"))


def test_an_smtputf8_bounce_is_read_as_its_ascii_twin(sent: DigestDelivery, session: Session) -> None:
    # RFC 6533's forms, for readers mailed with SMTPUTF8: Python parses them as messages, not blocks.
    raw = returning(
        "lhost-postfix-02", message_id=str(sent.message_id), replace={"userunknown@example.co.jp": READER}
    )
    raw = raw.replace(
        b"Content-Type: message/delivery-status", b"Content-Type: message/global-delivery-status"
    )
    raw = raw.replace(b"Content-Type: message/rfc822", b"Content-Type: message/global-headers")

    result = bounce(stdin=raw)

    assert "stdin: suppressed: r***@example.org: bounced after the relay took it: 5.1.1" in result.output


def test_a_report_nested_hundreds_deep_is_refused_unread_and_the_next_one_is_handled(
    sent: DigestDelivery, session: Session, tmp_path: Path
) -> None:
    """Python's parser takes time in depth times lines: hundreds of nested parts hold it for minutes."""
    depth = 800
    nested = b"".join(
        b'--b%d\nContent-Type: multipart/mixed; boundary="b%d"\n\n' % (i, i + 1) for i in range(depth)
    )
    bomb = b'Content-Type: multipart/report; report-type=delivery-status; boundary="b0"\n\n' + nested
    (tmp_path / "bomb").write_bytes(bomb + b"\n" * 1_000_000)
    replace = {"userunknown@bouncehammer.jp": READER}
    (tmp_path / "real").write_bytes(
        returning("lhost-sendmail-01", message_id=str(sent.message_id), replace=replace)
    )

    result = bounce(str(tmp_path / "bomb"), str(tmp_path / "real"))

    assert result.exit_code == 0
    assert "more than 40 multipart boundaries" in result.output
    assert f"{tmp_path / 'real'}: suppressed" in result.output


def test_a_database_lost_midway_keeps_that_report_and_the_rest_for_a_retry(
    sent: DigestDelivery, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from papertide.digests import feedback

    def restarting(session: Session, raw: bytes, *, now: datetime) -> feedback.Handled:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(feedback, "handle_report", restarting)
    replace = {"userunknown@bouncehammer.jp": READER}
    for name in ("first", "second"):
        (tmp_path / name).write_bytes(
            returning("lhost-sendmail-01", message_id=str(sent.message_id), replace=replace)
        )

    result = bounce(str(tmp_path / "first"), str(tmp_path / "second"))

    assert result.exit_code == 75
    assert "error: lost the database (" in result.output
    assert f"{tmp_path / 'first'} and the rest were not handled: run again" in result.output
    assert "suppressed" not in result.output
    assert suppression(session) is None


def test_a_report_that_handling_fails_on_is_kept_for_a_retry_and_the_rest_are_handled(
    sent: DigestDelivery, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (here made to happen) must not lose the report: 75 keeps it queued at the mail server."""
    from papertide.digests import feedback

    handle = feedback.handle_report

    def failing_on_complaints(session: Session, raw: bytes, *, now: datetime) -> feedback.Handled:
        if b"feedback-report" in raw:
            raise RuntimeError("a bug")
        return handle(session, raw, now=now)

    monkeypatch.setattr(feedback, "handle_report", failing_on_complaints)
    (tmp_path / "complaint").write_bytes(returning("arf-02", message_id=str(sent.message_id), replace={}))
    replace = {"userunknown@bouncehammer.jp": READER}
    (tmp_path / "bounce").write_bytes(
        returning("lhost-sendmail-01", message_id=str(sent.message_id), replace=replace)
    )

    result = bounce(str(tmp_path / "complaint"), str(tmp_path / "bounce"))

    assert result.exit_code == 75
    assert f"error: {tmp_path / 'complaint'}: handling it failed" in result.output
    assert f"{tmp_path / 'bounce'}: suppressed" in result.output
    assert subscriber_by_email(session, READER).status == SubscriberStatus.CONFIRMED


def test_a_bad_setting_asks_the_mail_server_to_try_again_not_to_bounce_the_report() -> None:
    env = {**os.environ, "PAPERTIDE_SMTP_URL": "ftp://relay.example.org"}
    done = subprocess.run(
        [sys.executable, "-m", "papertide", "digest", "bounce"],
        input=recorded("lhost-sendmail-01"),
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 75, done.stderr
    assert b"PAPERTIDE_SMTP_URL" in done.stderr
