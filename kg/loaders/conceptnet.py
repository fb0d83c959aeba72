"""The official ConceptNet 5 assertions file (plain or gzip), streamed."""

from __future__ import annotations

import json
import math
import time
from typing import Callable, Mapping

import numpy as np

from ..graph import KnowledgeGraph
from ._common import (
    _FIELD_NAMES,
    INVERSE_PREFIX,
    LoadReport,
    _checked_lines,
    _finish_report,
    _is_gzip,
    _malformed,
    _open_binary,
    _PathLike,
    _printable,
    _resolve_relations,
    _sorted_graph,
)


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


