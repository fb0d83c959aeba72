"""Loaders: build a :class:`~kgfuse.kg.graph.KnowledgeGraph` from real graph sources.

- :func:`from_conceptnet` streams the official ConceptNet 5 assertions file (plain or gzip).
- :func:`from_triples` reads delimited ``head, relation, tail[, weight]`` files.
- :func:`from_networkx` converts a networkx ``DiGraph`` / ``MultiDiGraph``.
- :func:`from_wordnet` parses the WordNet 3.0 database files (``data.noun`` ...).

Every loader records its parameters and a :class:`LoadReport` (lines read, records kept,
records skipped per reason, the first malformed lines with their line numbers) in
``graph.meta``; ``LoadReport.from_dict(graph.meta["report"])`` gives it back.

Concept ids of loaded graphs follow the sorted order of concept names and relation ids
follow the relation preset (or sorted names), so the same edge set read in any line order
gives the same arrays and the same :attr:`KnowledgeGraph.hash`.

Errors (every file loader): a truncated or corrupt gzip file, a source that gives no edges
(unless ``allow_empty=True``) and, with ``strict=True``, the first malformed line raise
:class:`~kgfuse.kg.formats.GraphFormatError`, a ``ValueError`` whose one-line message names
the file (and the line and field where it applies)::

    cn4.tsv.gz: truncated or corrupt gzip file (after line 1234): Compressed file ended before ...
    x.tsv: no edges loaded (3 lines: 1 header, 2 malformed (columns: 2); first malformed: line 2 ...)
    x.tsv, line 7, field 'tail' (column 3): not valid utf-8 (byte 0xff at character 5) (line: ...)

Without ``strict`` (the default) malformed lines, invalid text encoding included (reason
``"encoding"``), are skipped and counted by reason in the report. Invalid option values
(``pos``, ``relations``, ``negated`` ...) raise ``ValueError`` or ``TypeError`` naming the option.
"""

from __future__ import annotations

import difflib
import gzip
import io
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from .formats import _GZIP_ERRORS, GraphFormatError, _gzip_error
from .graph import GraphBuilder, KnowledgeGraph

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

__all__ = [
    "GraphFormatError",
    "LoadReport",
    "MERGED17",
    "INVERSE_PREFIX",
    "load_relation_preset",
    "normalize_conceptnet_uri",
    "from_conceptnet",
    "from_triples",
    "from_networkx",
    "from_wordnet",
    "wordnet_senses",
    "WORDNET_POINTERS",
]

logger = logging.getLogger(__name__)

#: Prefix of the name of an inverse relation: the inverse of ``atlocation`` is ``_atlocation``
#: (an edge ``cupboard --_atlocation--> plate`` for every ``plate --atlocation--> cupboard``).
INVERSE_PREFIX = "_"

_MAX_EXAMPLES = 10
_PathLike = str | os.PathLike


# ----------------------------------------------------------------------------- report
@dataclass
class LoadReport:
    """What a loader read, kept and skipped.

    Attributes:
        source: the file (or object) read.
        lines: physical lines read (data lines, header included).
        kept: records turned into edges (before merging duplicates and adding inverses).
        edges: edges in the resulting graph (after duplicates merged and inverses added).
        concepts: concepts in the resulting graph.
        skipped: counts of records skipped on purpose, by reason (e.g. ``"language"`` for a
            ConceptNet line whose ends are not both in the language, ``"relation"`` for a
            relation outside the mapping, ``"blank"``, ``"header"``).
        skipped_relations: counts of dropped records per raw relation name.
        malformed: counts of malformed records by reason (``"columns"``, ``"relation_uri"``,
            ``"start_uri"``, ``"end_uri"``, ``"json"``, ``"weight"``, ``"encoding"`` ...).
        examples: the first malformed records as ``{"line": n, "reason": r, "text": ...}``.
        seconds: wall time of the load.
    """

    source: str = ""
    lines: int = 0
    kept: int = 0
    edges: int = 0
    concepts: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_relations: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def num_malformed(self) -> int:
        return sum(self.malformed.values())

    @property
    def skipped_language(self) -> int:
        return self.skipped.get("language", 0)

    def add_malformed(self, line_no: int, reason: str, text: str | bytes) -> None:
        self.malformed[reason] = self.malformed.get(reason, 0) + 1
        if len(self.examples) < _MAX_EXAMPLES:
            text = _printable(text)
            self.examples.append({"line": line_no, "reason": reason, "text": text.rstrip("\r\n")[:300]})

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LoadReport":
        return cls(**dict(d))

    def summary(self) -> str:
        parts = [f"{self.source}: {self.lines} lines, {self.kept} records kept, {self.edges} edges, "
                 f"{self.concepts} concepts"]
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        if self.malformed:
            parts.append("malformed " + ", ".join(f"{k}={v}" for k, v in sorted(self.malformed.items())))
            ex = self.examples[0]
            parts.append(f"first malformed: line {ex['line']} ({ex['reason']}): {ex['text'][:120]!r}")
        return "; ".join(parts)


def _finish_report(report: LoadReport, kg: KnowledgeGraph, t0: float,
                   callback: Callable[[LoadReport], None] | None, allow_empty: bool = True) -> None:
    """Fill in the report, log it, call back; raise (the error holds the report) when no edge
    was loaded unless ``allow_empty``."""
    report.edges = kg.num_edges
    report.concepts = kg.num_concepts
    report.seconds = round(time.perf_counter() - t0, 3)
    if kg.num_edges == 0 and not allow_empty:
        raise _no_edges_error(report)
    kg.meta["report"] = report.to_dict()
    if report.malformed:
        logger.warning("%s", report.summary())
    if callback is not None:
        callback(report)


def _no_edges_error(report: LoadReport) -> GraphFormatError:
    """``x.tsv: no edges loaded (3 lines: 1 header, 2 malformed (columns: 2); first malformed: ...)``."""
    if report.lines == 0:
        counts = "the file is empty"
    else:
        parts = [f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(report.skipped.items())]
        if report.malformed:
            parts.append(f"{report.num_malformed} malformed ("
                         + ", ".join(f"{k}: {v}" for k, v in sorted(report.malformed.items())) + ")")
        if report.kept:
            parts.append(f"{report.kept} records kept")
        counts = f"{report.lines} line{'s' if report.lines != 1 else ''}" + (": " + ", ".join(parts) if parts else "")
        if report.examples:
            ex = report.examples[0]
            counts += f"; first malformed: line {ex['line']} ({ex['reason']}): {ex['text'][:80]!r}"
    return GraphFormatError(f"{report.source}: no edges loaded ({counts}); pass allow_empty=True to load it anyway",
                            path=report.source, reason="empty", report=report)


_FIELD_NAMES = {
    "columns": "'columns' (the line as a whole)",
    "relation_uri": "'relation' (column 2)",
    "start_uri": "'start' (column 3)",
    "end_uri": "'end' (column 4)",
    "json": "'info' (column 5, JSON)",
    "weight": "'weight'",
    "encoding": "'encoding'",
    "head": "'head' (field 1)",
    "relation": "'relation' (field 2)",
    "tail": "'tail' (field 3)",
    "negation": "'negation'",
}

# what the "surrogateescape" error handler makes of undecodable bytes
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _printable(text: str | bytes) -> str:
    """``text`` as valid Unicode: undecodable bytes as U+FFFD."""
    if isinstance(text, bytes):
        return text.decode("utf-8", "replace")
    return _UNDECODABLE.sub("\ufffd", text)


def _malformed(report: LoadReport, strict: bool, path: str, line_no: int, reason: str, text: str | bytes,
               detail: str, field: str | None = None) -> None:
    """Count a malformed line, or (``strict``) raise :class:`GraphFormatError` naming file, line and field."""
    if strict:
        fieldname = field or _FIELD_NAMES.get(reason, reason.replace("_", " "))
        raise GraphFormatError(f"{path}, line {line_no}, field {fieldname}: {detail} "
                               f"(line: {_printable(text).rstrip(chr(10))[:200]!r})",
                               path=path, line=line_no, reason=reason)
    report.add_malformed(line_no, reason, text)


def _is_gzip(stream: Any) -> bool:
    return isinstance(getattr(stream, "raw", None), gzip.GzipFile)


def _checked_lines(f: Iterable, path: str):
    """The lines of ``f``; a truncated or corrupt gzip stream raises :class:`GraphFormatError`
    naming the file and the last line read."""
    n = 0
    try:
        for line in f:
            n += 1
            yield line
    except _GZIP_ERRORS as e:
        raise _gzip_error(path, n, e) from None


def _one_or_list(value: Any, option: str) -> tuple:
    """A list option given as a list or as one name (``"hypernym"`` is ``("hypernym",)``: a
    string is never iterated letter by letter)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{option} must be a list of names or one name, not {type(value).__name__} {value!r:.60}")
    out = tuple(value)
    bad = next((v for v in out if not isinstance(v, str)), None)
    if bad is not None:
        raise TypeError(f"{option} must hold names (strings), not {type(bad).__name__} {bad!r:.60}")
    return out


def _closest(name: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ----------------------------------------------------------------------------- relations
def load_relation_preset(name: str) -> dict[str, Any]:
    """Load a relation preset shipped in ``kgfuse/kg/presets/<name>.json``.

    A preset has ``"relations"`` (merged relation names in id order) and ``"mapping"``
    (lowercase ConceptNet relation name -> merged name, ``"*"`` prefix = swap head and tail).
    """
    try:
        text = resources.files(__package__).joinpath("presets", f"{name}.json").read_text("utf-8")
    except (FileNotFoundError, OSError):
        presets = sorted(p.name[:-5] for p in resources.files(__package__).joinpath("presets").iterdir()
                         if p.name.endswith(".json"))
        raise ValueError(f"unknown relation preset {name!r}{_closest(name, presets + ['raw'])}; known presets: "
                         f"{presets} (or 'raw', or a dict mapping relation -> merged relation)") from None
    preset = json.loads(text)
    if "mapping" not in preset or "relations" not in preset:
        raise ValueError(f"presets/{name}.json is not a relation preset (it has no 'relations' and 'mapping')")
    return preset


class _LazyPreset(Mapping[str, str]):
    def __init__(self, name: str):
        self._name = name
        self._d: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._d is None:
            self._d = dict(load_relation_preset(self._name)["mapping"])
        return self._d

    def __getitem__(self, k: str) -> str:
        return self._get()[k]

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"MERGED17({self._get()!r})"


#: The 17-relation merge (lowercase ConceptNet relation -> merged name, ``*`` = swap).
MERGED17: Mapping[str, str] = _LazyPreset("merged17")


def _relation_key(name: str) -> str:
    """``"/r/AtLocation"``, ``"AtLocation"`` and ``"atlocation"`` all give ``"atlocation"``."""
    if name.startswith("/r/"):
        name = name[3:]
    return name.strip("/").lower()


def _resolve_relations(relations: str | Mapping[str, str] | None) -> tuple[dict[str, tuple[str, bool]] | None,
                                                                           list[str], str]:
    """Return (mapping key -> (merged name, swap) or None for raw, fixed relation order, label)."""
    if relations is None or relations == "raw":
        return None, [], "raw"
    if isinstance(relations, str):
        preset = load_relation_preset(relations)
        mapping, order, label = preset["mapping"], list(preset["relations"]), relations
    elif isinstance(relations, Mapping):
        mapping, order, label = relations, [], "custom"
    else:
        raise TypeError(f"relations must be 'merged17', 'raw', another preset name or a dict, not {type(relations)}")
    out: dict[str, tuple[str, bool]] = {}
    for k, v in mapping.items():
        if not isinstance(k, str) or not isinstance(v, str) or not v.lstrip("*"):
            raise ValueError(f"relation mapping entries must be str -> non-empty str, got {k!r} -> {v!r}")
        swap = v.startswith("*")
        out[_relation_key(k)] = (v[1:] if swap else v, swap)
    if not order:
        order = sorted({m for m, _ in out.values()})
    return out, order, label


# ----------------------------------------------------------------------------- helpers
def _open_binary(path: _PathLike):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.BufferedReader(gzip.open(path, "rb"), buffer_size=1 << 20)
    return open(path, "rb", buffering=1 << 20)


def normalize_conceptnet_uri(uri: str) -> str:
    """The concept name of a ConceptNet URI, as MHGRN/QA-GNN normalise it.

    ``/c/en/Ice_Cream/n/wn/food`` -> ``ice_cream``: the term after ``/c/<lang>/``, with the
    sense (``/n``, ``/v``, ``/a``, ``/r``, ``/s``) and anything after it dropped,
    lowercased, spaces as underscores.
    """
    parts = uri.split("/")
    if len(parts) < 4 or parts[1] != "c" or not parts[3]:
        raise ValueError(f"not a ConceptNet concept URI: {uri!r}")
    return parts[3].lower().replace(" ", "_")


def _sorted_graph(names: list[str], rel_names: list[str], h: np.ndarray, r: np.ndarray, t: np.ndarray,
                  w: np.ndarray, add_inverse: bool, meta: dict[str, Any], *,
                  inverse_names: list[str] | None = None, sort_concepts: bool = True) -> KnowledgeGraph:
    """Relabel concepts in sorted name order, add inverse edges, build the graph."""
    n = len(names)
    if sort_concepts:
        order = sorted(range(n), key=names.__getitem__)
        new_id = np.empty(n, dtype=np.int64)
        new_id[np.asarray(order, dtype=np.int64)] = np.arange(n, dtype=np.int64)
        sorted_names = [names[i] for i in order]
        h, t = new_id[h], new_id[t]
    else:
        sorted_names = names
    rels = list(rel_names)
    if add_inverse:
        R = len(rels)
        rels = rels + (inverse_names if inverse_names is not None else [INVERSE_PREFIX + x for x in rel_names])
        h, r, t, w = np.concatenate((h, t)), np.concatenate((r, r + R)), np.concatenate((t, h)), np.concatenate((w, w))
    return KnowledgeGraph(sorted_names, rels, h, r, t, w, meta=meta)


# ----------------------------------------------------------------------------- ConceptNet
def _is_uri(b: bytes) -> bool:
    return len(b) > 1 and (b[:1] == b"/" or b"://" in b[:12])


def from_conceptnet(
    path: _PathLike,
    language: str = "en",
    relations: str | Mapping[str, str] | None = "merged17",
    add_inverse: bool = True,
    *,
    strict: bool = False,
    allow_empty: bool = False,
    report: Callable[[LoadReport], None] | None = None,
) -> KnowledgeGraph:
    """Stream the official ConceptNet 5 assertions file into a :class:`KnowledgeGraph`.

    The file (``conceptnet-assertions-5.7.0.csv``, plain or gzip) has one assertion per line
    with 5 tab-separated columns: assertion URI, relation URI (``/r/AtLocation``), start
    URI (``/c/en/plate/n``), end URI, and JSON info whose ``"weight"`` becomes the edge weight.
    Lines whose two ends are not both in ``language`` are skipped (counted as
    ``skipped["language"]``; about 88% of the real file). Concept names are normalised as in
    MHGRN/QA-GNN (:func:`normalize_conceptnet_uri`).

    Relations are data:

    - ``"merged17"`` (default): the 17-relation merge of KagNet/MHGRN/QA-GNN shipped as
      ``presets/merged17.json`` (e.g. ``AtLocation`` and ``LocatedNear`` -> ``atlocation``,
      ``HasA`` -> reversed ``partof``); relation ids follow MHGRN's order, all 17 are present
      even when no edge uses them.
    - ``"raw"`` (or None): ConceptNet's own relation names (``AtLocation``, ``dbpedia/genre``),
      sorted.
    - a dict ``{raw relation: merged name}``; a ``"*"`` before the merged name reverses the
      edge. Keys match case-insensitively with or without ``/r/``.

    Records whose relation is not in the mapping are dropped and counted
    (``skipped["relation"]``, ``skipped_relations``). Repeated edges are merged keeping the
    largest weight. With ``add_inverse`` every relation ``x`` gets an inverse ``_x``
    (ids ``R..2R-1``, :data:`INVERSE_PREFIX`), and every edge a reversed copy.

    Malformed lines (wrong number of columns, a URI that is not ``/r/...`` or ``/c/...``,
    invalid JSON or weight, a relation or concept URI that is not valid UTF-8 (reason
    ``"encoding"``)) are counted by reason and the first few recorded with their line numbers
    in ``graph.meta["report"]`` (a :class:`LoadReport`); with ``strict=True`` the first one
    raises :class:`~kgfuse.kg.formats.GraphFormatError` naming the file, line and field.

    Args:
        path: the assertions file (``.csv`` or ``.csv.gz``; gzip is detected from content).
        language: ConceptNet language code of both ends.
        relations: ``"merged17"``, ``"raw"``, another preset name, or a mapping.
        add_inverse: add inverse relations and reversed edges.
        strict: raise at the first malformed line instead of skipping it.
        allow_empty: return a graph without edges instead of raising when no line gives one.
        report: called with the :class:`LoadReport` at the end.

    Returns:
        The graph; ``meta`` holds the loader name, its parameters and the report.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        GraphFormatError: a truncated or corrupt gzip file (``<path>: truncated or corrupt
            gzip file (after line N): ...``); no edges (``<path>: no edges loaded (<counts>)``)
            unless ``allow_empty``; with ``strict``, the first malformed line.
    """
    t0 = time.perf_counter()
    path_s = str(path)
    mapping, rel_order, rel_label = _resolve_relations(relations)
    rep = LoadReport(source=path_s)
    prefix = f"/c/{language}/".encode()
    plen = len(prefix)

    # Interned vocabularies. term bytes -> concept id (several byte forms can share a name).
    term_id: dict[bytes, int] = {}
    name_id: dict[str, int] = {}
    names: list[str] = []
    rel_id: dict[str, int] = {name: i for i, name in enumerate(rel_order)}
    rel_names: list[str] = list(rel_order)
    # relation URI bytes -> (relation id, swap) or None (dropped)
    rel_cache: dict[bytes, tuple[int, bool] | None] = {}
    skipped_rel: dict[str, int] = {}
    H: list[int] = []
    Rl: list[int] = []
    T: list[int] = []
    W: list[float] = []

    def concept(term: bytes, line_no: int, line: bytes, which: str) -> int | None:
        try:
            name = term.decode("utf-8").lower().replace(" ", "_")
        except UnicodeDecodeError as e:
            _malformed(rep, strict, path_s, line_no, "encoding", line,
                       f"not valid UTF-8 (byte 0x{term[e.start]:02x} in the concept term {_printable(term)!r})",
                       field=_FIELD_NAMES[f"{which}_uri"])
            return None
        i = name_id.get(name)
        if i is None:
            i = name_id[name] = len(names)
            names.append(name)
        term_id[term] = i
        return i

    def relation(uri: bytes, line_no: int, line: bytes) -> tuple[int, bool] | None | bool:
        # Returns (id, swap), None (dropped) or False (malformed).
        try:
            raw = uri.decode("utf-8")
        except UnicodeDecodeError as e:
            _malformed(rep, strict, path_s, line_no, "encoding", line,
                       f"not valid UTF-8 (byte 0x{uri[e.start]:02x} in {_printable(uri)!r})",
                       field=_FIELD_NAMES["relation_uri"])
            return False
        raw = raw[3:].strip("/")
        if not raw:
            _malformed(rep, strict, path_s, line_no, "relation_uri", line, f"empty relation in {uri!r}")
            return False
        if mapping is None:
            merged, swap = raw, False
        else:
            m = mapping.get(raw.lower())
            if m is None:
                rel_cache[uri] = None
                return None
            merged, swap = m
        i = rel_id.get(merged)
        if i is None:
            i = rel_id[merged] = len(rel_names)
            rel_names.append(merged)
        rel_cache[uri] = (i, swap)
        return i, swap

    wkey = b'"weight":'
    line_no = 0
    with _open_binary(path) as f:
        for line in (_checked_lines(f, path_s) if _is_gzip(f) else f):
            line_no += 1
            parts = line.split(b"\t")
            if len(parts) != 5:
                if not line.strip():
                    rep.skip("blank")
                    continue
                _malformed(rep, strict, path_s, line_no, "columns", line,
                           f"expected 5 tab-separated columns, found {len(parts)}")
                continue
            s, e = parts[2], parts[3]
            if s[:plen] != prefix or e[:plen] != prefix:
                if s[:3] == b"/c/" and e[:3] == b"/c/":
                    rep.skip("language")
                    continue
                # ExternalURL and similar rows point at web URLs: valid, but not concepts.
                bad_s, bad_e = not _is_uri(s), not _is_uri(e)
                if bad_s or bad_e:
                    which = "start_uri" if bad_s else "end_uri"
                    _malformed(rep, strict, path_s, line_no, which, line,
                               f"column {3 if bad_s else 4} ({which.replace('_', ' ')}) {(s if bad_s else e)[:80]!r} "
                               "is not a URI (expected /c/<lang>/<term>...)")
                    continue
                rep.skip("non_concept")
                continue
            ruri = parts[1]
            rinfo = rel_cache.get(ruri, False)
            if rinfo is False:
                if ruri[:3] != b"/r/":
                    _malformed(rep, strict, path_s, line_no, "relation_uri", line,
                               f"relation URI {ruri[:80]!r} does not start with /r/")
                    continue
                rinfo = relation(ruri, line_no, line)
                if rinfo is False:
                    continue
            if rinfo is None:
                rep.skip("relation")
                key = ruri[3:].decode("utf-8", "replace")
                skipped_rel[key] = skipped_rel.get(key, 0) + 1
                continue
            # weight: cheap substring parse of the last key, json for anything unusual
            j = parts[4]
            k = j.rfind(wkey)
            w = None
            if k >= 0 and j[:1] == b"{":
                tail_b = j[k + 9:].rstrip()
                if tail_b[-1:] == b"}":
                    try:
                        w = float(tail_b[:-1])
                    except ValueError:
                        w = None
            if w is None:
                try:
                    info = json.loads(j)
                except ValueError as ex:
                    _malformed(rep, strict, path_s, line_no, "json", line, f"column 5 is not valid JSON ({ex})")
                    continue
                if not isinstance(info, dict):
                    _malformed(rep, strict, path_s, line_no, "json", line, "column 5 (JSON info) is not an object")
                    continue
                wv = info.get("weight")
                if isinstance(wv, bool) or not isinstance(wv, (int, float)):
                    _malformed(rep, strict, path_s, line_no, "weight", line,
                               f"column 5 (JSON info) has no numeric \"weight\" (got {wv!r})")
                    continue
                w = float(wv)
            if not math.isfinite(w):
                _malformed(rep, strict, path_s, line_no, "weight", line, f"weight {w} is not finite")
                continue
            # concept names: term after /c/<lang>/ up to the next '/'
            st = s[plen:]
            q = st.find(b"/")
            if q >= 0:
                st = st[:q]
            et = e[plen:]
            q = et.find(b"/")
            if q >= 0:
                et = et[:q]
            if not st or not et:
                which = "start_uri" if not st else "end_uri"
                _malformed(rep, strict, path_s, line_no, which, line, "empty concept term")
                continue
            hi = term_id.get(st)
            if hi is None:
                hi = concept(st, line_no, line, "start")
                if hi is None:
                    continue
            ti = term_id.get(et)
            if ti is None:
                ti = concept(et, line_no, line, "end")
                if ti is None:
                    continue
            ri, swap = rinfo
            if swap:
                hi, ti = ti, hi
            H.append(hi)
            Rl.append(ri)
            T.append(ti)
            W.append(w)
    rep.lines = line_no
    rep.kept = len(H)
    rep.skipped_relations = dict(sorted(skipped_rel.items()))
    if mapping is None:  # raw: sorted relation names for order independence
        order = sorted(range(len(rel_names)), key=rel_names.__getitem__)
        remap = np.empty(len(rel_names), dtype=np.int64)
        remap[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        rel_names = [rel_names[i] for i in order]
        r_arr = remap[np.asarray(Rl, dtype=np.int64)] if Rl else np.zeros(0, dtype=np.int64)
    else:
        r_arr = np.asarray(Rl, dtype=np.int64)
    meta = {
        "loader": "conceptnet",
        "params": {"path": path_s, "language": language, "relations": rel_label,
                   "relation_mapping": None if mapping is None else
                   {k: ("*" if s else "") + v for k, (v, s) in sorted(mapping.items())},
                   "add_inverse": add_inverse, "inverse_prefix": INVERSE_PREFIX if add_inverse else None,
                   "strict": strict},
        "num_relations_forward": len(rel_names),
    }
    kg = _sorted_graph(names, rel_names, np.asarray(H, dtype=np.int64), r_arr, np.asarray(T, dtype=np.int64),
                       np.asarray(W, dtype=np.float32), add_inverse, meta)
    _finish_report(rep, kg, t0, report, allow_empty)
    return kg


# ----------------------------------------------------------------------------- triples
_ROLES = ("head", "relation", "tail", "weight", "negation")


def _resolve_columns(columns: Mapping[str, str | int] | Iterable[str | None] | None, header_fields: list[str] | None,
                     path: str) -> dict[str, int] | None:
    """Map role -> 0-based column index from ``columns`` (see :func:`from_triples`)."""
    if columns is None:
        return None
    if isinstance(columns, Mapping):
        spec = dict(columns)
    elif isinstance(columns, str):
        raise TypeError(f"columns must be a mapping role -> column or a list of roles per position, not the string {columns!r}")
    else:
        spec = {role: i for i, role in enumerate(columns) if role}
    unknown = sorted(set(spec) - set(_ROLES))
    if unknown:
        raise GraphFormatError(f"{path}: unknown column role {unknown[0]!r}{_closest(str(unknown[0]), _ROLES)}; "
                               f"valid roles: {list(_ROLES)}", path=path, reason="layout")
    missing = [r for r in ("head", "relation", "tail") if r not in spec]
    if missing:
        raise GraphFormatError(f"{path}: columns must name the {', '.join(missing)} column", path=path,
                               reason="layout")
    out: dict[str, int] = {}
    for role, col in spec.items():
        if col is None:
            continue
        if isinstance(col, bool) or not isinstance(col, (int, str)):
            raise TypeError(f"{path}: column of {role!r} must be a name or a 0-based position, not {col!r}")
        if isinstance(col, int):
            if col < 0:
                raise GraphFormatError(f"{path}: column position of {role!r} must be >= 0, got {col}", path=path,
                                       reason="layout")
            out[role] = col
            continue
        if header_fields is None:
            raise GraphFormatError(f"{path}: column {col!r} of {role!r} is a name but the file has no header line; "
                                   "give 0-based positions or header=True", path=path, line=1, reason="layout")
        lowered = [h.lower() for h in header_fields]
        if col.lower() not in lowered:
            raise GraphFormatError(f"{path}: no column named {col!r} (for {role!r}) in the header {header_fields}"
                                   f"{_closest(col.lower(), lowered)}", path=path, line=1, reason="layout")
        out[role] = lowered.index(col.lower())
    return out


def _negated_name(name: str) -> str:
    """``capableof`` -> ``notcapableof``; ``CapableOf`` -> ``NotCapableOf``."""
    return ("Not" if name[:1].isupper() else "not") + name


def from_triples(
    path: _PathLike,
    delimiter: str = "\t",
    *,
    strict: bool = False,
    header: bool | None = None,
    columns: Mapping[str, str | int] | Iterable[str | None] | None = None,
    relations: str | Mapping[str, str] | None = "raw",
    negated: str = "drop",
    add_inverse: bool = True,
    default_weight: float = 1.0,
    encoding: str = "utf-8",
    allow_empty: bool = False,
    report: Callable[[LoadReport], None] | None = None,
) -> KnowledgeGraph:
    """Read a delimited table of triples: ``head, relation, tail[, weight]`` by default, or
    any column layout with extra columns (``columns``).

    Names are taken verbatim (stripped of surrounding whitespace). A header line is detected
    when ``header`` is None: the first line is a header when its first three fields are
    (case-insensitively) names such as ``head``/``subject``/``source``, ``relation``/
    ``predicate``/``rel``, ``tail``/``object``/``target``, or when ``columns`` names columns.
    Blank lines and lines starting with ``#`` are skipped.

    Tabular files with other layouts load through ``columns``, either a mapping
    ``role -> column name or 0-based position`` or a list of roles per position (``None`` for a
    column to ignore). Roles: ``head``, ``relation``, ``tail`` (required), ``weight`` and
    ``negation`` (a number; a value < 0 marks a negated assertion, as ConceptNet 4's ``freq``)::

        from_triples("conceptnet4_en.tsv.gz", columns={"head": "head", "relation": "relation",
                     "tail": "tail", "weight": "score", "negation": "freq"}, relations="conceptnet4")
        from_triples("cn100k/train.txt", columns=["relation", "head", "tail"])

    Negated rows are dropped and counted (``skipped["negated"]``) by default; ``negated="keep"``
    keeps them as their own relation, ``not`` + the (mapped) relation name (``notcapableof``).

    ``relations`` maps relation names as for ConceptNet: ``"raw"`` keeps them, a preset name
    (``"merged17"``, ``"conceptnet4"``) or a dict merges them (``"*"`` prefix = swap head and
    tail). Relations outside a mapping are dropped and counted, unless the preset sets
    ``keep_unmapped`` (then they keep their lowercase name).

    Malformed lines (too few fields, an empty field, a weight or negation value that is not a
    finite number, bytes that are not valid in ``encoding`` (reason ``"encoding"``)) are
    counted and reported with line numbers; ``strict=True`` raises
    :class:`~kgfuse.kg.formats.GraphFormatError` naming the file, line and field at the first one.

    Args:
        path: the file (plain or gzip).
        delimiter: field separator.
        strict: raise on the first malformed line.
        header: force (True) or forbid (False) a header line; None detects it.
        columns: column layout (see above); None = ``head, relation, tail[, weight]``.
        relations: relation mapping (see above).
        negated: ``"drop"`` or ``"keep"`` rows whose negation column is < 0.
        add_inverse: add ``_<relation>`` inverse edges (the default of every graph loader).
        default_weight: weight of rows without a weight.
        encoding: text encoding.
        allow_empty: return a graph without edges instead of raising when no line gives one.
        report: called with the :class:`LoadReport`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        GraphFormatError: a truncated or corrupt gzip file (``<path>: truncated or corrupt
            gzip file (after line N): ...``); ``columns`` that do not fit the file (an unknown
            role, a column name missing from the header); no edges (``<path>: no edges loaded
            (<counts>)``) unless ``allow_empty``; with ``strict``, the first malformed line.
        TypeError: ``columns`` is a string, ``header`` is not True, False or None.
    """
    t0 = time.perf_counter()
    path_s = str(path)
    if negated not in ("drop", "keep"):
        raise ValueError(f"negated must be 'drop' or 'keep', not {negated!r}")
    if header is not None and not isinstance(header, bool):
        raise TypeError(f"header must be True, False or None (detect), not {header!r}")
    rep = LoadReport(source=path_s)
    mapping, rel_order, rel_label = _resolve_relations(relations)
    keep_unmapped = isinstance(relations, str) and relations != "raw" and bool(
        load_relation_preset(relations).get("keep_unmapped", False))
    heads_kw = {"head", "subject", "source", "src", "h", "s", "from"}
    rels_kw = {"relation", "predicate", "rel", "r", "p", "edge", "type", "relation_type"}
    tails_kw = {"tail", "object", "target", "dst", "t", "o", "to"}
    names: list[str] = []
    name_id: dict[str, int] = {}
    rel_id: dict[str, int] = {name: i for i, name in enumerate(rel_order)}
    rel_names: list[str] = list(rel_order)
    rel_cache: dict[tuple[str, bool], tuple[int, bool] | None] = {}
    H: list[int] = []
    R: list[int] = []
    T: list[int] = []
    W: list[float] = []
    has_header = False
    first_data = True
    cols: dict[str, int] | None = None if columns is not None else {"head": 0, "relation": 1, "tail": 2}
    positional = columns is None

    def relation_of(rn: str, neg: bool) -> tuple[int, bool] | None:
        key = (rn, neg)
        if key in rel_cache:
            return rel_cache[key]
        swap = False
        if mapping is None:
            name = rn
        else:
            m = mapping.get(_relation_key(rn))
            if m is not None:
                name, swap = m
            elif keep_unmapped:
                name = _relation_key(rn)
            else:
                rel_cache[key] = None
                return None
        if neg:
            name = _negated_name(name)
        ri = rel_id.get(name)
        if ri is None:
            ri = rel_id[name] = len(rel_names)
            rel_names.append(name)
        rel_cache[key] = (ri, swap)
        return rel_cache[key]

    def number(fields: list[str], role: str, line_no: int, s: str) -> float | None | bool:
        """The finite number in ``role``'s column; None when absent; False when malformed."""
        i = cols.get(role) if cols else None
        if i is None or i >= len(fields) or fields[i] == "":
            return None
        try:
            v = float(fields[i])
            if not math.isfinite(v):
                raise ValueError("not finite")
            return v
        except ValueError:
            _malformed(rep, strict, path_s, line_no, role, s, f"column {i + 1} ({role}) {fields[i]!r} is not a finite number")
            return False

    # undecodable bytes become lone surrogates, so a bad line is found (and counted) by number
    with _open_binary(path) as fb, io.TextIOWrapper(fb, encoding=encoding, errors="surrogateescape",
                                                    newline="") as f:
        line_no = 0
        for line in (_checked_lines(f, path_s) if _is_gzip(fb) else f):
            line_no += 1
            s = line.rstrip("\r\n")
            if not s.strip() or s.lstrip().startswith("#"):
                rep.skip("blank" if not s.strip() else "comment")
                continue
            bad_char = _UNDECODABLE.search(s)
            if bad_char is not None:
                i = bad_char.start()
                k = s.count(delimiter, 0, i)
                roles = {c: r for r, c in (cols or {}).items()}
                where = f"'{roles[k]}' (column {k + 1})" if k in roles else f"column {k + 1}"
                _malformed(rep, strict, path_s, line_no, "encoding", s,
                           f"not valid {encoding} (byte 0x{ord(s[i]) - 0xDC00:02x} at character {i + 1})", field=where)
                continue
            fields = [x.strip() for x in s.split(delimiter)]
            if first_data:
                first_data = False
                looks = (len(fields) >= 3 and fields[0].lower() in heads_kw and fields[1].lower() in rels_kw
                         and fields[2].lower() in tails_kw)
                names_columns = columns is not None and (
                    isinstance(columns, Mapping) and any(isinstance(v, str) for v in columns.values()))
                if header is True or (header is None and (looks or names_columns)):
                    has_header = True
                    rep.skip("header")
                    if not positional:
                        cols = _resolve_columns(columns, fields, path_s)
                    continue
                if not positional:
                    cols = _resolve_columns(columns, None, path_s)
            if positional:
                if len(fields) not in (3, 4):
                    _malformed(rep, strict, path_s, line_no, "columns", s,
                               f"expected 3 or 4 fields separated by {delimiter!r}, found {len(fields)}")
                    continue
                cols = {"head": 0, "relation": 1, "tail": 2, "weight": 3} if len(fields) == 4 else \
                    {"head": 0, "relation": 1, "tail": 2}
            else:
                need = max(cols[r] for r in ("head", "relation", "tail")) + 1
                if len(fields) < need:
                    _malformed(rep, strict, path_s, line_no, "columns", s,
                               f"expected at least {need} fields separated by {delimiter!r}, found {len(fields)}")
                    continue
            hn, rn, tn = fields[cols["head"]], fields[cols["relation"]], fields[cols["tail"]]
            bad = next((r for r, v in (("head", hn), ("relation", rn), ("tail", tn)) if not v), None)
            if bad is not None:
                _malformed(rep, strict, path_s, line_no, bad, s, f"column {cols[bad] + 1} ({bad}) is empty")
                continue
            w = number(fields, "weight", line_no, s)
            if w is False:
                continue
            neg_v = number(fields, "negation", line_no, s)
            if neg_v is False:
                continue
            neg = neg_v is not None and neg_v < 0
            if neg and negated == "drop":
                rep.skip("negated")
                continue
            rel = relation_of(rn, neg)
            if rel is None:
                rep.skip("relation")
                rep.skipped_relations[rn] = rep.skipped_relations.get(rn, 0) + 1
                continue
            ri, swap = rel
            if swap:
                hn, tn = tn, hn
            hi = name_id.get(hn)
            if hi is None:
                hi = name_id[hn] = len(names)
                names.append(hn)
            ti = name_id.get(tn)
            if ti is None:
                ti = name_id[tn] = len(names)
                names.append(tn)
            H.append(hi)
            R.append(ri)
            T.append(ti)
            W.append(default_weight if w is None else w)
    rep.lines = line_no
    rep.kept = len(H)
    # relation ids: the preset's order first, then the others sorted by name (a pure function
    # of the edge set, whatever the line order)
    extra = sorted(rel_names[len(rel_order):])
    final = list(rel_order) + extra
    pos = {name: i for i, name in enumerate(final)}
    remap = np.asarray([pos[n] for n in rel_names], dtype=np.int64)
    r_arr = remap[np.asarray(R, dtype=np.int64)] if R else np.zeros(0, dtype=np.int64)
    meta = {"loader": "triples",
            "params": {"path": path_s, "delimiter": delimiter, "header": has_header, "add_inverse": add_inverse,
                       "inverse_prefix": INVERSE_PREFIX if add_inverse else None, "strict": strict,
                       "default_weight": default_weight,
                       "columns": ({k: v for k, v in sorted(cols.items())} if cols and not positional else None),
                       "relations": rel_label if not isinstance(relations, Mapping) else "custom",
                       "negated": negated}}
    kg = _sorted_graph(names, final, np.asarray(H, dtype=np.int64), r_arr,
                       np.asarray(T, dtype=np.int64), np.asarray(W, dtype=np.float32), add_inverse, meta)
    _finish_report(rep, kg, t0, report, allow_empty)
    return kg


# ----------------------------------------------------------------------------- networkx
def from_networkx(G: "nx.Graph", relation: str = "relation", weight: str = "weight", *,
                  default_relation: str | None = None, default_weight: float = 1.0) -> KnowledgeGraph:
    """Build from a networkx ``DiGraph`` or ``MultiDiGraph``.

    Node names are ``str(node)`` (two nodes with the same string are an error); concept ids
    follow ``G.nodes`` order and isolated nodes are kept. Relation ids follow
    ``G.graph["relations"]`` when present (as :meth:`KnowledgeGraph.to_networkx` writes it,
    so ``from_networkx(kg.to_networkx())`` has ``kg``'s hash), else sorted relation names. Each edge's relation is its attribute ``relation``; an edge without it
    raises ``ValueError`` naming the edge, unless ``default_relation`` is given. The weight is
    attribute ``weight`` (``default_weight`` when absent). Undirected graphs are rejected.
    """
    import networkx as nx

    if not isinstance(G, nx.Graph):
        raise TypeError(f"expected a networkx graph, got {type(G).__name__}")
    if not G.is_directed():
        raise ValueError(f"from_networkx needs a directed graph (DiGraph or MultiDiGraph), got undirected "
                         f"{type(G).__name__}; convert with G.to_directed() if both directions are meant")
    t0 = time.perf_counter()
    rep = LoadReport(source=f"networkx.{type(G).__name__}")
    names: list[str] = []
    nid: dict[Any, int] = {}
    seen: dict[str, Any] = {}
    for node in G.nodes:
        s = str(node)
        if s in seen:
            raise ValueError(f"nodes {seen[s]!r} and {node!r} have the same name {s!r}")
        if "\n" in s:
            raise ValueError(f"node name contains a newline: {s!r}")
        seen[s] = node
        nid[node] = len(names)
        names.append(s)
    rel_id: dict[str, int] = {}
    rel_names: list[str] = []
    H: list[int] = []
    R: list[int] = []
    T: list[int] = []
    W: list[float] = []
    edges: Iterable = G.edges(keys=True, data=True) if G.is_multigraph() else G.edges(data=True)
    for e in edges:
        u, v, d = e[0], e[1], e[-1]
        rn = d.get(relation, default_relation)
        if rn is None:
            key = f", key={e[2]!r}" if G.is_multigraph() else ""
            raise ValueError(f"edge ({u!r} -> {v!r}{key}) has no attribute {relation!r}; pass "
                             f"relation=<attribute name> or default_relation=")
        rn = str(rn)
        wv = d.get(weight, default_weight)
        try:
            wf = float(wv)
        except (TypeError, ValueError):
            raise ValueError(f"edge ({u!r} -> {v!r}) has non-numeric {weight!r} = {wv!r}") from None
        ri = rel_id.get(rn)
        if ri is None:
            ri = rel_id[rn] = len(rel_names)
            rel_names.append(rn)
        H.append(nid[u])
        R.append(ri)
        T.append(nid[v])
        W.append(wf)
    rep.lines = rep.kept = len(H)
    known = G.graph.get("relations")  # written by KnowledgeGraph.to_networkx: keeps relation ids
    if isinstance(known, (list, tuple)) and set(rel_names) <= set(known) and len(set(known)) == len(known):
        rel_names_all = [str(x) for x in known]
        pos = {x: i for i, x in enumerate(rel_names_all)}
        remap = np.asarray([pos[x] for x in rel_names], dtype=np.int64)
        r_arr = remap[np.asarray(R, dtype=np.int64)] if R else np.zeros(0, dtype=np.int64)
        meta = {"loader": "networkx", "params": {"graph_type": type(G).__name__, "relation": relation,
                                                 "weight": weight, "default_relation": default_relation}}
        kg = _sorted_graph(names, rel_names_all, np.asarray(H, dtype=np.int64), r_arr,
                           np.asarray(T, dtype=np.int64), np.asarray(W, dtype=np.float32), False, meta,
                           sort_concepts=False)
        _finish_report(rep, kg, t0, None)
        return kg
    order = sorted(range(len(rel_names)), key=rel_names.__getitem__)
    remap = np.empty(len(rel_names), dtype=np.int64)
    remap[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    r_arr = remap[np.asarray(R, dtype=np.int64)] if R else np.zeros(0, dtype=np.int64)
    meta = {"loader": "networkx", "params": {"graph_type": type(G).__name__, "relation": relation,
                                             "weight": weight, "default_relation": default_relation}}
    kg = _sorted_graph(names, [rel_names[i] for i in order], np.asarray(H, dtype=np.int64), r_arr,
                       np.asarray(T, dtype=np.int64), np.asarray(W, dtype=np.float32), False, meta,
                       sort_concepts=False)
    _finish_report(rep, kg, t0, None)
    return kg


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
_DEFAULT_WORDNET = DEFAULT_WORDNET


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
    root = Path(path if path is not None else _DEFAULT_WORDNET)
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
    root = Path(path if path is not None else _DEFAULT_WORDNET)
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
