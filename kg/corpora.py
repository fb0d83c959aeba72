"""Streamed text corpora for knowledgeable pre-training (:mod:`kgfuse.tasks.pretrain`).

A corpus is an iterable of :class:`TextRecord` (``id``, ``text``, ``meta``), read lazily
line by line, so a corpus larger than memory streams. Readers:

- :func:`read_text`: a plain text file (``.gz`` too), one record per non-empty line;
- :func:`read_jsonl`: a JSON-lines file, the text taken from one field;
- :func:`wordnet_glosses`: the glosses of the WordNet 3.0 database files
  (``data.noun`` ...; format wndb(5WN)): the gloss field after ``|`` of each synset holds
  its definition(s) and quoted usage examples, separated by ``;``. Each definition and
  each example becomes one record whose ``meta`` names the synset and its lemmas, so
  the text can be linked to the WordNet graph of
  :func:`kgfuse.kg.loaders.from_wordnet` (``concepts="lemmas"`` names concepts by lemma);
- :func:`openbook_facts`: OpenBookQA's ``openbook.txt`` (Mihaylov et al., 2018), one
  quoted science fact per line.

:func:`open_corpus` builds any of them from a ``{"type": ..., "path": ..., ...}`` spec (what
the pre-training config holds) and :func:`iter_corpora` chains several. Malformed records
are counted in a :class:`CorpusReport` (reason -> count) or, with ``strict=True``, raise a
``ValueError`` that names the file, the line and the field. Importing this module imports
neither torch nor spaCy.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

__all__ = [
    "TextRecord",
    "CorpusReport",
    "read_text",
    "read_jsonl",
    "wordnet_glosses",
    "split_gloss",
    "openbook_facts",
    "CORPUS_TYPES",
    "open_corpus",
    "iter_corpora",
]

_PathLike = str | os.PathLike


@dataclass(frozen=True)
class TextRecord:
    """One text of a corpus.

    Attributes:
        id: stable identifier (``<file name>:<line>`` for files, ``wn:<pos>:<offset>:<k>``
            for WordNet glosses); used to split held-out data deterministically.
        text: the text.
        meta: source-specific fields (JSON-able).
    """

    id: str
    text: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CorpusReport:
    """What a reader read: lines seen, records kept, records skipped by reason."""

    source: str = ""
    lines: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "lines": self.lines, "kept": self.kept, "skipped": dict(self.skipped)}

    def __str__(self) -> str:
        sk = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        return f"{self.source}: {self.kept} records from {self.lines} lines; skipped: {sk}"


def _bad(report: CorpusReport, strict: bool, where: str, line_no: int, fld: str, reason: str, key: str) -> None:
    if strict:
        raise ValueError(f"{where}, line {line_no}, field {fld!r}: {reason}")
    report.skip(key)


def _lines(path: Path, report: CorpusReport, strict: bool) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file; undecodable lines are skipped (or raise)."""
    opener = gzip.open if path.suffix == ".gz" else open
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    with opener(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            report.lines += 1
            try:
                yield line_no, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                _bad(report, strict, str(path), line_no, "text", f"not UTF-8 ({e})", "not_utf8")


def read_text(path: _PathLike, *, min_chars: int = 1, strict: bool = False,
              report: CorpusReport | None = None) -> Iterator[TextRecord]:
    """One record per non-empty line of a UTF-8 text file (plain or ``.gz``), streamed.

    Args:
        path: the file.
        min_chars: lines shorter than this (after stripping) are skipped (``too_short``);
            blank lines are skipped silently.
        strict: raise on an undecodable line instead of skipping it.
        report: filled while iterating.
    """
    path = Path(path)
    rep = report if report is not None else CorpusReport()
    rep.source = str(path)
    for line_no, line in _lines(path, rep, strict):
        text = line.strip()
        if not text:
            continue
        if len(text) < min_chars:
            rep.skip("too_short")
            continue
        rep.kept += 1
        yield TextRecord(f"{path.name}:{line_no}", text)


def read_jsonl(path: _PathLike, text_field: str = "text", *, id_field: str | None = "id", strict: bool = False,
               report: CorpusReport | None = None) -> Iterator[TextRecord]:
    """One record per JSON object of a JSON-lines file (plain or ``.gz``), streamed.

    Args:
        path: the file.
        text_field: the field holding the text; a dotted name reaches into nested objects
            (``question.stem``).
        id_field: the field holding the id (default ``id``; ``<file>:<line>`` when absent).
        strict: raise ``ValueError`` (file, line, field) on a malformed line instead of
            counting it (``invalid_json``, ``not_an_object``, ``missing_text``, ``empty_text``).
        report: filled while iterating.

    Other fields of the object are kept in ``meta``.
    """
    path = Path(path)
    rep = report if report is not None else CorpusReport()
    rep.source = str(path)
    parts = text_field.split(".")
    for line_no, line in _lines(path, rep, strict):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            _bad(rep, strict, str(path), line_no, "<json>", f"invalid JSON ({e.msg} at column {e.colno})", "invalid_json")
            continue
        if not isinstance(obj, dict):
            _bad(rep, strict, str(path), line_no, "<json>", f"expected an object, got {type(obj).__name__}", "not_an_object")
            continue
        val: Any = obj
        for p in parts:
            val = val.get(p) if isinstance(val, dict) else None
        if not isinstance(val, str):
            _bad(rep, strict, str(path), line_no, text_field,
                 "missing" if val is None else f"expected a string, got {type(val).__name__}", "missing_text")
            continue
        text = val.strip()
        if not text:
            _bad(rep, strict, str(path), line_no, text_field, "empty text", "empty_text")
            continue
        rid = obj.get(id_field) if id_field else None
        meta = {k: v for k, v in obj.items() if k not in (parts[0], id_field)}
        rep.kept += 1
        yield TextRecord(str(rid) if rid is not None else f"{path.name}:{line_no}", text, meta)


# ----------------------------------------------------------------------------- WordNet glosses
_WN_FILES = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "r": "data.adv"}
_DEFAULT_WORDNET = "/usr/share/wordnet"  # Debian's wordnet-base (same default as kg.loaders.from_wordnet)
_QUOTED = re.compile(r'"([^"]*)"')
_EMPTY_PARENS = re.compile(r"\(\s*\)")


def split_gloss(gloss: str) -> tuple[list[str], list[str]]:
    """Split a WordNet gloss into ``(definitions, examples)``.

    A gloss is definitions and double-quoted usage examples separated by ``;``; examples
    may carry an attribution after the closing quote (``"..." - Shakespeare``), which is
    dropped. Semicolons inside quotes do not split.

    >>> split_gloss('obstruct any discussion; "Nixon stonewalled the investigation"')
    (['obstruct any discussion'], ['Nixon stonewalled the investigation'])
    """
    examples = [m.strip() for m in _QUOTED.findall(gloss) if m.strip()]
    rest = _QUOTED.sub("\x00", gloss)
    defs = []
    for part in rest.split(";"):
        if "\x00" in part and not part.split("\x00", 1)[0].strip(" -,.:"):
            continue  # an example, possibly followed by its attribution ("..." - Shakespeare)
        part = _EMPTY_PARENS.sub("", part.replace("\x00", "")).strip(" -,.:")
        if part:
            defs.append(" ".join(part.split()))
    return defs, examples


def _headword(lemma: str) -> str:
    if lemma.endswith(")"):  # adjective markers: galore(ip)
        k = lemma.rfind("(")
        if k > 0:
            lemma = lemma[:k]
    return lemma.replace("_", " ")


def wordnet_glosses(path: _PathLike | None = None, *, pos: Iterable[str] = ("n", "v", "a", "r"),
                    parts: Sequence[str] = ("definitions", "examples"), headword: bool = True,
                    strict: bool = False, report: CorpusReport | None = None) -> Iterator[TextRecord]:
    """The glosses of the WordNet 3.0 database files, streamed.

    Each synset line of ``data.<pos>`` (wndb(5WN)) ends with ``| gloss``; the gloss is split
    by :func:`split_gloss`. Every definition gives a record whose text is, with
    ``headword=True``, ``"<first lemma>: <definition>"`` (``"dog: a member of the genus
    Canis ..."``, so that the defined word is in the text and gets linked to its concept
    next to the concepts of its definition), else the definition alone; every quoted example
    gives a record with the example as written.

    Args:
        path: folder with the ``data.*`` files (default ``/usr/share/wordnet``, Debian's
            ``wordnet-base``; NLTK's ``corpora/wordnet`` folder works too).
        pos: parts of speech to read (some of ``n v a r``).
        parts: ``"definitions"`` and/or ``"examples"``.
        headword: prefix definitions with the synset's first lemma.
        strict: raise ``ValueError`` (file, line, field) on a malformed synset line.
        report: filled while iterating.

    Record ``meta``: ``synset`` (``"<pos>:<offset>"``), ``lemmas`` (lemma names as written in
    the file, e.g. ``ice_cream``), ``kind`` (``"definition"`` or ``"example"``).
    """
    root = Path(path if path is not None else _DEFAULT_WORDNET)
    pos = tuple(pos)
    bad_pos = [p for p in pos if p not in _WN_FILES]
    if bad_pos:
        raise ValueError(f"unknown part of speech {bad_pos[0]!r}; use some of 'n', 'v', 'a', 'r'")
    bad_parts = [p for p in parts if p not in ("definitions", "examples")]
    if bad_parts or not parts:
        raise ValueError(f"parts must be some of 'definitions', 'examples', got {list(parts)!r}")
    missing = [str(root / _WN_FILES[p]) for p in pos if not (root / _WN_FILES[p]).is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet database files not found: {', '.join(missing)}. Install Debian's 'wordnet-base' "
            "(files in /usr/share/wordnet) or pass path= to a folder with data.noun, data.verb, data.adj, data.adv")
    rep = report if report is not None else CorpusReport()
    rep.source = str(root)
    want_defs, want_ex = "definitions" in parts, "examples" in parts
    for p in pos:
        fpath = root / _WN_FILES[p]
        with open(fpath, "rb") as f:
            for line_no, raw in enumerate(f, 1):
                rep.lines += 1
                if raw[:2] == b"  ":  # license header
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    line = raw.decode("latin-1")
                head, sep, gloss = line.partition(" | ")
                fields = head.split()
                try:
                    off = int(fields[0])
                    w_cnt = int(fields[3], 16)
                    lemmas = [fields[4 + 2 * i] for i in range(w_cnt)]
                    if not lemmas:
                        raise ValueError("no words")
                except (IndexError, ValueError) as e:
                    _bad(rep, strict, str(fpath), line_no, "synset", f"cannot parse synset record ({e})", "malformed_synset")
                    continue
                gloss = gloss.strip()
                if not sep or not gloss:
                    _bad(rep, strict, str(fpath), line_no, "gloss", "no gloss after '|'", "no_gloss")
                    continue
                defs, exs = split_gloss(gloss)
                meta_base = {"synset": f"{p}:{off:08d}", "lemmas": lemmas}
                k = 0
                if want_defs:
                    for d in defs:
                        text = f"{_headword(lemmas[0])}: {d}" if headword else d
                        rep.kept += 1
                        yield TextRecord(f"wn:{p}:{off:08d}:{k}", text, {**meta_base, "kind": "definition"})
                        k += 1
                else:
                    k += len(defs)
                if want_ex:
                    for e in exs:
                        rep.kept += 1
                        yield TextRecord(f"wn:{p}:{off:08d}:{k}", e, {**meta_base, "kind": "example"})
                        k += 1


def openbook_facts(path: _PathLike, *, strict: bool = False, report: CorpusReport | None = None) -> Iterator[TextRecord]:
    """OpenBookQA's ``openbook.txt``: one science fact per line, in double quotes (removed).

    Args:
        path: the ``openbook.txt`` file of the OpenBookQA release (not bundled; the user's copy).
        strict: raise on an undecodable line.
        report: filled while iterating.
    """
    path = Path(path)
    rep = report if report is not None else CorpusReport()
    rep.source = str(path)
    for line_no, line in _lines(path, rep, strict):
        text = line.strip()
        if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
            text = text[1:-1].strip()
        if not text:
            continue
        rep.kept += 1
        yield TextRecord(f"openbook:{line_no}", text, {"kind": "fact"})


# ----------------------------------------------------------------------------- specs
CORPUS_TYPES: dict[str, Callable[..., Iterator[TextRecord]]] = {
    "text": read_text,
    "jsonl": read_jsonl,
    "wordnet_glosses": wordnet_glosses,
    "openbook": openbook_facts,
}


def open_corpus(spec: Mapping[str, Any] | str, *, base_dir: _PathLike | None = None,
                report: CorpusReport | None = None) -> Iterator[TextRecord]:
    """A corpus from a spec: ``{"type": "text" | "jsonl" | "wordnet_glosses" | "openbook",
    "path": ..., "limit": N, **reader kwargs}``, or a bare path (``.jsonl`` → jsonl, else text).

    Relative paths are resolved against ``base_dir`` (the config file's folder), never the
    working directory. ``limit`` keeps the first ``N`` records. Other keys are passed to the
    reader (e.g. ``text_field`` for jsonl, ``pos`` / ``parts`` / ``headword`` for WordNet).

    Raises:
        ValueError: unknown type, unknown reader option, or a missing ``path``.
    """
    if isinstance(spec, (str, os.PathLike)):
        s = str(spec)
        spec = {"type": "jsonl" if s.endswith((".jsonl", ".jsonl.gz")) else "text", "path": s}
    opts = dict(spec)
    kind = opts.pop("type", None)
    if kind not in CORPUS_TYPES:
        raise ValueError(f"corpus type {kind!r} unknown; valid: {sorted(CORPUS_TYPES)}")
    limit = opts.pop("limit", None)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"corpus limit must be a non-negative integer, got {limit!r}")
    path = opts.pop("path", None)
    if path is not None:
        p = Path(os.path.expandvars(str(path))).expanduser()
        if not p.is_absolute():
            if base_dir is None:
                raise ValueError(f"corpus path {path!r} is relative and no base folder was given")
            p = Path(base_dir) / p
        path = p
    elif kind != "wordnet_glosses":
        raise ValueError(f"corpus of type {kind!r} needs a 'path'")
    reader = CORPUS_TYPES[kind]
    import inspect

    params = inspect.signature(reader).parameters
    unknown = [k for k in opts if k not in params or k in ("path", "report")]
    if unknown:
        valid = sorted(k for k in params if k not in ("path", "report"))
        raise ValueError(f"corpus {kind!r}: unknown option {unknown[0]!r}; valid: {valid + ['limit', 'path']}")
    it = reader(path, report=report, **opts) if (path is not None or kind != "wordnet_glosses") else reader(report=report, **opts)
    return _take(it, limit) if limit is not None else it


def _take(it: Iterator[TextRecord], n: int) -> Iterator[TextRecord]:
    if n <= 0:
        return
    for i, rec in enumerate(it, 1):
        yield rec
        if i >= n:
            break


def iter_corpora(specs: Sequence[Mapping[str, Any] | str], *, base_dir: _PathLike | None = None,
                 reports: list[CorpusReport] | None = None) -> Iterator[TextRecord]:
    """Chain several corpora (in order); one :class:`CorpusReport` per spec is appended to
    ``reports`` when given."""
    for spec in specs:
        rep = CorpusReport()
        if reports is not None:
            reports.append(rep)
        yield from open_corpus(spec, base_dir=base_dir, report=rep)
