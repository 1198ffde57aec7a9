"""arXiv categories as readers name them: a whole category ("cs.CL", "hep-th") or an archive ("cs").

One rule for search filters and digest profiles alike: a name without a dot is an archive and also
takes in the archive's subject classes, as arXiv's own listings do ("cs" is every cs.* paper, and
"hep-th", which has none, is itself). A reader who filters on "cs" expects computer science, not the
few papers filed under a bare "cs" (none: arXiv files every cs paper under a subject class).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# cs.CL, math.AG, hep-th, q-bio.NC, cs: lowercase archive, then an optional subject class; at most
# 32 characters (the longest arXiv names, such as cond-mat.stat-mech, have 18). An archive becomes a regex of
# the keyword index's filter, and a long one passes tantivy's size limit: a 500 before this bound.
CATEGORY = re.compile(r"^(?=.{1,32}$)[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?$")


def spelled(name: str) -> str:
    """The name as arXiv spells it, where a reader's case can be told from it: every two-letter subject
    class is in capitals (cs.CL, math.AG, astro-ph.CO, q-bio.NC), so "cs.cl" is cs.CL; longer ones
    (cond-mat.str-el, physics.optics) are left as written. Matching is exact after this."""
    archive, dot, subject = name.partition(".")
    return f"{archive}.{subject.upper()}" if dot and len(subject) == 2 and subject.isalpha() else name


def archives(chosen: Iterable[str]) -> list[str]:
    """The chosen names that are archives (no subject class), whose subject classes count too."""
    return [name for name in chosen if "." not in name]


def matcher(chosen: Iterable[str]) -> Callable[[Iterable[str]], list[str]]:
    """A function giving the categories of a paper that the chosen names take in, sorted; the
    chosen names are read once, for a profile matched against a whole pool."""
    wanted = set(chosen)
    prefixes = tuple(f"{name}." for name in archives(wanted))

    def match(paper_categories: Iterable[str]) -> list[str]:
        return sorted(c for c in paper_categories if c in wanted or (prefixes and c.startswith(prefixes)))

    return match
