"""What the arXiv XML parsers (OAI-PMH, API, RSS) share: safe XML parsing, text and name clean-up."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, ParseError
from xml.parsers.expat import ErrorString

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring

from papertide.ingest.sources.base import SourceError

_NAMESPACE = re.compile(r"^\{[^}]*\}")


def parse_xml(raw: bytes, *, source: str, location: str) -> Element:
    """The document's root element; malformed XML and any DTD or entity raise SourceError."""
    try:
        # arXiv never sends a DTD, so refusing every one also shuts out XXE and entity expansion
        # (https://github.com/tiran/defusedxml#attack-vectors).
        root: Element = fromstring(raw, forbid_dtd=True)
    except ParseError as error:
        line, column = error.position
        # expat counts columns from 0; editors and hf_daily's JSON errors count from 1.
        raise SourceError(
            f"{source}: {location} is not well-formed XML (line {line}, column {column + 1}): "
            f"{ErrorString(error.code)}"
        ) from None
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden):
        raise SourceError(
            f"{source}: {location} was refused: it declares a DTD or entities, "
            "which arXiv responses never do and which can read local files or exhaust memory"
        ) from None
    return root


def namespace(element: Element) -> str:
    """`{uri}` of the element's tag, or "" when it has none, to look up its children."""
    match = _NAMESPACE.match(element.tag)
    return match.group(0) if match else ""


def local_name(element: Element) -> str:
    """The tag without its namespace."""
    return _NAMESPACE.sub("", element.tag)


def collapse(text: str | None) -> str:
    """Runs of whitespace (arXiv wraps titles and abstracts at 80 columns) become one space."""
    return " ".join((text or "").split())


def text_of(element: Element | None) -> str:
    """The element's whole text, collapsed; "" when the element is absent."""
    return collapse("".join(element.itertext())) if element is not None else ""


def join_name(*parts: str | None) -> str:
    """`Forenames Keyname Suffix` from the parts present, collapsed."""
    return collapse(" ".join(part for part in parts if part))


def is_name(text: str) -> bool:
    """False for debris such as the lone `:` arXiv's name splitter leaves between collaborations."""
    return any(character.isalnum() for character in text)
