"""What a searcher types, parsed: loose words, "quoted phrases" and -excluded words or -"phrases".

The syntax is the one people know from web search engines. Nothing here is passed on as query
syntax: the parts are plain word lists, and the keyword index builds its query from them, so no
input can inject an operator, a field name or a boost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A quoted phrase (an unclosed quote runs to the end), or a run of non-space characters; either may
# carry a leading minus. Words are the letter and digit runs inside: punctuation and "_" separate,
# as the index's tokenizer does (a "snake_case" in a phrase is two words, at two positions).
_PART = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class UserQuery:
    words: tuple[str, ...] = ()  # any of these, ranked by BM25
    phrases: tuple[tuple[str, ...], ...] = ()  # each must appear, words in this order
    excluded: tuple[tuple[str, ...], ...] = ()  # none of these (a word, or a phrase) may appear
    text: str = field(
        default="", compare=False
    )  # the words and phrases, without syntax: what the model embeds

    @property
    def empty(self) -> bool:
        return not self.words and not self.phrases


def parse(q: str) -> UserQuery:
    """Split a query into loose words, required phrases and excluded words/phrases."""
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    excluded: list[tuple[str, ...]] = []
    meaning: list[str] = []
    for match in _PART.finditer(q):
        quoted = match.group(2) is not None
        minus = match.group(1) if quoted else match.group(3)
        parts = tuple(_WORD.findall(match.group(2) if quoted else match.group(4)))
        if not parts:
            continue
        if minus:
            excluded.append(parts)
        elif quoted and len(parts) > 1:
            phrases.append(parts)
            meaning.extend(parts)
        else:
            # A bare word with inner punctuation ("state-of-the-art", "GPT-4") is its words, loose.
            words.extend(parts)
            meaning.extend(parts)
    return UserQuery(tuple(words), tuple(phrases), tuple(excluded), text=" ".join(meaning))
