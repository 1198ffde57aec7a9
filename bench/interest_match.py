"""Interest matching, measured: is "matches '<phrase>'" true? The old cosine rule against the calibrated
one (papertide.digests.matching), same papers, same run.

    .venv/bin/python bench/interest_match.py [--quick] [--no-cache] [--seeds N]

The claim is judged the way a digest makes it: a reader's profile holds a few phrases, and a paper
matches the profile when its best phrase matches (`digests/build.py::profile_fit`). Three labelled
sets, all from real data in the repository:

A. arXiv categories as profiles. Papers with known categories from the recorded sources in
   tests/fixtures (the Kaggle snapshot's 200 lines, arXiv API, OAI-PMH and RSS recordings: 247
   papers, mostly 2007 physics and mathematics). A reader does not type "Computation and Language";
   they type its topics. So each category that at least 4 of these papers carry becomes a profile of
   the topics arXiv's own description of it lists (https://arxiv.org/category_taxonomy, written
   below from that page: the first topics it names, at most six, in its words; the name itself where
   the description names no topic). Two labellings: "any" (a pair is true when the paper carries the
   category, primary or cross-list) and "primary" (true when it is the paper's primary category;
   pairs of a cross-listed category are left out, being neither clearly right nor wrong).
B. Titles held out. The bundled sample (Hugging Face Daily Papers, 1,219 papers, machine learning).
   Each profile is one of Hugging Face's own keywords for these papers (`ai_keywords`) of two to
   four words that appears as written in at least 6 titles ("world models", ...). The matcher sees
   the abstract only (its text and its embedding); a pair is true when the title contains the phrase
   as written, false when the title shares no word with it, and left out otherwise.

C. Reader topics. A's papers, but the profiles are the interests a researcher holds, each a union
   of arXiv categories ("high energy physics" = hep-th, hep-ph, hep-ex, hep-lat; "condensed
   matter" = every cond-mat class; READER_TOPICS below, written once before any score was seen),
   with the phrases such a reader types, from the taxonomy's names and descriptions; a pair is
   true when the paper carries any category of the topic. A's errors between neighbouring
   categories (mtrl-sci vs str-el) are not errors here.

All are proxies for "about this phrase": a paper on a topic it is not labelled with counts as a wrong
match. Each set's papers are split in half (by paper, seeded; A and C get the same halves), and so
are its profiles; the background (the corpus the phrases are read against) is the train papers of
all sets. The learned calibration (a logistic regression over the evidence, coefficients kept at zero
or above) is fitted on train papers x train profiles of C and B together, each pair's evidence taken
from its best phrase under the current fit (a few rounds, as the digest takes the best phrase); it
"matches" at a calibrated probability of one half, and, printed beside it, at the lowest threshold
whose train precision reaches 0.9. Held-out numbers are on test papers (all profiles) and on test
papers x test profiles (neither seen by the fit), for the old rule, the constants shipped in
matching.py and the learned rule, in the same run; with --seeds N the split, fit and scoring are
repeated N times (each seed its own fit), printing mean and range, and then whether each rule meets
the shipping principle: precision >= 0.9 at recall >= 0.6 on C, and above the old rule on both
precision and recall on C and B.

Then, for each set, what its labels allow: the best precision at recall >= 0.6 of a classifier that
has been trained on the labels themselves (10-fold kernel ridge over the embeddings and tf-idf). No
rule that reads a few phrases is likely to beat it, so it says how far a target is from reach.

Last, it times `PhraseMatcher.scores` for 10,000 readers of 1-3 phrases against one pool of 500
papers and a background of 2,000, as a digest run calls it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests/fixtures"
SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"
CACHE_DIR = Path(tempfile.gettempdir())  # embeddings of the texts, so a rerun skips the model

# arXiv's category taxonomy (https://arxiv.org/category_taxonomy): the name, the description (as the
# page words it, trimmed to its topics), and the profile made from it: the topics it lists, first six
# at most, in its words (a bare generic word such as "techniques" or "structure" left out); the name
# where it lists none. Only the categories at least MIN_PAPERS fixture papers carry are used.
TAXONOMY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "astro-ph": (
        "Astrophysics",
        "(the archive; its subject classes:) Cosmology and Nongalactic Astrophysics; Earth and "
        "Planetary Astrophysics; Astrophysics of Galaxies; High Energy Astrophysical Phenomena; "
        "Instrumentation and Methods for Astrophysics; Solar and Stellar Astrophysics",
        ("cosmology", "earth and planetary astrophysics", "astrophysics of galaxies",
         "high energy astrophysical phenomena", "instrumentation and methods for astrophysics",
         "solar and stellar astrophysics"),
    ),
    "cond-mat.mes-hall": (
        "Mesoscale and Nanoscale Physics",
        "Semiconducting nanostructures: quantum dots, wires, and wells. Single electronics, "
        "spintronics, 2d electron gases, quantum Hall effect, nanotubes, graphene, plasmonic nanostructures",
        ("semiconducting nanostructures", "quantum dots", "quantum wires", "quantum wells",
         "single electronics", "spintronics"),
    ),
    "cond-mat.mtrl-sci": (
        "Materials Science",
        "Techniques, synthesis, characterization, structure. Structural phase transitions, mechanical "
        "properties, phonons. Defects, adsorbates, interfaces",
        ("structural phase transitions", "mechanical properties", "phonons", "defects",
         "adsorbates", "interfaces"),
    ),
    "cond-mat.soft": (
        "Soft Condensed Matter",
        "Membranes, polymers, liquid crystals, glasses, colloids, granular matter",
        ("membranes", "polymers", "liquid crystals", "glasses", "colloids", "granular matter"),
    ),
    "cond-mat.stat-mech": (
        "Statistical Mechanics",
        "Phase transitions, thermodynamics, field theory, non-equilibrium phenomena, renormalization "
        "group and scaling, integrable models, turbulence",
        ("phase transitions", "thermodynamics", "field theory", "non-equilibrium phenomena",
         "renormalization group and scaling", "integrable models"),
    ),
    "cond-mat.str-el": (
        "Strongly Correlated Electrons",
        "Quantum magnetism, non-Fermi liquids, spin liquids, quantum criticality, charge density "
        "waves, metal-insulator transitions",
        ("quantum magnetism", "non-fermi liquids", "spin liquids", "quantum criticality",
         "charge density waves", "metal-insulator transitions"),
    ),
    "cond-mat.supr-con": (
        "Superconductivity",
        "Superconductivity: theory, models, experiment. Superflow in helium",
        ("superconductivity", "superflow in helium"),
    ),
    "cs.AI": (
        "Artificial Intelligence",
        "Covers all areas of AI except Vision, Robotics, Machine Learning, Multiagent Systems, and "
        "Computation and Language (Natural Language Processing), which have separate subject areas. "
        "In particular, includes Expert Systems, Theorem Proving (although this may overlap with Logic "
        "in Computer Science), Knowledge Representation, Planning, and Uncertainty in AI.",
        ("artificial intelligence", "expert systems", "theorem proving", "knowledge representation",
         "planning", "uncertainty in ai"),
    ),
    "cs.CL": (
        "Computation and Language",
        "Covers natural language processing. ... natural-language issues broadly construed "
        "(natural-language processing, computational linguistics, speech, text retrieval, etc.)",
        ("natural language processing", "computational linguistics", "speech", "text retrieval"),
    ),
    "cs.IT": (
        "Information Theory",
        "Covers theoretical and experimental aspects of information theory and coding.",
        ("information theory", "coding"),
    ),
    "cs.LG": (
        "Machine Learning",
        "Papers on all aspects of machine learning research (supervised, unsupervised, reinforcement "
        "learning, bandit problems, and so on) including also robustness, explanation, fairness, and "
        "methodology.",
        ("machine learning", "supervised learning", "unsupervised learning", "reinforcement learning",
         "bandit problems", "fairness"),
    ),
    "cs.NE": (
        "Neural and Evolutionary Computing",
        "Covers neural networks, connectionism, genetic algorithms, artificial life, adaptive behavior.",
        ("neural networks", "connectionism", "genetic algorithms", "artificial life", "adaptive behavior"),
    ),
    "cs.SE": (
        "Software Engineering",
        "Covers design tools, software metrics, testing and debugging, programming environments, etc.",
        ("design tools", "software metrics", "testing and debugging", "programming environments"),
    ),
    "gr-qc": (
        "General Relativity and Quantum Cosmology",
        "Areas of gravitational physics, including experiments and observations related to the "
        "detection and interpretation of gravitational waves, experimental tests of gravitational "
        "theories, computational general relativity, relativistic astrophysics, solutions to "
        "Einstein's equations and their properties, alternative theories of gravity, classical and "
        "quantum cosmology, and quantum gravity.",
        ("gravitational physics", "gravitational waves", "experimental tests of gravitational theories",
         "computational general relativity", "relativistic astrophysics",
         "solutions to einstein's equations"),
    ),
    "hep-ex": (
        "High Energy Physics - Experiment",
        "Results from high-energy/particle physics experiments and prospects for future experimental "
        "results, including tests of the standard model, measurements of standard model parameters, "
        "searches for physics beyond the standard model, and astroparticle physics experimental results.",
        ("particle physics experiments", "tests of the standard model",
         "measurements of standard model parameters", "searches for physics beyond the standard model",
         "astroparticle physics"),
    ),
    "hep-ph": (
        "High Energy Physics - Phenomenology",
        "Theoretical particle physics and its interrelation with experiment. Prediction of particle "
        "physics observables: models, effective field theories, calculation techniques.",
        ("theoretical particle physics", "prediction of particle physics observables",
         "effective field theories"),
    ),
    "hep-th": (
        "High Energy Physics - Theory",
        "Formal aspects of quantum field theory. String theory, supersymmetry and supergravity.",
        ("quantum field theory", "string theory", "supersymmetry", "supergravity"),
    ),
    "math-ph": (
        "Mathematical Physics",
        "Articles in this category focus on areas of research that illustrate the application of "
        "mathematics to problems in physics, develop mathematical methods for such applications, or "
        "provide mathematically rigorous formulations of existing physical theories.",
        ("application of mathematics to problems in physics", "mathematical methods for physics",
         "mathematically rigorous formulations of physical theories"),
    ),
    "math.AG": (
        "Algebraic Geometry",
        "Algebraic varieties, stacks, sheaves, schemes, moduli spaces, complex geometry, quantum cohomology",
        ("algebraic varieties", "stacks", "sheaves", "schemes", "moduli spaces", "complex geometry"),
    ),
    "math.CA": (
        "Classical Analysis and ODEs",
        "Special functions, orthogonal polynomials, harmonic analysis, ODE's, differential relations, "
        "calculus of variations, approximations, expansions, asymptotics",
        ("special functions", "orthogonal polynomials", "harmonic analysis",
         "ordinary differential equations", "differential relations", "calculus of variations"),
    ),
    "math.CO": (
        "Combinatorics",
        "Discrete mathematics, graph theory, enumeration, combinatorial optimization, Ramsey theory, "
        "combinatorial game theory",
        ("discrete mathematics", "graph theory", "enumeration", "combinatorial optimization",
         "ramsey theory", "combinatorial game theory"),
    ),
    "math.DG": (
        "Differential Geometry",
        "Complex, contact, Riemannian, pseudo-Riemannian and Finsler geometry, relativity, gauge "
        "theory, global analysis",
        ("complex geometry", "contact geometry", "riemannian geometry", "finsler geometry",
         "gauge theory", "global analysis"),
    ),
    "math.FA": (
        "Functional Analysis",
        "Banach spaces, function spaces, real functions, integral transforms, theory of distributions, "
        "measure theory",
        ("banach spaces", "function spaces", "real functions", "integral transforms",
         "theory of distributions", "measure theory"),
    ),
    "math.GR": (
        "Group Theory",
        "Finite groups, topological groups, representation theory, cohomology, classification and structure",
        ("finite groups", "topological groups", "representation theory", "cohomology"),
    ),
    "math.NT": (
        "Number Theory",
        "Prime numbers, diophantine equations, analytic number theory, algebraic number theory, "
        "arithmetic geometry, Galois theory",
        ("prime numbers", "diophantine equations", "analytic number theory", "algebraic number theory",
         "arithmetic geometry", "galois theory"),
    ),
    "math.OA": (
        "Operator Algebras",
        "Algebras of operators on Hilbert space, C^*-algebras, von Neumann algebras, non-commutative geometry",
        ("algebras of operators on hilbert space", "c*-algebras", "von neumann algebras",
         "non-commutative geometry"),
    ),
    "math.PR": (
        "Probability",
        "Theory and applications of probability and stochastic processes: e.g. central limit "
        "theorems, large deviations, stochastic differential equations, models from statistical "
        "mechanics, queuing theory",
        ("probability", "stochastic processes", "central limit theorems", "large deviations",
         "stochastic differential equations", "models from statistical mechanics"),
    ),
    "math.QA": (
        "Quantum Algebra",
        "Quantum groups, skein theories, operadic and diagrammatic algebra, quantum field theory",
        ("quantum groups", "skein theories", "operadic algebra", "diagrammatic algebra",
         "quantum field theory"),
    ),
    "math.RA": (
        "Rings and Algebras",
        "Non-commutative rings and algebras, non-associative algebras, universal algebra and lattice "
        "theory, linear algebra, semigroups",
        ("non-commutative rings", "non-associative algebras", "universal algebra", "lattice theory",
         "linear algebra", "semigroups"),
    ),
    "math.RT": (
        "Representation Theory",
        "Linear representations of algebras and groups, Lie theory, associative algebras, multilinear algebra",
        ("linear representations of algebras and groups", "lie theory", "associative algebras",
         "multilinear algebra"),
    ),
    "nlin.PS": (
        "Pattern Formation and Solitons",
        "Pattern formation, coherent structures, solitons",
        ("pattern formation", "coherent structures", "solitons"),
    ),
    "nucl-ex": (
        "Nuclear Experiment",
        "Results from experimental nuclear physics including the areas of fundamental interactions, "
        "measurements at low- and medium-energy, as well as experimental aspects of heavy-ion physics.",
        ("experimental nuclear physics", "fundamental interactions",
         "measurements at low and medium energy", "heavy-ion physics"),
    ),
    "nucl-th": (
        "Nuclear Theory",
        "Theory of nuclear structure covering wide area from models of hadron structure to neutron "
        "stars. Nuclear equation of states at different external conditions. Theory of nuclear "
        "reactions including heavy-ion reactions at low and high energies.",
        ("nuclear structure", "hadron structure", "neutron stars", "nuclear equation of state",
         "nuclear reactions", "heavy-ion reactions"),
    ),
    "physics.comp-ph": (
        "Computational Physics",
        "All aspects of computational science applied to physics.",
        ("computational physics", "computational science applied to physics"),
    ),
    "physics.data-an": (
        "Data Analysis, Statistics and Probability",
        "Methods, software and hardware for physics data analysis: data processing and storage; "
        "measurement methodology; statistical and mathematical aspects such as parametrization and "
        "uncertainties.",
        ("physics data analysis", "data processing and storage", "measurement methodology",
         "parametrization and uncertainties"),
    ),
    "physics.optics": (
        "Optics",
        "Adaptive optics. Astronomical optics. Atmospheric optics. Biological optics. Electro-optics. "
        "Fiber optics. Holography. Image processing and pattern recognition. Imaging. Lasers. ...",
        ("adaptive optics", "astronomical optics", "atmospheric optics", "biological optics",
         "electro-optics", "fiber optics"),
    ),
    "quant-ph": ("Quantum Physics", "(no description)", ("quantum physics",)),
}  # fmt: skip
ALIASES = {"math.MP": "math-ph", "math.IT": "cs.IT", "stat.ML": "cs.LG"}  # one category, two names
# Set C: the interests a researcher holds, each a union of arXiv categories (a category ending in "."
# stands for all of its archive's subject classes), with a profile of the phrases such a reader types,
# taken from the taxonomy's names and descriptions of those categories. Written once, before any score
# was seen, and not tuned against them. Choices a reader could make otherwise:
# - gr-qc goes with astrophysics: its description is gravitational waves, relativistic astrophysics,
#   tests of gravity and cosmology, what an astronomer or cosmologist reads; its quantum-gravity
#   papers are mostly cross-listed to hep-th, so they count for high energy physics too.
# - nuclear physics stays apart from high energy physics (separate journals, separate readers);
#   cond-mat is one topic (a reader says "condensed matter", not "mtrl-sci"), statistical mechanics
#   included, as arXiv files it; cs.NE joins machine learning (its first topic is neural networks),
#   cs.MA joins artificial intelligence, math.DS joins nonlinear dynamics (nlin.CD's description
#   starts with "dynamical systems"), math-ph is its own field.
# - quant-ph has no description on the taxonomy page: its name and the field's usual names.
# - categories no reader-level interest holds as such are in no topic (physics.gen-ph, cs.CY, ...):
#   their papers are negatives for every topic.
READER_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "high energy physics": (
        ("hep-th", "hep-ph", "hep-ex", "hep-lat"),
        ("particle physics", "quantum field theory", "string theory", "supersymmetry",
         "physics beyond the standard model", "lattice field theory"),
    ),
    "astrophysics, cosmology and gravitation": (
        ("astro-ph", "astro-ph.", "gr-qc"),
        ("cosmology", "astrophysics of galaxies", "solar and stellar astrophysics",
         "high energy astrophysical phenomena", "gravitational waves", "general relativity"),
    ),
    "nuclear physics": (
        ("nucl-th", "nucl-ex"),
        ("nuclear structure", "nuclear reactions", "heavy-ion physics", "hadron structure",
         "nuclear equation of state"),
    ),
    "condensed matter": (
        ("cond-mat", "cond-mat."),
        ("condensed matter physics", "strongly correlated electrons", "superconductivity",
         "materials science", "mesoscale and nanoscale physics", "statistical mechanics"),
    ),
    "quantum physics and quantum information": (
        ("quant-ph",),
        ("quantum physics", "quantum information", "quantum computing", "quantum entanglement"),
    ),
    "mathematical physics": (
        ("math-ph",),
        ("mathematical physics", "mathematical methods for physics",
         "mathematically rigorous formulations of physical theories"),
    ),
    "optics and photonics": (
        ("physics.optics",),
        ("optics", "lasers", "photonics", "nonlinear optics", "fiber optics"),
    ),
    "computational physics": (
        ("physics.comp-ph",),
        ("computational physics", "computational science applied to physics"),
    ),
    "physics data analysis": (
        ("physics.data-an",),
        ("physics data analysis", "data processing and storage", "measurement methodology"),
    ),
    "nonlinear dynamics": (
        ("nlin.", "math.DS"),
        ("nonlinear dynamics", "dynamical systems", "chaos", "solitons", "pattern formation",
         "integrable systems"),
    ),
    "algebra": (
        ("math.AG", "math.RA", "math.RT", "math.QA", "math.GR", "math.AC", "math.KT", "math.CT"),
        ("algebraic geometry", "representation theory", "group theory", "quantum groups",
         "commutative algebra", "rings and algebras"),
    ),
    "analysis": (
        ("math.CA", "math.FA", "math.OA", "math.AP", "math.CV"),
        ("functional analysis", "harmonic analysis", "operator algebras", "partial differential equations",
         "special functions", "complex variables"),
    ),
    "geometry and topology": (
        ("math.DG", "math.GT", "math.AT", "math.SG", "math.MG", "math.GN"),
        ("differential geometry", "riemannian geometry", "geometric topology", "algebraic topology",
         "symplectic geometry"),
    ),
    "combinatorics": (
        ("math.CO", "cs.DM"),
        ("combinatorics", "graph theory", "discrete mathematics", "enumeration"),
    ),
    "number theory": (
        ("math.NT",),
        ("number theory", "prime numbers", "diophantine equations", "analytic number theory",
         "algebraic number theory", "arithmetic geometry"),
    ),
    "probability and statistics": (
        ("math.PR", "math.ST", "stat.AP", "stat.ME", "stat.CO", "stat.TH"),
        ("probability", "stochastic processes", "statistics", "statistical methodology",
         "applied statistics"),
    ),
    "information theory": (
        ("cs.IT",),
        ("information theory", "coding theory"),
    ),
    "quantitative biology": (
        ("q-bio.",),
        ("computational biology", "molecular networks", "populations and evolution", "biomolecules"),
    ),
    "software engineering": (
        ("cs.SE",),
        ("software engineering", "software metrics", "testing and debugging", "programming environments"),
    ),
    "artificial intelligence": (
        ("cs.AI", "cs.MA"),
        ("artificial intelligence", "knowledge representation", "planning", "theorem proving",
         "multiagent systems", "expert systems"),
    ),
    "machine learning": (
        ("cs.LG", "cs.NE"),
        ("machine learning", "supervised learning", "unsupervised learning", "reinforcement learning",
         "neural networks"),
    ),
    "natural language processing": (
        ("cs.CL",),
        ("natural language processing", "computational linguistics", "speech recognition"),
    ),
    "computer vision": (("cs.CV",), ("computer vision", "image recognition", "object detection")),
    "robotics": (("cs.RO",), ("robotics", "robot manipulation", "motion planning")),
    "security and cryptography": (("cs.CR",), ("computer security", "cryptography", "privacy")),
}  # fmt: skip
MIN_PAPERS = 4
MIN_TITLES = 6
# "matches" = the calibrated probability is at least one half (log-odds 0): more likely on-topic
# than not. The fit is on each profile's best phrase, so that probability is the profile's.
MATCH_LOG_ODDS = 0.0
TARGET_PRECISION = 0.9  # also printed: the lowest threshold whose train precision reaches this
ROUNDS = 4  # refits, each on the best phrase of every profile under the previous fit


@dataclass
class LabelledSet:
    """Profiles (phrase lists) and papers, with what the matcher sees and the labels."""

    name: str
    profiles: list[tuple[str, ...]]
    ids: list[str]
    texts: list[str]  # what the matcher reads
    embed: list[str]  # what the model embeds (the same text, or with the title in front)
    positive: Any  # (papers, profiles) bool
    known: Any  # (papers, profiles) bool: pairs that count

    @property
    def phrases(self) -> list[str]:
        return list(dict.fromkeys(p for profile in self.profiles for p in profile))


def category_sets() -> tuple[LabelledSet, LabelledSet]:
    """Set A twice: positives any category the paper carries, and primary only."""
    import numpy as np

    from papertide.embeddings.encoder import paper_text

    papers = _fixture_papers()
    held = [[ALIASES.get(c, c) for c in p.categories] for p in papers]
    counts = {c: sum(c in h for h in held) for c in TAXONOMY}
    chosen = [c for c in TAXONOMY if counts[c] >= MIN_PAPERS]
    anywhere = np.array([[c in h for c in chosen] for h in held])
    primary = np.array([[c == h[0] for c in chosen] for h in held])
    any_set = LabelledSet(
        name="A. arXiv categories, any",
        profiles=[TAXONOMY[c][2] for c in chosen],
        ids=[p.id for p in papers],
        texts=[f"{p.title} {p.abstract}" for p in papers],
        embed=[paper_text(p.title, p.abstract) for p in papers],
        positive=anywhere,
        known=np.ones_like(anywhere),
    )
    return any_set, replace(
        any_set, name="A. arXiv categories, primary", positive=primary, known=primary | ~anywhere
    )


def topic_set() -> LabelledSet:
    """Set C: the same papers, reader-level topics (READER_TOPICS) as profiles; true when the paper
    carries any category of the topic. Topics that fewer than MIN_PAPERS papers carry are left out."""
    import numpy as np

    from papertide.embeddings.encoder import paper_text

    papers = _fixture_papers()
    held = [{ALIASES.get(c, c) for c in p.categories} for p in papers]

    def in_topic(categories: set[str], topic: str) -> bool:
        members = READER_TOPICS[topic][0]
        return any(c in members or c.split(".")[0] + "." in members for c in categories)

    chosen = [t for t in READER_TOPICS if sum(in_topic(h, t) for h in held) >= MIN_PAPERS]
    positive = np.array([[in_topic(h, t) for t in chosen] for h in held])
    return LabelledSet(
        name="C. reader topics",
        profiles=[READER_TOPICS[t][1] for t in chosen],
        ids=[p.id for p in papers],
        texts=[f"{p.title} {p.abstract}" for p in papers],
        embed=[paper_text(p.title, p.abstract) for p in papers],
        positive=positive,
        known=np.ones_like(positive),
    )


def _fixture_papers() -> list[Any]:
    """Every recorded paper with categories and an abstract, once per arXiv id."""
    from papertide.ingest.sources import arxiv_api, arxiv_oai, arxiv_rss, kaggle
    from papertide.ingest.sources.base import SourceError

    found: list[Any] = []
    snapshot = FIXTURES / "kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.first200.jsonl"
    found += list(kaggle.iter_records(snapshot.read_text().splitlines(), location=snapshot.name))
    for path in sorted((FIXTURES / "arxiv_api").iterdir()):
        raw = (
            json.loads(path.read_text())["body"].encode("latin-1")
            if path.suffix == ".json"
            else path.read_bytes()
        )
        try:
            found += arxiv_api.parse_feed(raw, location=path.name).result.records
        except SourceError:
            continue  # the recorded error responses
    for path in sorted((FIXTURES / "arxiv_oai_pmh").glob("*.xml")):
        try:
            found += arxiv_oai.parse_list_records(path.read_bytes(), location=path.name).result.records
        except SourceError:
            continue
    for path in sorted((FIXTURES / "arxiv_rss").glob("*.xml")):
        found += [item.paper for item in arxiv_rss.parse_feed(path.read_bytes(), location=path.name).items]
    papers: dict[str, Any] = {}
    for paper in found:
        if getattr(paper, "categories", None) and paper.abstract and paper.id not in papers:
            papers[paper.id] = paper
    return list(papers.values())


def title_set(limit: int | None) -> LabelledSet:
    """Set B: the bundled sample, keyword phrases, labels from the titles the matcher does not see."""
    import numpy as np

    from papertide.digests.matching import terms

    items: dict[str, dict[str, Any]] = {}
    for day in json.loads(gzip.decompress(SAMPLE.read_bytes())).values():
        for item in day:
            items.setdefault(item["paper"]["id"], item["paper"])
    papers = list(items.values())
    if limit is not None:
        papers = random.Random(1).sample(papers, limit)
    titles = [terms(p["title"]) for p in papers]
    phrases = _keyword_phrases(papers, titles)
    positive = np.zeros((len(papers), len(phrases)), dtype=bool)
    known = np.ones_like(positive)
    for j, phrase in enumerate(phrases):
        words = terms(phrase)
        for i, title in enumerate(titles):
            positive[i, j] = _written(words, title)
            known[i, j] = positive[i, j] or not set(words) & set(title)
    abstracts = [p["summary"] for p in papers]
    return LabelledSet(
        "B. titles held out",
        [(p,) for p in phrases],
        [p["id"] for p in papers],
        abstracts,
        abstracts,
        positive,
        known,
    )


def _keyword_phrases(papers: list[dict[str, Any]], titles: list[list[str]]) -> list[str]:
    """Keywords of 2-4 words written in at least MIN_TITLES titles, most used first, one per stem list."""
    from collections import Counter

    from papertide.digests.matching import terms

    keywords = Counter(k.lower() for p in papers for k in set(p.get("ai_keywords") or []))
    chosen: dict[tuple[str, ...], str] = {}
    for keyword, _ in sorted(keywords.items(), key=lambda kv: (-kv[1], kv[0])):
        words = tuple(terms(keyword))
        if not 2 <= len(words) <= 4 or words in chosen:
            continue
        if sum(_written(words, t) for t in titles) >= MIN_TITLES:
            chosen[words] = keyword
    return list(chosen.values())


def _written(words: Sequence[str], text: Sequence[str]) -> bool:
    k = len(words)
    return any(list(text[i : i + k]) == list(words) for i in range(len(text) - k + 1))


def embed(texts: list[str], *, use_cache: bool) -> Any:
    """Unit vectors from the configured model, cached by content in the temp folder."""
    import numpy as np

    from papertide.embeddings.encoder import get_encoder

    encoder = get_encoder()
    key = hashlib.sha256("\n".join([encoder.name, *texts]).encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"papertide-bench-interest-{key}.npy"
    if use_cache and cache.exists():
        return np.load(cache)
    start = time.perf_counter()
    vectors = encoder.encode(texts)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - start:.1f}s", flush=True)
    if use_cache:
        np.save(cache, vectors)
    return vectors


# ---- one split: the evidence of every (paper, phrase) pair against the train papers -----------------


@dataclass
class Embedded:
    data: LabelledSet
    vectors: Any  # (papers, dim)
    phrase_vectors: Any  # (phrases, dim), in data.phrases order


@dataclass
class Split:
    """One labelled set under one split: train/test papers and profiles, and every pair's evidence."""

    data: LabelledSet
    train: Any  # paper indices
    test: Any
    train_profiles: Any  # profile indices
    test_profiles: Any
    features: Any  # (papers, phrases, features): the parts of the score, in matching.FEATURES order
    members: list[Any]  # per profile, the indices of its phrases
    cosine: Any  # (papers, phrases)


def halves(n: int, rng: Any) -> tuple[Any, Any]:
    import numpy as np

    order = rng.permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def split_all(embedded: list[Embedded], seed: int) -> list[Split]:
    """Split each set's papers and profiles in half; read every pair against the train papers of all."""
    import numpy as np

    from papertide.digests.matching import FEATURES, Background, PaperText, PhraseMatcher

    parts = []
    for e in embedded:  # sets with the same papers (A and C) get the same halves of them
        paper_halves = halves(len(e.data.ids), np.random.default_rng([seed, len(e.data.ids)]))
        profiles = halves(
            len(e.data.profiles), np.random.default_rng([seed, len(e.data.ids), len(e.data.profiles)])
        )
        parts.append((*paper_halves, *profiles))
    background: dict[str, tuple[Any, str]] = {}
    for e, (train, *_) in zip(embedded, parts, strict=True):
        for i in train:
            background.setdefault(e.data.ids[i], (e.vectors[i], e.data.texts[i]))
    rows = list(background.values())
    matcher = PhraseMatcher(Background.build(np.stack([r[0] for r in rows]), [r[1] for r in rows]))
    splits = []
    for e, (train, test, train_profiles, test_profiles) in zip(embedded, parts, strict=True):
        phrases = e.data.phrases
        papers = [PaperText(i, t) for i, t in zip(e.data.ids, e.data.texts, strict=True)]
        evidence = matcher.evidence(phrases, e.phrase_vectors, papers, e.vectors)
        position = {p: j for j, p in enumerate(phrases)}
        splits.append(
            Split(
                e.data,
                train,
                test,
                train_profiles,
                test_profiles,
                np.stack([getattr(evidence, f) for f in FEATURES], axis=2),
                [np.asarray([position[p] for p in profile]) for profile in e.data.profiles],
                evidence.cosine,
            )
        )
    return splits


# ---- profile level: a paper matches a profile when its best phrase does ------------------------------


def best_phrase(s: Split, score: Any) -> tuple[Any, Any]:
    """(papers, profiles) of the best phrase's score and index, for pair scores (papers, phrases)."""
    import numpy as np

    best = np.stack([m[np.argmax(score[:, m], axis=1)] for m in s.members], axis=1)
    return np.take_along_axis(score, best, axis=1), best


def pairs(s: Split, rows: Any, columns: Any, values: Any) -> Any:
    """The counted (paper, profile) pairs of rows x columns of a (papers, profiles, ...) array, flat."""
    known = s.data.known[rows][:, columns]
    return values[rows][:, columns][known]


def labels(s: Split, rows: Any, columns: Any) -> Any:
    return pairs(s, rows, columns, s.data.positive)


def linear(features: Any, intercept: float, coefficients: Sequence[float]) -> Any:
    import numpy as np

    return intercept + features @ np.asarray(coefficients, dtype=features.dtype)


def fit(splits: list[Split]) -> tuple[float, list[float], float]:
    """(intercept, coefficients, threshold), fitted on train papers x train profiles of the given sets.

    Round one fits every phrase of a profile against the profile's label; each later round refits on
    the best phrase of each profile under the previous fit, since that phrase alone makes the claim.
    """
    import numpy as np

    def table(choose: Any) -> tuple[Any, Any]:
        x, y = [], []
        for s in splits:
            rows, columns = s.train, s.train_profiles
            for j in columns:
                known = s.data.known[rows, j]
                chosen = choose(s, rows, j)  # (rows, k) phrase indices
                for k in range(chosen.shape[1]):
                    x.append(s.features[rows[known], chosen[known, k]])
                    y.append(s.data.positive[rows[known], j])
        return np.concatenate(x).astype(np.float64), np.concatenate(y).astype(np.float64)

    x, y = table(lambda s, rows, j: np.tile(s.members[j], (len(rows), 1)))
    intercept, coefficients = _nonnegative_logistic(x, y)
    for _ in range(ROUNDS - 1):

        def best(
            s: Split, rows: Any, j: int, intercept: float = intercept, coefficients: Any = coefficients
        ) -> Any:
            score = linear(s.features[rows][:, s.members[j]], intercept, coefficients)
            return s.members[j][np.argmax(score, axis=1)][:, None]

        x, y = table(best)
        intercept, coefficients = _nonnegative_logistic(x, y)
    return intercept, coefficients, MATCH_LOG_ODDS


def precise_threshold(splits: list[Split], intercept: float, coefficients: Sequence[float]) -> float:
    """The lowest score whose train precision (train papers x train profiles) reaches TARGET_PRECISION."""
    import numpy as np

    score = np.concatenate(
        [pairs(s, s.train, s.train_profiles, profile_scores(s, intercept, coefficients)) for s in splits]
    )
    truth = np.concatenate([labels(s, s.train, s.train_profiles) for s in splits])
    return lowest_threshold(score, truth, TARGET_PRECISION)


def profile_scores(s: Split, intercept: float, coefficients: Sequence[float]) -> Any:
    return best_phrase(s, linear(s.features, intercept, coefficients))[0]


def _nonnegative_logistic(x: Any, y: Any) -> tuple[float, list[float]]:
    """Logistic regression with an intercept, each coefficient at zero or above (a feature whose
    coefficient would go negative is dropped and the rest refitted): more evidence never counts against."""
    import numpy as np

    active = list(range(x.shape[1]))
    while True:
        w = _logistic(np.hstack([x[:, active], np.ones((len(x), 1))]), y)
        if (w[:-1] >= 0).all():
            coefficients = [0.0] * x.shape[1]
            for k, a in enumerate(active):
                coefficients[a] = float(w[k])
            return float(w[-1]), coefficients
        active.pop(int(np.argmin(w[:-1])))


def _logistic(x: Any, y: Any, *, l2: float = 1e-3, steps: int = 30) -> Any:
    """Newton's method for L2-regularised logistic regression (a handful of features)."""
    import numpy as np

    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + l2 * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def lowest_threshold(score: Any, positive: Any, precision: float) -> float:
    """The lowest score whose claims (score >= it) reach `precision`; the highest score if none does."""
    import numpy as np

    order = np.argsort(-score, kind="stable")
    hits = np.cumsum(positive[order])
    reached = np.flatnonzero(hits / np.arange(1, len(order) + 1) >= precision)
    return float(score[order][reached[-1]]) if len(reached) else float(score.max())


def precision_recall(claimed: Any, positive: Any) -> tuple[float, float]:
    hits = int((claimed & positive).sum())
    return hits / max(int(claimed.sum()), 1), hits / max(int(positive.sum()), 1)


def best_precision_at(score: Any, positive: Any, recall: float) -> float:
    """The best precision of any threshold whose recall is at least `recall`."""
    import numpy as np

    order = np.argsort(-score)
    hits = np.cumsum(positive[order])
    precision = hits / np.arange(1, len(order) + 1)
    reached = hits / max(int(positive.sum()), 1) >= recall
    return float(precision[reached].max()) if reached.any() else 0.0


# ---- the report ---------------------------------------------------------------------------------------

Rule = tuple[float, Sequence[float], float]  # (intercept, coefficients, threshold)
RECALL_FLOOR = 0.6  # the target: precision >= TARGET_PRECISION at recall >= this


@dataclass
class Row:
    """One set's held-out pairs: (precision, recall) and the best precision at recall >= 0.6 per rule."""

    name: str
    pairs: int
    true: int
    claims: dict[str, tuple[float, float]]  # "old" first, then the rules in the order given
    best: dict[str, float]


def held_out(splits: list[Split], rules: dict[str, Rule], *, profiles: str) -> list[Row]:
    """Per set, on test papers x (all | test) profiles: the old rule (best phrase's cosine >= 0.30)
    and each given rule (best phrase's score >= its threshold)."""
    from papertide.digests.matching import old_rule_matches

    rows = []
    for s in splits:
        columns = list(s.test_profiles if profiles == "test" else range(len(s.data.profiles)))
        y = labels(s, s.test, columns)
        cos = pairs(s, s.test, columns, best_phrase(s, s.cosine)[0])
        claims = {"old": precision_recall(old_rule_matches(cos), y)}
        best = {"old": best_precision_at(cos, y, RECALL_FLOOR)}
        for name, (intercept, coefficients, threshold) in rules.items():
            score = pairs(s, s.test, columns, profile_scores(s, intercept, coefficients))
            claims[name] = precision_recall(score >= threshold, y)
            best[name] = best_precision_at(score, y, RECALL_FLOOR)
        rows.append(Row(s.data.name, len(y), int(y.sum()), claims, best))
    return rows


def print_rows(title: str, rows: list[Row]) -> None:
    rules = list(rows[0].claims)
    print(f"\n{title}")
    print(
        f"{'set':<30}{'pairs':>7}{'true':>6}"
        + "".join(f" | {r[:17]:>17}" for r in rules)
        + " | best P at R >= 0.6"
    )
    print(f"{'':<30}{'':>7}{'':>6}" + " |  precision recall" * len(rules) + " | " + " / ".join(rules))
    for row in rows:
        cells = "".join(f" | {row.claims[r][0]:>10.3f}{row.claims[r][1]:>7.3f}" for r in rules)
        print(
            f"{row.name:<30}{row.pairs:>7}{row.true:>6}{cells} | "
            + " / ".join(f"{row.best[r]:.3f}" for r in rules)
        )


def mean_rows(by_seed: list[list[Row]]) -> list[Row]:
    """Each set's row with every number the mean over the seeds."""
    import numpy as np

    out = []
    for k, first in enumerate(by_seed[0]):
        rows = [seed[k] for seed in by_seed]
        claims = {
            r: (
                float(np.mean([x.claims[r][0] for x in rows])),
                float(np.mean([x.claims[r][1] for x in rows])),
            )
            for r in first.claims
        }
        best = {r: float(np.mean([x.best[r] for x in rows])) for r in first.best}
        out.append(Row(first.name, first.pairs, first.true, claims, best))
    return out


def print_seeds(title: str, by_seed: list[list[Row]]) -> None:
    import numpy as np

    print(f"\n{title}: mean [min, max] over {len(by_seed)} splits, each learned rule fitted on its own split")

    def cell(values: list[float]) -> str:
        return f"{np.mean(values):.3f} [{min(values):.2f}, {max(values):.2f}]"

    print(f"{'set':<30} {'rule':<26} | {'precision':>18} {'recall':>18} | {'best P at R >= 0.6':>18}")
    for k, first in enumerate(by_seed[0]):
        rows = [seed[k] for seed in by_seed]
        for r in first.claims:
            print(
                f"{first.name:<30} {r:<26} | {cell([x.claims[r][0] for x in rows]):>18} "
                f"{cell([x.claims[r][1] for x in rows]):>18} | {cell([x.best[r] for x in rows]):>18}"
            )


def verdict(rows: list[Row], *, target: str, also: str) -> None:
    """The shipping principle, on mean held-out numbers: precision >= 0.9 at recall >= 0.6 on `target`,
    and above the old rule on both precision and recall on `target` and `also`."""
    by_name = {r.name: r for r in rows}
    print(
        f"\nthe shipping principle (means above): P >= {TARGET_PRECISION} and R >= {RECALL_FLOOR} on {target}; "
        f"P and R above the old rule on {target} and {also}"
    )
    for rule in list(rows[0].claims)[1:]:
        checks = []
        p, r = by_name[target].claims[rule]
        checks.append(f"target on C {'met' if p >= TARGET_PRECISION and r >= RECALL_FLOOR else 'missed'}")
        for name in (target, also):
            (p, r), (p0, r0) = by_name[name].claims[rule], by_name[name].claims["old"]
            checks.append(f"{name[:1]}: P {'>' if p > p0 else '<='} old, R {'>' if r > r0 else '<='} old")
        print(f"  {rule:<26} " + "; ".join(checks))


# ---- what the labels allow: a classifier trained on them -------------------------------------------

REFERENCE_FOLDS = 10
REFERENCE_RIDGES = (0.1, 0.3, 1.0)


def supervised_reference(e: Embedded) -> dict[float, float]:
    """Best precision at recall >= 0.6 of a classifier that has *seen the labels*: per profile, kernel
    ridge regression on the papers' centred embeddings and the tf-idf of the text the matcher reads,
    10-fold (each paper scored by a model trained on the other nine tenths, about 220 labelled papers of
    set C per profile), for each ridge in REFERENCE_RIDGES. A phrase matcher sees two to six phrases,
    not hundreds of labelled papers, so this is an optimistic reference for how separable the labels
    are with this model, not a rule papertide could ship."""
    import math
    from collections import Counter

    import numpy as np

    from papertide.digests.matching import terms

    vectors = np.asarray(e.vectors, dtype=np.float64)
    vectors = vectors - vectors.mean(axis=0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    counts = [Counter(terms(text)) for text in e.data.texts]
    frequency = Counter(word for c in counts for word in c)
    column = {word: k for k, word in enumerate(sorted(frequency))}
    tfidf = np.zeros((len(counts), len(column)))
    for i, c in enumerate(counts):
        for word, n in c.items():
            tfidf[i, column[word]] = (1 + math.log(n)) * math.log(len(counts) / frequency[word])
    tfidf /= np.maximum(np.linalg.norm(tfidf, axis=1, keepdims=True), 1e-12)
    kernel = vectors @ vectors.T + tfidf @ tfidf.T
    fold = np.random.default_rng(0).integers(0, REFERENCE_FOLDS, len(counts))
    positive = e.data.positive.astype(np.float64)
    best = {}
    for ridge in REFERENCE_RIDGES:
        score = np.zeros_like(positive)
        for f in range(REFERENCE_FOLDS):
            train, test = fold != f, fold == f
            prior = positive[train].mean(axis=0)
            weights = np.linalg.solve(
                kernel[np.ix_(train, train)] + ridge * np.eye(int(train.sum())), positive[train] - prior
            )
            score[test] = kernel[np.ix_(test, train)] @ weights + prior
        known = e.data.known.astype(bool)
        best[ridge] = best_precision_at(score[known], e.data.positive[known], RECALL_FLOOR)
    return best


def timing() -> None:
    """10,000 readers of 1-3 phrases (from 600 distinct ones) against one pool, as a run calls it."""
    import numpy as np

    from papertide.digests.matching import Background, PaperText, PhraseMatcher

    rng = np.random.default_rng(0)
    texts = json.loads(gzip.decompress(SAMPLE.read_bytes()))
    abstracts = [i["paper"]["title"] + " " + i["paper"]["summary"] for day in texts.values() for i in day]
    vocabulary = sorted({w for a in abstracts[:200] for w in a.lower().split() if w.isalpha() and len(w) > 5})

    def unit(n: int) -> Any:
        v = rng.normal(size=(n, 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    start = time.perf_counter()
    background = Background.build(unit(2000), [abstracts[i % len(abstracts)] for i in range(2000)])
    built = time.perf_counter()
    pool = [PaperText(f"p{i}", abstracts[-1 - i]) for i in range(500)]
    pool_vectors = unit(500)
    phrases = [" ".join(rng.choice(vocabulary, size=2)) for _ in range(600)]
    phrase_vectors = dict(zip(phrases, unit(len(phrases)), strict=True))
    readers = [list(rng.choice(phrases, size=rng.integers(1, 4), replace=False)) for _ in range(10_000)]
    matcher = PhraseMatcher(background)
    first = time.perf_counter()
    for reader in readers:
        matcher.scores(reader, np.stack([phrase_vectors[p] for p in reader]), pool, pool_vectors)
    done = time.perf_counter()
    print(
        f"\ntiming: 10,000 readers x 1-3 phrases (600 distinct), pool of 500, background of 2,000: "
        f"{done - first:.2f}s ({10_000 / (done - first):,.0f} readers/s), after building the background "
        f"once in {built - start:.2f}s"
    )


def rules_for(splits: list[Split], fitted_on: Sequence[int]) -> tuple[dict[str, Rule], Rule]:
    """The rules scored beside the old one: the shipped constants, and a calibration fitted on these
    splits' train pairs of the `fitted_on` sets, at probability one half and at the lowest threshold
    whose train precision reaches 0.9. Also returns the fit."""
    from papertide.digests import matching

    train = [splits[k] for k in fitted_on]
    intercept, coefficients, threshold = fit(train)
    precise = precise_threshold(train, intercept, coefficients)
    return {
        "shipped": (matching.INTERCEPT, matching.COEFFICIENTS, matching.MATCHES),
        "learned, p >= 1/2": (intercept, coefficients, threshold),
        "learned, train P >= 0.9": (intercept, coefficients, precise),
    }, (intercept, coefficients, precise)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="300 sample papers for set B, one split, no timing"
    )
    parser.add_argument("--seeds", type=int, default=10, help="splits to repeat the fit on (default 10)")
    parser.add_argument(
        "--no-cache", action="store_true", help="embed again instead of reading the temp cache"
    )
    args = parser.parse_args()
    from papertide.digests import matching

    sets = [*category_sets(), title_set(300 if args.quick else None), topic_set()]
    for data in sets:
        print(
            f"{data.name}: {len(data.ids)} papers, {len(data.profiles)} profiles of {len(data.phrases)} phrases, "
            f"{int(data.known.sum())} pairs, {int((data.positive & data.known).sum())} true"
        )
    embedded = [
        Embedded(
            d, embed(d.embed, use_cache=not args.no_cache), embed(d.phrases, use_cache=not args.no_cache)
        )
        for d in sets
    ]
    # C and B: the sets whose labels a reader would sign; A is the same papers as C, labelled by
    # single categories, printed for context.
    fitted_on = [3, 2]
    splits = split_all(embedded, seed=0)
    rules, (intercept, coefficients, precise) = rules_for(splits, fitted_on)
    names = ", ".join(matching.FEATURES)
    print(
        f"\nlearned on seed 0's train pairs of C and B ({names}): INTERCEPT {intercept:.2f}, "
        f"COEFFICIENTS ({', '.join(f'{c:.2f}' for c in coefficients)}); MATCHES {MATCH_LOG_ODDS:.2f} "
        f"(probability 1/2) or {precise:.2f} (train precision >= {TARGET_PRECISION})"
    )
    print(
        f"shipped in matching.py: INTERCEPT {matching.INTERCEPT:.2f}, "
        f"COEFFICIENTS ({', '.join(f'{c:.2f}' for c in matching.COEFFICIENTS)}), MATCHES {matching.MATCHES:.2f}"
    )
    print_rows("held out, seed 0: test papers x all profiles", held_out(splits, rules, profiles="all"))
    print_rows(
        "held out, seed 0: test papers x test profiles (neither seen by the fit)",
        held_out(splits, rules, profiles="test"),
    )
    if not args.quick and args.seeds > 1:
        by_seed: dict[str, list[list[Row]]] = {"all": [], "test": []}
        for seed in range(args.seeds):
            s = split_all(embedded, seed=seed)
            own, _ = rules_for(s, fitted_on)
            for profiles in by_seed:
                by_seed[profiles].append(held_out(s, own, profiles=profiles))
        print_seeds("held out, test papers x all profiles", by_seed["all"])
        print_seeds("held out, test papers x test profiles", by_seed["test"])
        verdict(mean_rows(by_seed["all"]), target=sets[3].name, also=sets[2].name)
    print(
        f"\nwhat the labels allow: best precision at recall >= {RECALL_FLOOR} of a classifier trained on them "
        f"({REFERENCE_FOLDS}-fold kernel ridge on embeddings + tf-idf; ridge "
        + " / ".join(f"{r:g}" for r in REFERENCE_RIDGES)
        + ")"
    )
    for e in embedded:
        reference = supervised_reference(e)
        print(f"  {e.data.name:<30} " + " / ".join(f"{reference[r]:.3f}" for r in REFERENCE_RIDGES))
    if not args.quick:
        timing()


if __name__ == "__main__":
    main()
