"""Digest delivery, measured: a whole `send_digests` run to a local SMTP server, our path (one SMTP
connection for the run, deliveries claimed and composed in batches) against the baseline (the same
run with one SMTP connection per message), each on its own fresh copy of one database.

    .venv/bin/python bench/digest_send.py [--subscribers 10000] [--repeat 2] [--quick] [--cprofile] [--data DIR]
        [--senders N [--senders-only]] [--dkim]

The database: the bundled sample (1,219 Hugging Face Daily Papers, scored, every one embedded by the
real model) and N confirmed daily subscribers with one to three interest profiles each (phrases from
a list of real research topics, some with arXiv categories). The SMTP server (aiosmtpd) runs in a
process of its own, so it does not share the sender's GIL; it counts messages per recipient, and the
bench checks that every reader got exactly one digest. Prints digests/s for the whole run (rescore,
ledger, send) and for the send phase, and where one digest's time goes (compose, render, SMTP, the
ledger), and what rendering one digest costs both ways on the run's first 200 digests: written as
bytes (render.digest_message) and through Python's email package (the path before). `--cprofile`
also profiles a run of 1,000 readers and prints the top functions. `--senders N` also runs ours
with N sender processes (papertide's DIGEST_SENDERS: the others are forked inside the timed run from
a fork server; the invocation's first such run starts the fork server, which imports the sender's
code, as every `papertide digest send` does; its later runs reuse it, as the scheduler's do).
`--dkim`: every path DKIM-signs each digest on its way out (an RSA-2048 key), as DKIM_KEY_FILE does.

The readers' phrase vectors are stored in the database the runs copy, as the first run stores them:
the runs measure a day after the readers' first digest; what the first run adds is printed beside.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import html
import multiprocessing
import os
import platform
import pstats
import random
import resource
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"
sys.path.insert(0, str(ROOT / "bench"))

from ingest import fresh_database  # noqa: E402  (bench/ingest.py: a migrated database on pgserver)

TEMPLATE = "bench_digest_template"  # with the subscriber count after it

# Research interests as readers type them: a profile is one topic's name, one to four of its
# phrases (now and then with a modifier, for a long tail of distinct phrases), and sometimes
# arXiv categories.
TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "speech": (
        [
            "speech synthesis",
            "text-to-speech",
            "speech recognition",
            "voice conversion",
            "spoken language models",
        ],
        ["eess.AS", "cs.SD", "cs.CL"],
    ),
    "world models": (
        ["world models", "video world models", "learned simulators", "model-based reinforcement learning"],
        ["cs.LG", "cs.AI"],
    ),
    "RL theory": (
        [
            "reinforcement learning theory",
            "policy optimization",
            "regret bounds",
            "offline reinforcement learning",
        ],
        ["cs.LG", "stat.ML"],
    ),
    "LLM reasoning": (
        ["chain-of-thought reasoning", "mathematical reasoning", "test-time compute", "reasoning models"],
        ["cs.CL", "cs.AI"],
    ),
    "RLHF": (
        ["reinforcement learning from human feedback", "reward models", "preference optimization", "DPO"],
        ["cs.LG", "cs.CL"],
    ),
    "agents": (
        ["LLM agents", "computer-use agents", "tool use", "multi-agent systems", "web agents"],
        ["cs.AI", "cs.MA"],
    ),
    "retrieval": (
        ["retrieval-augmented generation", "dense retrieval", "embedding models", "reranking"],
        ["cs.IR", "cs.CL"],
    ),
    "diffusion": (
        ["diffusion models", "flow matching", "image generation", "text-to-image", "consistency models"],
        ["cs.CV", "cs.LG"],
    ),
    "video": (
        ["video generation", "video understanding", "video diffusion", "long video"],
        ["cs.CV"],
    ),
    "robotics": (
        ["robot manipulation", "vision-language-action models", "humanoid robots", "imitation learning"],
        ["cs.RO"],
    ),
    "3D vision": (
        ["3D reconstruction", "gaussian splatting", "neural radiance fields", "novel view synthesis"],
        ["cs.CV", "cs.GR"],
    ),
    "multimodal": (
        ["vision-language models", "multimodal large language models", "visual question answering"],
        ["cs.CV", "cs.CL"],
    ),
    "efficiency": (
        [
            "mixture of experts",
            "quantization",
            "speculative decoding",
            "KV cache compression",
            "sparse attention",
        ],
        ["cs.LG", "cs.DC"],
    ),
    "safety": (
        ["AI safety", "jailbreak attacks", "red teaming", "alignment", "interpretability"],
        ["cs.CR", "cs.AI"],
    ),
    "code": (
        ["code generation", "program synthesis", "software engineering agents", "code LLMs"],
        ["cs.SE", "cs.CL"],
    ),
    "science": (
        ["protein structure prediction", "molecular generation", "drug discovery", "AI for science"],
        ["q-bio.BM", "physics.chem-ph"],
    ),
    "medical": (
        ["medical imaging", "clinical language models", "radiology report generation"],
        ["eess.IV", "cs.CV"],
    ),
    "graphs": (
        ["graph neural networks", "knowledge graphs", "graph transformers"],
        ["cs.LG", "cs.SI"],
    ),
    "time series": (
        ["time series forecasting", "foundation models for time series", "anomaly detection"],
        ["cs.LG", "stat.ML"],
    ),
    "evaluation": (
        ["benchmarks for LLMs", "LLM evaluation", "hallucination detection", "long-context evaluation"],
        ["cs.CL"],
    ),
}
MODIFIERS = ["efficient", "multilingual", "scalable", "robust", "open-source", "small", "long-context"]


def add_subscribers(count: int, seed: int) -> tuple[int, int]:
    """`count` confirmed daily subscribers with one to three profiles each; returns (profiles,
    distinct phrases)."""
    from sqlalchemy import insert, text

    from papertide.db import unit_of_work
    from papertide.models import InterestProfile, Subscriber, SubscriberStatus

    rng = random.Random(seed)
    names = list(TOPICS)
    subscribers = [
        {
            "id": n,
            "email": f"reader{n}@example.org",
            "status": SubscriberStatus.CONFIRMED,
            "frequency": "daily",
            "papers_per_digest": rng.choice([3, 5, 5, 8]),
            "trending_papers": rng.choice([3, 5, 5, 8]),
            "interest_mix": rng.choice([0.3, 0.5, 0.5, 0.7]),
            "confirmed_at": datetime.now(UTC),
        }
        for n in range(1, count + 1)
    ]
    profiles, phrases = [], set()
    for n in range(1, count + 1):
        for position, topic in enumerate(rng.sample(names, rng.choice([1, 1, 2, 2, 3]))):
            words, categories = TOPICS[topic]
            chosen = [
                f"{rng.choice(MODIFIERS)} {p}" if rng.random() < 0.2 else p
                for p in rng.sample(words, rng.randint(1, min(4, len(words))))
            ]
            phrases.update(chosen)
            picked = rng.sample(categories, rng.randint(1, len(categories))) if rng.random() < 0.4 else []
            profiles.append(
                {
                    "subscriber_id": n,
                    "name": topic,
                    "phrases": chosen,
                    "categories": picked,
                    "position": position,
                }
            )
    with unit_of_work() as session:
        session.execute(insert(Subscriber), subscribers)
        session.execute(text("SELECT setval('subscriber_id_seq', :n)"), {"n": count})
        session.execute(insert(InterestProfile), profiles)
    return len(profiles), len(phrases)


def build_template(data: Path, subscribers: int, encoder: Any) -> tuple[int, int]:
    """The database every run copies: the sample scored and embedded, and the subscribers."""
    from papertide import db
    from papertide.worker import ingest, jobs

    fresh_database(data, f"{TEMPLATE}_{subscribers}")
    ingest.ingest_sample(path=SAMPLE)
    jobs.score()
    start = time.perf_counter()
    embedded = jobs.embed(encoder=encoder)
    print(
        f"embedded {embedded} papers with {encoder.name} in {time.perf_counter() - start:.0f} s", flush=True
    )
    counts = add_subscribers(subscribers, seed=7)
    store_phrase_vectors(encoder)
    db.reset()  # no connection left on the template, or it cannot be copied
    return counts


def upgrade_template(data: Path, template: str, encoder: Any) -> None:
    """A template kept by --data from an older papertide: its schema brought to the newest migration
    (a run on an older schema fails on the first column the code reads and the template lacks),
    and the readers' phrase vectors stored as a run stores them."""
    from papertide import db, embedded_pg

    os.environ["PAPERTIDE_DATA_DIR"] = str(data)
    db.reset()
    url = embedded_pg.to_sqlalchemy_url(embedded_pg.admin_uri(data), template)
    db.upgrade(url)
    os.environ["PAPERTIDE_DATABASE_URL"] = url
    db.reset()
    store_phrase_vectors(encoder)
    db.reset()  # no connection left on the template, or it cannot be copied


def every_phrase(session: Any) -> list[str]:
    """The distinct phrases of every profile, sorted."""
    from sqlalchemy import func, select

    from papertide.models import InterestProfile

    return sorted(session.scalars(select(func.unnest(InterestProfile.phrases)).distinct()))


def encode_every_phrase(encoder: Any) -> tuple[int, float, float]:
    """What a run without stored phrase vectors adds: every phrase encoded in one call (phrases,
    seconds, CPU seconds)."""
    from papertide.db import unit_of_work

    with unit_of_work() as session:
        phrases = every_phrase(session)
    start, cpu = time.perf_counter(), time.process_time()
    encoder.encode(phrases)
    return len(phrases), time.perf_counter() - start, time.process_time() - cpu


def store_phrase_vectors(encoder: Any) -> int:
    """Every profile phrase's vector, stored as a digest run stores the phrases it encoded: the
    runs measure a day on which the readers' phrases are known (the day after their first
    digest). What a first run adds, encoding the phrases, is printed beside (encode_every_phrase)."""
    from sqlalchemy import select

    from papertide.db import unit_of_work
    from papertide.digests import repository
    from papertide.models import PhraseEmbedding

    with unit_of_work() as session:
        known = select(PhraseEmbedding.phrase).where(PhraseEmbedding.model == encoder.name)
        phrases = sorted(set(every_phrase(session)) - set(session.scalars(known)))
        if phrases:
            repository.store_phrase_vectors(
                session, model=encoder.name, phrases=phrases, vectors=encoder.encode(phrases)
            )
    return len(phrases)


def use_copy(data: Path, name: str, *, template: str, pause_after: int | None = None) -> None:
    """A fresh copy of the template; papertide points at it from now on."""
    import psycopg
    from sqlalchemy import text

    from papertide import db, embedded_pg

    admin = embedded_pg.admin_uri(data)
    db.reset()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    os.environ["PAPERTIDE_DATABASE_URL"] = embedded_pg.to_sqlalchemy_url(admin, name)
    db.reset()
    if pause_after is not None:
        with db.unit_of_work() as session:
            session.execute(text("UPDATE subscriber SET paused_at = now() WHERE id > :n"), {"n": pause_after})


def stop_postgres(data: Path) -> None:
    from papertide import db, embedded_pg

    db.reset()
    embedded_pg.release((data / "pg").resolve())


def serve_smtp(port: int, pipe: Connection) -> None:
    """The mail server, in its own process: counts each recipient's messages until told to stop."""
    from aiosmtpd.controller import Controller

    class Counting:
        def __init__(self) -> None:
            self.received: Counter[str] = Counter()
            self.bytes = 0

        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            self.received.update(envelope.rcpt_tos)
            self.bytes += len(envelope.original_content or envelope.content)
            return "250 OK"

    handler = Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    pipe.send("ready")
    cpu = time.process_time()
    while pipe.recv() != "stop":
        pipe.send((dict(handler.received), handler.bytes, time.process_time() - cpu))
        handler.received.clear()
        handler.bytes = 0
        cpu = time.process_time()
    controller.stop()


def postgres_cpu(data: Path) -> float:
    """CPU seconds used so far by the bench's own postgres (the postmaster of `data`, Linux /proc):
    its backends alive, and those that ended (counted in the postmaster's children times). Other
    postgres servers on the machine (another engineer's tests) are not counted."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        postmaster = (data / "pg" / "postmaster.pid").read_text().split()[0]
    except (OSError, IndexError):
        return 0.0
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            values = fields[1].split()
            if stat.parent.name == postmaster or values[1] == postmaster:  # values[1]: the parent's pid
                total += sum(int(v) for v in values[11:15])  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while we looked
    return total / ticks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Timers:
    """Wall time spent in chosen functions, wrapped in place (a microsecond per call)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.rendered: list[dict[str, Any]] = []  # digest_message's arguments, the first RENDERED

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)


def instrument() -> Timers:
    from email.message import EmailMessage

    from papertide.digests import build, service
    from papertide.digests.mailer import SmtpSession
    from papertide.worker import jobs

    timers = Timers()
    timers.wrap(jobs, "_send_due", "send phase")
    timers.wrap(service, "warm_up", "phrases")
    timers.wrap(jobs, "_hand_over_batch", "hand over")
    timers.wrap(service, "build_digest", "build_digest")
    timers.wrap(build, "profile_fit", "profile fit")
    timers.wrap(build, "digest_message", "render")
    timers.wrap(EmailMessage, "__bytes__", "flatten")
    timers.wrap(SmtpSession, "send", "smtp")
    timed_render = build.digest_message

    def keep(**kwargs: Any) -> Any:  # the first digests' arguments, for render_paths()
        if len(timers.rendered) < RENDERED:
            timers.rendered.append(kwargs)
        return timed_render(**kwargs)

    build.digest_message = keep
    return timers


RENDERED = 200  # digests rendered again both ways by render_paths()


def email_package_digest(**kwargs: Any) -> bytes:
    """A digest built as it was before render.digest_message wrote the bytes itself: an EmailMessage
    with MAIL_POLICY, set_content(), add_alternative(), List-Unsubscribe, flattened by bytes()."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    from papertide.digests.render import MAIL_POLICY
    from papertide.templating import environment

    context = {
        key: kwargs[key]
        for key in (
            "sections",
            "digest_date",
            "as_of",
            "base_url",
            "unsubscribe_url",
            "manage_url",
            "view_url",
        )
    }
    count = sum(len(s.papers) for s in kwargs["sections"])
    env = environment()
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = kwargs["sender"]
    message["To"] = kwargs["to"]
    message["Subject"] = f"papertide: {count} papers for {kwargs['digest_date']:%a %d %b}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = kwargs["message_id"]
    message.set_content(env.get_template("email/digest.txt").render(**context))
    message.add_alternative(env.get_template("email/digest.html").render(**context), subtype="html")
    message["List-Unsubscribe"] = f"<{kwargs['unsubscribe_url']}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return bytes(message)


def render_paths(rendered: list[dict[str, Any]], *, rounds: int = 3) -> dict[str, float]:
    """ms per digest to render the same digests of the run (its first RENDERED) both ways, best of
    `rounds`: as bytes (render.digest_message, ours) and through the email package (before)."""
    from papertide.digests.render import digest_message

    paths: dict[str, Callable[..., bytes]] = {
        "bytes written directly (render.digest_message)": lambda **a: bytes(digest_message(**a)),
        "the email package (EmailMessage, flattened)": email_package_digest,
    }
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(rounds):
        for label, render in paths.items():
            start = time.perf_counter()
            for arguments in rendered:
                render(**arguments)
            best[label] = min(best[label], (time.perf_counter() - start) / max(len(rendered), 1))
    return {label: 1000 * seconds for label, seconds in best.items()}


@dataclass(frozen=True)
class Setup:
    data: Path  # the embedded server's data dir
    template: str  # the database each run copies
    port: int  # the SMTP server's
    pipe: Connection  # to the SMTP server's process
    encoder: Any
    signer: Any = None  # --dkim: a DkimSigner every path's mailer signs with (RSA-2048)


def _cpu() -> float:
    """CPU seconds of this process, of its children that have ended, and of the fork server the
    other senders are forked from with its children that have ended (the other senders: they are
    the fork server's children, not ours)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime + _fork_server_cpu()


def _fork_server_cpu() -> float:
    """utime + stime + cutime + cstime of this process's fork server (Linux /proc), 0 if none."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            values = stat.read_text().rsplit(")", 1)[1].split()
            if int(values[1]) != os.getpid():  # values[1]: the parent's pid
                continue
            if b"multiprocessing.forkserver" in (stat.parent / "cmdline").read_bytes():
                total += sum(int(v) for v in values[11:15])
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while we looked
    return total / os.sysconf("SC_CLK_TCK")


def run(setup: Setup, name: str, *, reuse: bool, timers: Timers, senders: int = 1) -> dict[str, Any]:
    """One whole `send_digests` run on a fresh copy (or `senders` of them at once, each in its own
    process); what it sent, how long it took, who got what."""
    from sqlalchemy import select

    from papertide.db import unit_of_work
    from papertide.digests.mailer import SmtpMailer
    from papertide.models import DigestDelivery, Subscriber
    from papertide.worker import jobs

    use_copy(setup.data, name, template=setup.template)
    timers.seconds.clear()
    mailer = SmtpMailer(f"smtp://127.0.0.1:{setup.port}", reuse=reuse, signer=setup.signer)
    setup.pipe.send("counts")
    setup.pipe.recv()  # the server's CPU count starts now
    start, cpu, database = time.perf_counter(), _cpu(), postgres_cpu(setup.data)
    # papertide's own senders (DIGEST_SENDERS): the other processes start, import and read the
    # stored phrase vectors inside the timed run, as they do in production.
    result = jobs.send_digests(mailer=mailer, encoder=setup.encoder, senders=senders)
    cpu = _cpu() - cpu
    seconds = time.perf_counter() - start
    database = postgres_cpu(setup.data) - database
    setup.pipe.send("counts")
    received, size, server_cpu = setup.pipe.recv()
    with unit_of_work() as session:
        rows = session.execute(
            select(Subscriber.email, DigestDelivery.status).join(
                DigestDelivery, DigestDelivery.subscriber_id == Subscriber.id
            )
        ).all()
    expected = {email: 1 if status == "sent" else 0 for email, status in rows}
    wrong = {e: received.get(e, 0) for e in expected if received.get(e, 0) != expected[e]}
    wrong.update({e: n for e, n in received.items() if e not in expected})
    return {
        "result": result,
        "seconds": seconds,
        # With other sender processes this process's timers hold its share only: left out.
        "send": timers.seconds["send phase"] if senders == 1 else 0.0,
        "timers": dict(timers.seconds) if senders == 1 else {},
        "readers": len(expected),
        "wrong": wrong,
        "bytes": size,
        "cpu": {"sender": cpu, "SMTP server": server_cpu, "postgres": database},
    }


def combine(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one path as one: their digests, seconds, timers and CPU added up."""
    from papertide.digests.service import DigestRunResult

    result = DigestRunResult(sent=sum(o["result"].sent for o in outcomes))
    timers: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    for o in outcomes:
        timers.update(o["timers"])
        cpu.update(o["cpu"])
    return {
        "result": result,
        "seconds": sum(o["seconds"] for o in outcomes),
        "send": sum(o["send"] for o in outcomes),
        "timers": dict(timers),
        "cpu": dict(cpu),
        "readers": sum(o["readers"] for o in outcomes),
        "wrong": {k: v for o in outcomes for k, v in o["wrong"].items()},
        "bytes": sum(o["bytes"] for o in outcomes),
    }


def report(label: str, outcome: dict[str, Any]) -> None:
    result = outcome["result"]
    sent = result.sent
    send = (
        f"{outcome['send']:>9.1f}{sent / outcome['send']:>11.0f}" if outcome["send"] else f"{'-':>9}{'-':>11}"
    )
    print(
        f"{label:<34}{sent:>8,}{outcome['seconds']:>9.1f}{sent / outcome['seconds']:>11.0f}{send}"
        f"{'yes' if not outcome['wrong'] and sent == outcome['readers'] else 'NO':>10}"
    )


def breakdown(outcome: dict[str, Any]) -> None:
    """Where one digest's time goes in the send phase, in ms of wall time in the sender; the rows
    add up to the last."""
    t, sent = outcome["timers"], max(outcome["result"].sent, 1)
    render = t.get("render", 0.0) + t.get("flatten", 0.0)
    compose = t.get("build_digest", 0.0) - t.get("render", 0.0)
    smtp = t.get("smtp", 0.0)
    batches = t.get("send phase", 0.0) - t.get("phrases", 0.0) - t.get("hand over", 0.0)
    parts = [
        ("phrases (stored by an earlier run: read, not encoded)", t.get("phrases", 0.0)),
        ("compose (matching, sections, links)", compose),
        ("  of which profile fit (matching)", t.get("profile fit", 0.0)),
        ("render (templates, MIME, bytes)", render),
        ("claim, readers, items, commit (per batch)", batches - compose - render),
        ("SMTP (MAIL, RCPT, DATA)", smtp),
        ("record the outcome (a commit per message)", t.get("hand over", 0.0) - smtp),
        ("send phase", t.get("send phase", 0.0)),
    ]
    for label, seconds in parts if t else []:  # (several sender processes: their times stay there)
        print(f"  {label:<50}{1000 * seconds / sent:>8.3f} ms")
    cpu = outcome["cpu"]
    total = sum(cpu.values())
    print(
        "  CPU per digest, whole run: "
        + ", ".join(f"{name} {1000 * used / sent:.2f} ms" for name, used in cpu.items())
        + f"; {1000 * total / sent:.2f} ms in all: {os.cpu_count()} idle cores would do"
        f" at most {sent * (os.cpu_count() or 1) / total:,.0f} digests/s"
    )


def line_cost(setup: Setup, *, messages: int = 300) -> dict[int, float]:
    """The SMTP server's CPU per message (ms) for 22.5 kB messages of 76-, 200- and 998-octet
    lines, on one connection: aiosmtpd reads the message a line at a time."""
    import smtplib

    client = smtplib.SMTP("127.0.0.1", setup.port, timeout=10)
    cost: dict[int, float] = {}
    try:
        for length in (76, 200, 998):
            line = b"x" * (length - 2) + b"\r\n"
            head = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: lines\r\n\r\n"
            data = head + line * (22_500 // length)
            setup.pipe.send("counts")
            setup.pipe.recv()
            for _ in range(messages):
                client.sendmail("a@example.org", ["b@example.org"], data)
            setup.pipe.send("counts")
            _, _, cpu = setup.pipe.recv()
            cost[length] = 1000 * cpu / messages
    finally:
        client.quit()
    return cost


def digest_lines(rendered: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Of the run's first digests: mean lines as sent, mean lines had both parts gone
    quoted-printable (at most 76 octets a line: every digest before the HTML part went 7-bit), and
    the share whose HTML part went 7-bit (its templates' own lines)."""
    import binascii
    import email
    from email import policy
    from email.message import EmailMessage

    from papertide.digests.render import digest_message

    sent, quoted, seven_bit = 0, 0, 0
    for arguments in rendered:
        raw = bytes(digest_message(**arguments))
        sent += raw.count(b"\n")
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        # Each part: its lines, its two headers, the blank line and the boundary line before it.
        text, page = (str(part.get_content()) for part in message.iter_parts())
        # The HTML as written, before its non-ASCII became character references.
        lines = [b"\n".join(c.encode().splitlines()) + b"\n" for c in (text, html.unescape(page))]
        quoted += raw.partition(b"\n\n")[0].count(b"\n") + sum(
            binascii.b2a_qp(b).count(b"\n") + 4 for b in lines
        )
        seven_bit += b'Content-Type: text/html; charset="utf-8"\nContent-Transfer-Encoding: 7bit' in raw
    count = max(len(rendered), 1)
    return sent / count, quoted / count, seven_bit / count


def profile(setup: Setup, *, readers: int) -> None:
    from papertide.digests.mailer import SmtpMailer
    from papertide.worker import jobs

    use_copy(setup.data, "bench_digest_profile", template=setup.template, pause_after=readers)
    profiler = cProfile.Profile()
    profiler.enable()
    jobs.send_digests(mailer=SmtpMailer(f"smtp://127.0.0.1:{setup.port}"), encoder=setup.encoder)
    profiler.disable()
    setup.pipe.send("counts")
    setup.pipe.recv()
    print(f"\ncProfile of a run of {readers:,} readers (top 30 by own time):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def dkim_signer() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from papertide.dkim import DkimSigner

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return DkimSigner(domain="papertide.example.org", selector="bench", key=key)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="500 subscribers: a smoke run")
    parser.add_argument("--cprofile", action="store_true", help="also profile a run of 1,000 readers")
    parser.add_argument("--data", type=Path, help="keep the database here and reuse it next time")
    parser.add_argument(
        "--senders", type=int, default=1, help="also run ours with N sender processes at once"
    )
    parser.add_argument(
        "--repeat", type=int, help="rounds of both paths, in ABBA order (default 2; 1 with --quick)"
    )
    parser.add_argument(
        "--senders-only",
        action="store_true",
        help="run only ours with --senders N processes (to compare N, or two builds, run after run)",
    )
    parser.add_argument(
        "--dkim",
        action="store_true",
        help="every path signs each digest (DKIM, RSA-2048), as DKIM_KEY_FILE makes it",
    )
    args = parser.parse_args()
    if args.senders_only and args.senders < 2:
        parser.error("--senders-only needs --senders N with N of 2 or more")
    count = 500 if args.quick else args.subscribers
    args.repeat = args.repeat or (1 if args.quick else 2)
    os.environ.setdefault("PAPERTIDE_SECRET_KEY", "bench")
    os.environ.setdefault("PAPERTIDE_BASE_URL", "https://papertide.example.org")
    os.environ.setdefault("PAPERTIDE_MAIL_FROM", "papertide <digest@papertide.example.org>")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    from papertide.embeddings.encoder import get_encoder

    encoder = get_encoder()
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    port = free_port()
    server = context.Process(target=serve_smtp, args=(port, theirs), daemon=True)
    server.start()
    assert ours.recv() == "ready"
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp)
        setup = Setup(
            data, f"{TEMPLATE}_{count}", port, ours, encoder, signer=dkim_signer() if args.dkim else None
        )
        built = data / f"{setup.template}.txt"  # a database kept by --data is built once
        if not built.exists():
            profiles, phrases = build_template(data, count, encoder)
            built.write_text(f"{profiles:,} profiles, {phrases:,} distinct phrases")
        else:
            upgrade_template(data, setup.template, encoder)
        print(f"{count:,} subscribers, {built.read_text()}", flush=True)
        timers = instrument()
        paths = [("ours: one connection, batches", True, 1), ("baseline: a connection per message", False, 1)]
        if args.senders > 1:
            paths.append((f"ours, {args.senders} sender processes", True, args.senders))
        if args.senders_only:
            paths = paths[2:]
        runs: list[tuple[str, dict[str, Any]]] = []
        # ABBA...: the machine's load drifts, and whatever a first run warms helps the next one.
        for round_ in range(args.repeat):
            for label, reuse, senders in paths if round_ % 2 == 0 else paths[::-1]:
                name = f"bench_digest_{len(runs)}"
                runs.append((label, run(setup, name, reuse=reuse, timers=timers, senders=senders)))
                print(f"  {label}: {runs[-1][1]['result'].counts}", flush=True)
        if not args.senders_only:
            first_run = encode_every_phrase(setup.encoder)
            rendering = render_paths(timers.rendered)
            lines, costs = digest_lines(timers.rendered), line_cost(setup)
        if args.cprofile:
            profile(setup, readers=min(count, 1000))
        stop_postgres(data)
    ours.send("stop")
    server.join(timeout=10)
    print(
        f"\n{'path':<34}{'digests':>8}{'run s':>9}{'digests/s':>11}{'send s':>9}{'send /s':>11}{'1 each':>10}"
    )
    for label, outcome in runs:
        report(label, outcome)
    totals = {label: combine([o for name, o in runs if name == label]) for label, _, _ in paths}
    if args.repeat > 1:
        for label, outcome in totals.items():
            report(f"{label.split(':')[0]}, all {args.repeat} runs", outcome)
    if not args.senders_only:
        new, base = list(totals.values())[:2]
        ratio = (new["result"].sent / new["seconds"]) / (base["result"].sent / base["seconds"])
        print(f"ratio ours / baseline (whole runs): {ratio:.2f}x")
    for label, outcome in totals.items():
        print(f"\nper digest, {label} (mean bytes {outcome['bytes'] / max(outcome['result'].sent, 1):,.0f}):")
        breakdown(outcome)
    for label, outcome in runs:
        if outcome["wrong"]:
            print(
                f"{label}: readers who did not get exactly one digest: {list(outcome['wrong'].items())[:10]}"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.senders_only:
        return
    print(
        f"\na first run (no phrase stored yet) also encodes {first_run[0]:,} phrases, in each sender:"
        f" {first_run[1]:.2f} s, {first_run[2]:.2f} s of CPU"
    )
    print(f"\nrender one digest (the run's first {len(timers.rendered)}, best of 3):")
    for label, ms in rendering.items():
        print(f"  {label:<50}{ms:>8.3f} ms")
    print(
        "SMTP server CPU per 22.5 kB message: "
        + ", ".join(f"{length}-octet lines {ms:.2f} ms" for length, ms in costs.items())
        + f"; a digest has {lines[0]:.0f} lines as sent, {lines[1]:.0f} quoted-printable throughout"
        f" (as before); HTML part 7-bit in {lines[2]:.0%} of digests"
    )


if __name__ == "__main__":
    main()
