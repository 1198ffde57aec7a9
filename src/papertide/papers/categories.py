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


def _classes(archive: str, subjects: str) -> set[str]:
    return {f"{archive}.{subject}" for subject in subjects.split()}


# arXiv's category taxonomy (https://arxiv.org/category_taxonomy, as of 2026): every archive and
# subject class a paper can be filed under today, and the archives of before 2007 that older papers
# (the Kaggle snapshot's) still carry. A profile may choose only these: "cs.XX" would match nothing
# ever, and its section would stay empty with no word why.
TAXONOMY: frozenset[str] = frozenset(
    _classes(
        "cs",
        "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA NE NI OH OS"
        " PF PL RO SC SD SE SI SY",
    )
    | _classes("econ", "EM GN TH")
    | _classes("eess", "AS IV SP SY")
    | _classes(
        "math",
        "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA RT SG SP ST",
    )
    | _classes("astro-ph", "CO EP GA HE IM SR")
    | _classes("cond-mat", "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con")
    | _classes("nlin", "AO CD CG PS SI")
    | _classes(
        "physics",
        "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an ed-ph flu-dyn gen-ph"
        " geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    )
    | _classes("q-bio", "BM CB GN MN NC OT PE QM SC TO")
    | _classes("q-fin", "CP EC GN MF PM PR RM ST TR")
    | _classes("stat", "AP CO ME ML OT TH")
    | {
        # Archives, and the archives that are whole categories
        *["cs", "econ", "eess", "math", "astro-ph", "cond-mat", "nlin", "physics", "q-bio", "q-fin", "stat"],
        *["gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math-ph", "nucl-ex", "nucl-th", "quant-ph"],
        # Retired archives, on papers from before 2007
        *[
            "acc-phys",
            "adap-org",
            "alg-geom",
            "ao-sci",
            "atom-ph",
            "bayes-an",
            "chao-dyn",
            "chem-ph",
            "cmp-lg",
            "comp-gas",
            "dg-ga",
        ],
        *["funct-an", "mtrl-th", "patt-sol", "plasm-ph", "q-alg", "solv-int", "supr-con"],
    }
)
_CANONICAL = {name.lower(): name for name in TAXONOMY}


def spelled(name: str) -> str:
    """The name as arXiv spells it: "cs.cl" is cs.CL and "physics.Optics" physics.optics (the
    taxonomy's spelling, whatever the case written); a name arXiv does not have keeps the old rule,
    a two-letter subject class in capitals. Matching is exact after this."""
    if (known := _CANONICAL.get(name.lower())) is not None:
        return known
    archive, dot, subject = name.partition(".")
    return f"{archive}.{subject.upper()}" if dot and len(subject) == 2 and subject.isalpha() else name


def is_known(name: str) -> bool:
    """Whether arXiv files papers under `name` (as `spelled` writes it), now or before 2007."""
    return name in TAXONOMY


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
