"""What every graph loader shares: the load report, malformed-line handling, relation presets
and mappings, and the final relabelling into a :class:`~kgfuse.kg.graph.KnowledgeGraph`."""

from __future__ import annotations

import difflib
import gzip
import io
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..formats import _GZIP_ERRORS, GraphFormatError, _gzip_error
from ..graph import KnowledgeGraph

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
        seconds: wall time of the load (not compared: two reports of the same load are equal).
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
    seconds: float = field(default=0.0, compare=False)

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
        text = resources.files("kgfuse.kg").joinpath("presets", f"{name}.json").read_text("utf-8")
    except (FileNotFoundError, OSError):
        presets = sorted(p.name[:-5] for p in resources.files("kgfuse.kg").joinpath("presets").iterdir()
                         if p.name.endswith(".json") and '"mapping"' in p.read_text("utf-8"))
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


