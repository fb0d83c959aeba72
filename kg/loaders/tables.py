"""Delimited tables of triples: ``head, relation, tail[, weight]`` or any column layout
(ConceptNet 4, CN-100K, a user's CSV with extra columns)."""

from __future__ import annotations

import io
import math
import time
from typing import Callable, Iterable, Mapping

import numpy as np

from ..formats import GraphFormatError
from ..graph import KnowledgeGraph
from ._common import (
    _UNDECODABLE,
    INVERSE_PREFIX,
    LoadReport,
    _checked_lines,
    _closest,
    _finish_report,
    _is_gzip,
    _malformed,
    _open_binary,
    _PathLike,
    _relation_key,
    _resolve_relations,
    _sorted_graph,
    load_relation_preset,
)

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


