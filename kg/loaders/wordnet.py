"""The WordNet 3.0 database files (``data.noun`` ..., Debian's ``wordnet-base``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..graph import GraphBuilder, KnowledgeGraph
from ._common import (
    INVERSE_PREFIX,
    LoadReport,
    _closest,
    _finish_report,
    _malformed,
    _one_or_list,
    _PathLike,
    _sorted_graph,
)

# ----------------------------------------------------------------------------- WordNet
#: WordNet 3.0 pointer symbols (wninput(5WN)) -> relation names. Keys are (symbol, pos) for
#: the few symbols whose meaning depends on the part of speech, else symbol.
WORDNET_POINTERS: dict[str, str] = {
    "!": "antonym",
    "@": "hypernym",
    "@i": "instance_hypernym",
    "~": "hyponym",
    "~i": "instance_hyponym",
    "#m": "member_holonym",
    "#s": "substance_holonym",
    "#p": "part_holonym",
    "%m": "member_meronym",
    "%s": "substance_meronym",
    "%p": "part_meronym",
    "=": "attribute",
    "+": "derivation",
    ";c": "domain_topic",
    "-c": "member_of_domain_topic",
    ";r": "domain_region",
    "-r": "member_of_domain_region",
    ";u": "domain_usage",
    "-u": "member_of_domain_usage",
    "*": "entailment",
    ">": "cause",
    "^": "also_see",
    "$": "verb_group",
    "&": "similar_to",
    "<": "participle",
    "\\": "pertainym",  # adjective: pertains to noun; adverb: derived from adjective
}

_WN_FILES = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "r": "data.adv"}
_WN_INDEX = {"n": "index.noun", "v": "index.verb", "a": "index.adj", "r": "index.adv"}
#: Where Debian's ``wordnet-base`` puts the WordNet 3.0 database files.
DEFAULT_WORDNET = "/usr/share/wordnet"


def _parts_of_speech(pos: Iterable[str] | str) -> tuple[str, ...]:
    """``pos`` as a tuple of WordNet file letters; one letter (``"n"``) is ``("n",)``."""
    out = _one_or_list(pos, "pos")
    for p in out:
        if p not in _WN_FILES:
            raise ValueError(f"unknown part of speech {p!r} in pos={pos!r}; use some of 'n', 'v', 'a', 'r' "
                             "(a list, e.g. pos=['n', 'v'], or one letter)")
    return out


def wordnet_senses(path: _PathLike | None = None,
                   pos: Iterable[str] | str = ("n", "v", "a", "r")) -> dict[tuple[str, str], list[int]]:
    """The senses of every WordNet lemma, from the ``index.<pos>`` files (wndb(5WN)).

    Returns ``{(pos, lemma): [synset offset, ...]}`` with the offsets in WordNet's sense
    order (sense 1 first: the most frequent sense in the tagged corpora). ``pos`` is the
    letter of the data file (``n``, ``v``, ``a``, ``r``), ``lemma`` is written as in the
    index (lower case, ``_`` between words: ``ice_cream``). ``(pos, offset)`` names a
    synset of ``data.<pos>`` (see :func:`kgfuse.kg.corpora.wordnet_glosses`).

    >>> wordnet_senses(pos="n")[("n", "plate")][:2]  # doctest: +SKIP
    [3528901, 3959936]

    Raises:
        FileNotFoundError: an ``index.<pos>`` file is missing.
    """
    root = Path(path if path is not None else DEFAULT_WORDNET)
    out: dict[tuple[str, str], list[int]] = {}
    for p in _parts_of_speech(pos):
        ipath = root / _WN_INDEX[p]
        if not ipath.is_file():
            raise FileNotFoundError(f"WordNet index file not found: {ipath} (Debian's 'wordnet-base' puts the "
                                    "index.* and data.* files in /usr/share/wordnet)")
        with open(ipath, "rb") as f:
            for raw in f:
                if raw[:2] == b"  ":
                    continue
                fs = raw.decode("utf-8", "replace").split()
                try:
                    n_syn = int(fs[2])
                    offs = [int(o) for o in fs[-n_syn:]]
                except (IndexError, ValueError):
                    continue
                out[(p, fs[0])] = offs
    return out


def _clean_lemma(word: str) -> str:
    # adjective markers: galore(ip), proud(p), elect(a)
    if word.endswith(")"):
        k = word.rfind("(")
        if k > 0:
            word = word[:k]
    return word.lower().replace(" ", "_")


def from_wordnet(
    path: _PathLike | None = None,
    concepts: str = "lemmas",
    *,
    pos: Iterable[str] | str = ("n", "v", "a", "r"),
    relations: Iterable[str] | str | None = None,
    synonyms: bool = True,
    add_inverse: bool = False,
    strict: bool = False,
    allow_empty: bool = False,
    report: Callable[[LoadReport], None] | None = None,
) -> KnowledgeGraph:
    """Parse the WordNet 3.0 database files (``data.noun``, ``data.verb``, ``data.adj``,
    ``data.adv``; format wndb(5WN)) into a graph.

    Concepts:

    - ``"lemmas"`` (default): one concept per lemma text, lowercased, spaces and WordNet's
      underscores as ``_`` and adjective markers such as ``(p)`` dropped, so names match
      ConceptNet-style names (``ice_cream``). All senses of a word share one concept. A
      *semantic* pointer (between synsets, e.g. hypernym) links every lemma of the source
      synset to every lemma of the target synset (the lemma cross product; WordNet synsets
      have 1.8 lemmas on average, so this stays near 1M edges). A *lexical* pointer
      (between two specific words, e.g. antonym, derivation, pertainym) links just those two
      lemmas. With ``synonyms`` the lemmas of one synset are linked pairwise by ``synonym``
      (both directions), so that linking a word reaches its synonyms.
    - ``"synsets"``: one concept per synset, named as NLTK does (``dog.n.01``: first lemma,
      part of speech with ``s`` for satellite adjectives, sense number from ``index.<pos>``);
      every pointer, lexical or semantic, becomes an edge between the two synsets.

    WordNet already stores most pointers in both directions (hypernym/hyponym,
    meronym/holonym), so ``add_inverse`` defaults to False. Pointer symbols map to
    :data:`WORDNET_POINTERS` names; relation ids follow the sorted names.

    Args:
        path: folder holding the ``data.*`` files (default ``/usr/share/wordnet``, where
            Debian's ``wordnet-base`` puts them; NLTK's ``corpora/wordnet`` folder works too).
        concepts: ``"lemmas"`` or ``"synsets"``.
        pos: parts of speech to read: a list, some of ``n v a r``, or one letter (``"n"``);
            pointers to synsets of other parts of speech are dropped.
        relations: keep only these relation names (default: all): a list, or one name
            (``"hypernym"``); names are the values of :data:`WORDNET_POINTERS` and ``synonym``.
        synonyms: add ``synonym`` edges between lemmas of a synset (lemma mode only).
        add_inverse: add ``_<relation>`` inverse edges.
        strict: raise :class:`~kgfuse.kg.formats.GraphFormatError` (file, line, field) at the
            first malformed line.
        allow_empty: return a graph without edges instead of raising when none is found.
        report: called with the :class:`LoadReport`.

    Raises:
        FileNotFoundError: a ``data.*`` file is missing.
        GraphFormatError: no edges (``<folder>: no edges loaded (<counts>)``) unless
            ``allow_empty``; with ``strict``, the first malformed line.
        ValueError: an unknown part of speech or relation name (the closest one is named).
    """
    t0 = time.perf_counter()
    if concepts not in ("lemmas", "synsets"):
        raise ValueError(f"concepts must be 'lemmas' or 'synsets', not {concepts!r}")
    root = Path(path if path is not None else DEFAULT_WORDNET)
    pos = _parts_of_speech(pos)
    if relations is not None:
        relations = _one_or_list(relations, "relations")
        known = sorted(set(WORDNET_POINTERS.values()) | {"synonym"})
        for r in relations:
            if r not in known:
                raise ValueError(f"unknown WordNet relation {r!r}{_closest(r, known)} in relations; "
                                 f"valid: {', '.join(known)}")
    missing = [str(root / _WN_FILES[p]) for p in pos if not (root / _WN_FILES[p]).is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet database files not found: {', '.join(missing)}. Install Debian's 'wordnet-base' "
            "(apt-get install wordnet-base, files in /usr/share/wordnet) or pass path= to a folder with "
            "data.noun, data.verb, data.adj, data.adv")
    keep_rels = None if relations is None else set(relations)
    rep = LoadReport(source=str(root))

    # pass 1: synsets -> lemma lists; pointers kept as raw tuples
    # synset key: (pos file letter, offset)
    syn_lemmas: dict[tuple[str, int], list[str]] = {}
    syn_type: dict[tuple[str, int], str] = {}
    pointers: list[tuple[str, int, str, str, int, int, int]] = []  # (pos, off, sym, tpos, toff, src, dst)
    for p in pos:
        fpath = root / _WN_FILES[p]
        with open(fpath, "rb") as f:
            for line_no, raw in enumerate(f, 1):
                rep.lines += 1
                if raw[:2] == b"  ":
                    rep.skip("license_header")
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    line = raw.decode("latin-1")
                data = line.split(" | ", 1)[0].split()
                try:
                    off = int(data[0])
                    ss_type = data[2]
                    w_cnt = int(data[3], 16)
                    words = [_clean_lemma(data[4 + 2 * i]) for i in range(w_cnt)]
                    i = 4 + 2 * w_cnt
                    p_cnt = int(data[i])
                    i += 1
                    ptrs = []
                    for _ in range(p_cnt):
                        sym, toff, tpos, st = data[i], int(data[i + 1]), data[i + 2], data[i + 3]
                        if len(st) != 4:
                            raise ValueError(f"source/target field {st!r} is not 4 hex digits")
                        ptrs.append((sym, toff, "a" if tpos == "s" else tpos, int(st[:2], 16), int(st[2:], 16)))
                        i += 4
                    if not words or ss_type not in "nvasr":
                        raise ValueError("no words or bad ss_type")
                except (IndexError, ValueError) as ex:
                    _malformed(rep, strict, str(fpath), line_no, "synset", line, f"cannot parse synset record ({ex})")
                    continue
                key = (p, off)
                syn_lemmas[key] = words
                syn_type[key] = ss_type
                rep.kept += 1
                for sym, toff, tpos, src, dst in ptrs:
                    pointers.append((p, off, sym, tpos, toff, src, dst))

    rel_of = {}
    unknown_syms: dict[str, int] = {}

    def relname(sym: str) -> str | None:
        r = rel_of.get(sym)
        if r is None and sym not in rel_of:
            r = WORDNET_POINTERS.get(sym)
            if r is not None and keep_rels is not None and r not in keep_rels:
                r = None
            rel_of[sym] = r
        return r

    vocab = GraphBuilder()  # interning only; the edges are collected below
    cid, rid = vocab.concept, vocab.relation
    names, rel_names = vocab.concepts, vocab.relations

    H: list[int] = []
    R: list[int] = []
    T: list[int] = []
    dangling = 0
    if concepts == "lemmas":
        syn_ids = {k: [cid(w) for w in ws] for k, ws in syn_lemmas.items()}
        if synonyms and (keep_rels is None or "synonym" in keep_rels):
            r_syn = rid("synonym")
            for ids in syn_ids.values():
                u = list(dict.fromkeys(ids))
                for a in u:
                    for b in u:
                        if a != b:
                            H.append(a)
                            R.append(r_syn)
                            T.append(b)
        for p, off, sym, tpos, toff, src, dst in pointers:
            rn = relname(sym)
            if rn is None:
                if sym not in WORDNET_POINTERS:
                    unknown_syms[sym] = unknown_syms.get(sym, 0) + 1
                rep.skip("relation")
                continue
            a_ids = syn_ids[(p, off)]
            b_ids = syn_ids.get((tpos, toff))
            if b_ids is None:
                dangling += 1
                continue
            r = rid(rn)
            if src == 0 and dst == 0:
                for a in a_ids:
                    for b in b_ids:
                        if a != b:
                            H.append(a)
                            R.append(r)
                            T.append(b)
            else:
                if src > len(a_ids) or dst > len(b_ids) or src == 0 or dst == 0:
                    _malformed(rep, strict, str(root / _WN_FILES[p]), 0, "pointer", f"{off:08d} {sym} {toff:08d}",
                               f"lexical pointer word numbers {src}/{dst} out of range")
                    continue
                H.append(a_ids[src - 1])
                R.append(r)
                T.append(b_ids[dst - 1])
    else:
        # NLTK-style names need the sense number of the synset for its first lemma.
        sense_no = {(p, lemma, off): k for (p, lemma), offs in wordnet_senses(root, pos).items()
                    for k, off in enumerate(offs, 1)}
        syn_cid: dict[tuple[str, int], int] = {}
        for key in syn_lemmas:
            p, off = key
            first = syn_lemmas[key][0]
            k = sense_no.get((p, first, off), 0)
            letter = syn_type[key]
            nm = f"{first}.{letter}.{k:02d}" if k else f"{first}.{letter}.{off:08d}"
            if vocab.has_concept(nm):
                nm = f"{first}.{letter}.{off:08d}"
            syn_cid[key] = cid(nm)
        for p, off, sym, tpos, toff, src, dst in pointers:
            rn = relname(sym)
            if rn is None:
                if sym not in WORDNET_POINTERS:
                    unknown_syms[sym] = unknown_syms.get(sym, 0) + 1
                rep.skip("relation")
                continue
            b = syn_cid.get((tpos, toff))
            if b is None:
                dangling += 1
                continue
            a = syn_cid[(p, off)]
            if a != b:
                H.append(a)
                R.append(rid(rn))
                T.append(b)
    if dangling:
        rep.skip("pointer_outside_pos", dangling)
    rep.skipped_relations = dict(sorted(unknown_syms.items()))
    order = sorted(range(len(rel_names)), key=rel_names.__getitem__)
    remap = np.empty(len(rel_names), dtype=np.int64)
    remap[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    r_arr = remap[np.asarray(R, dtype=np.int64)] if R else np.zeros(0, dtype=np.int64)
    meta = {"loader": "wordnet",
            "params": {"path": str(root), "concepts": concepts, "pos": list(pos),
                       "relations": None if keep_rels is None else sorted(keep_rels), "synonyms": synonyms,
                       "add_inverse": add_inverse, "inverse_prefix": INVERSE_PREFIX if add_inverse else None,
                       "lemma_expansion": "synset pointers: lemma cross product; lexical pointers: the two lemmas"
                       if concepts == "lemmas" else None}}
    kg = _sorted_graph(names, [rel_names[i] for i in order], np.asarray(H, dtype=np.int64), r_arr,
                       np.asarray(T, dtype=np.int64), np.ones(len(H), dtype=np.float32), add_inverse, meta)
    _finish_report(rep, kg, t0, report, allow_empty)
    return kg

