"""What a DKIM signature costs a digest: papertide's signer against dkimpy's, in the same run.

    .venv/bin/python bench/dkim_sign.py            # 300 digests a path
    .venv/bin/python bench/dkim_sign.py --quick    # 50

The digests are real ones in shape: the bundled sample's papers, eight to a digest in two
sections, written by `render.digest_message` with CRLF line ends as they go to the server. Each
path signs every digest once (RSA-2048, then Ed25519) and prints the median and p95 ms a digest;
dkimpy (the reference implementation most Python mail code uses) is the baseline, and every
signature either path makes is checked by dkimpy's verifier, so a fast wrong signature cannot win.
"""

from __future__ import annotations

import argparse
import base64
import functools
import gzip
import json
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from papertide.digests.render import RenderedPaper, RenderedSection, digest_message, paper_parts
from papertide.dkim import SIGNED_HEADERS, DkimSigner
from papertide.papers.schemas import PaperIn

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"
BASE = "https://papers.example.org"


def digests(count: int) -> list[bytes]:
    days = json.loads(gzip.decompress(SAMPLE.read_bytes()))
    items = [item["paper"] for papers in days.values() for item in papers]
    papers = [
        PaperIn(
            id=p["id"],
            title=p["title"],
            abstract=p.get("summary") or "-",
            authors=[a["name"] for a in p["authors"]],
        )
        for p in items
    ]
    out = []
    for n in range(count):
        chosen = [papers[(n * 8 + k) % len(papers)] for k in range(8)]
        rendered = [
            RenderedPaper(
                p, "matches 'world models'", paper_parts(p, BASE), f"{BASE}/vote/m", f"{BASE}/vote/l"
            )
            for p in chosen
        ]
        message = digest_message(
            message_id=f"<digest-{n}-20261128@example.org>",
            sender="papertide <digest@example.org>",
            to=f"reader{n}@example.org",
            digest_date=date(2026, 11, 28),
            as_of=date(2026, 11, 27),
            sections=[
                RenderedSection("World models", rendered[:4]),
                RenderedSection("Trending", rendered[4:]),
            ],
            base_url=BASE,
            unsubscribe_url=f"{BASE}/unsubscribe/{'t' * 43}",
            manage_url=f"{BASE}/manage/{'m' * 43}",
            view_url=f"{BASE}/digest/{'v' * 43}",
        )
        out.append(bytes(message).replace(b"\n", b"\r\n"))
    return out


def dkimpy_sign(message: bytes, *, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    """dkimpy's signature over the same headers, canonicalization and algorithm as papertide's."""
    if isinstance(key, ed25519.Ed25519PrivateKey):  # dkimpy takes an Ed25519 key as its raw bytes, base64
        secret, algorithm = base64.b64encode(key.private_bytes_raw()), b"ed25519-sha256"
    else:
        secret = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        algorithm = b"rsa-sha256"
    signature = dkimpy.sign(
        message,
        b"bench",
        b"example.org",
        secret,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[h.encode("ascii") for h in SIGNED_HEADERS],
        signature_algorithm=algorithm,
    )
    return bytes(signature) + message


def answer(record: bytes, name: bytes, timeout: float = 5) -> bytes | None:
    """DNS for dkimpy's verifier: the one record the signer publishes, at its name."""
    del timeout  # dkimpy passes one; there is no network to wait on
    return record if name.rstrip(b".") == b"bench._domainkey.example.org" else None


def timed(sign: Callable[[bytes], bytes], messages: list[bytes]) -> tuple[list[float], list[bytes]]:
    times, signed = [], []
    for message in messages:
        start = time.perf_counter()
        signed.append(sign(message))
        times.append((time.perf_counter() - start) * 1000)
    return times, signed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 digests a path")
    args = parser.parse_args()
    messages = digests(50 if args.quick else 300)
    size = statistics.median(len(m) for m in messages)
    print(f"{len(messages)} digests, median {size / 1000:.1f} kB")
    print(f"{'key':<12} {'path':<10} {'median ms':>10} {'p95 ms':>8} {'verified':>9}")
    keys: dict[str, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey] = {
        "rsa-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    for name, key in keys.items():
        signer = DkimSigner(domain="example.org", selector="bench", key=key)
        record = signer.dns_record()[1].encode("ascii")
        reference = functools.partial(dkimpy_sign, key=key)
        results = {}
        for path, sign in (("dkimpy", reference), ("papertide", signer.sign)):
            times, signed = timed(sign, messages)
            ok = sum(bool(dkimpy.verify(m, dnsfunc=functools.partial(answer, record))) for m in signed)
            results[path] = statistics.median(times)
            p95 = statistics.quantiles(times, n=20)[-1]
            print(f"{name:<12} {path:<10} {results[path]:>10.3f} {p95:>8.3f} {ok:>5}/{len(signed)}")
        print(f"{name:<12} {'ratio':<10} {results['dkimpy'] / results['papertide']:>9.1f}x")


if __name__ == "__main__":
    main()
