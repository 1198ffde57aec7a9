"""The abstract excerpt under a search result, with the query's words marked.

Computed in Python for the few hits a page shows, from the abstract in the database and the
keyword index's own analyzer (so "models" is marked for the query "model", as it matched). The
text is escaped piece by piece and only our own <mark> tags are added, so no abstract can inject
HTML, and every <mark> is closed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import escape

_PIECES = re.compile(r"(\w+)")
WINDOW = 35  # words in an excerpt of a long abstract
WHOLE = 60  # an abstract up to this many words is shown whole


def highlight(abstract: str, *, wanted: set[str], terms: Callable[[str], list[str]]) -> str:
    """The abstract (or its best WINDOW-word stretch) escaped, words whose terms are `wanted` marked."""
    pieces = _PIECES.split(abstract)  # odd indexes are words, even ones what lies between
    words = pieces[1::2]
    cache: dict[str, bool] = {}

    def hit(word: str) -> bool:
        key = word.lower()
        if key not in cache:
            cache[key] = any(term in wanted for term in terms(word))
        return cache[key]

    marks = [hit(word) for word in words]
    start, end = _best_window(marks)
    # From the start, what comes before the first word is kept: "(Preprint) ...", a quote, or all
    # of an abstract with no word in it.
    out: list[str] = ["… " if start > 0 else str(escape(pieces[0]))]
    for n in range(start, end):
        word = str(escape(words[n]))
        out.append(f"<mark>{word}</mark>" if marks[n] else word)
        if n + 1 < end:
            out.append(str(escape(pieces[2 * n + 2])))
    if end < len(words):
        out.append(" …")
    elif end > 0:
        out.append(str(escape(pieces[2 * end])))  # the closing punctuation
    return "".join(out).strip()


def _best_window(marks: list[bool]) -> tuple[int, int]:
    """The WINDOW-word stretch with the most marked words (the first such), or everything if short."""
    if len(marks) <= WHOLE:
        return 0, len(marks)
    count = best = sum(marks[:WINDOW])
    best_start = 0
    for start in range(1, len(marks) - WINDOW + 1):
        count += marks[start + WINDOW - 1] - marks[start - 1]
        if count > best:
            best, best_start = count, start
    return best_start, best_start + WINDOW
