"""One resolver from a path (and a format name) to a :class:`~kgfuse.kg.KnowledgeGraph`.

Every place that accepts a graph (configs, the CLI's ``--graph``, ``kgfuse graph build`` and
``info``, a saved pipeline) goes through :func:`open_graph`, so the same file with the same
options gives the same graph, and the same hash, whatever the route.

Formats (:data:`GRAPH_FORMATS`; ``format="auto"`` picks one from the path):

============  ==============================================================================
compiled      a folder written by ``KnowledgeGraph.save`` (``graph.json`` + arrays)
wordnet       a WordNet 3.0 database folder (``data.noun`` ...), e.g. ``/usr/share/wordnet``
conceptnet    the official ConceptNet 5 assertions file (``.csv`` / ``.csv.gz``)
conceptnet4   the English ConceptNet 4 table (``head relation tail freq score``, tab-separated):
              weight = ``score``, negated rows (``freq`` < 0) dropped unless
              ``negated="keep"``, relations merged by the ``conceptnet4`` preset
table         any delimited triples table (``.tsv``, ``.txt``, gzip too), with ``columns`` for
              other layouts (CN-100K: ``columns=["relation", "head", "tail"]``); also
              called ``triples``
networkx      a GraphML / GML file read with networkx (edge attribute ``relation``)
============  ==============================================================================

Every loader adds inverse edges by default (``add_inverse=True``; WordNet, whose pointers come
in both directions already, defaults to False); the options used are recorded in
``graph.meta["params"]``.

Errors. A graph source that cannot be read as asked raises :class:`GraphFormatError` (a
``ValueError``), one line naming the file and, where it applies, the line:

- a truncated or corrupt gzip file: ``cn4.tsv.gz: truncated or corrupt gzip file (after line
  1234): Compressed file ended before the end-of-stream marker was reached``;
- a format that cannot be told from the path, or an unknown format name (the message lists
  the valid ones and the closest match);
- a source that gives no edges: an empty file, a header only, or every line skipped or
  malformed: ``x.tsv: no edges loaded (3 lines: 1 header, 2 malformed (columns: 2); ...)``,
  unless ``allow_empty=True``;
- with ``strict=True``, the first malformed line, invalid text encoding included:
  ``x.tsv, line 7, field 'tail' (column 3): not valid utf-8 (byte 0xff at character 4) ...``.
  Without it (the default) malformed lines are skipped and counted by reason in the load
  report (``graph.meta["report"]``), and the first ones are listed with their line numbers.

A missing path raises ``FileNotFoundError``; a damaged compiled graph folder raises
:class:`~kgfuse.kg.store.KGFormatError`.
"""

from __future__ import annotations

import difflib
import gzip
import os
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = ["GRAPH_FORMATS", "CONCEPTNET4_COLUMNS", "GraphFormatError", "detect_graph_format", "open_graph"]


class GraphFormatError(ValueError):
    """A graph source file cannot be read as asked: truncated or corrupt gzip, a malformed line
    (``strict=True``), invalid text encoding (``strict=True``), columns that do not fit the
    file, an unknown or undetectable format, or no edges at all (unless ``allow_empty``).

    The message is one line naming the file (and the line where it applies).

    Attributes:
        path: the file (or folder) read, or ``None``.
        line: the 1-based line number of the problem, or ``None``.
        reason: a short key: ``"gzip"``, ``"format"`` (unknown, undetectable or unreadable),
            ``"layout"`` (``columns`` that do not fit the file), ``"empty"``, or with
            ``strict=True`` the malformed-line reason of the load report (``"encoding"``,
            ``"columns"``, ``"weight"``, ``"json"`` ...).
        report: the :class:`~kgfuse.kg.loaders.LoadReport` of the load, when one exists
            (``"empty"``).
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, line: int | None = None,
                 reason: str | None = None, report: Any = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = reason
        self.report = report


#: what a damaged gzip stream raises while it is read
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _gzip_error(path: str | os.PathLike, lines_read: int, err: BaseException) -> GraphFormatError:
    """The :class:`GraphFormatError` of a truncated or corrupt gzip file, after ``lines_read`` good lines."""
    return GraphFormatError(f"{path}: truncated or corrupt gzip file (after line {lines_read}): {err}",
                            path=path, line=lines_read + 1, reason="gzip")


def _unknown(kind: str, name: Any, valid: Iterable[str]) -> str:
    """``unknown <kind> 'x' (did you mean 'y'?); valid: a, b, c``."""
    valid = list(valid)
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6) if isinstance(name, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid)}"


#: ConceptNet 4's columns as ``from_triples`` roles.
CONCEPTNET4_COLUMNS = {"head": "head", "relation": "relation", "tail": "tail", "weight": "score", "negation": "freq"}
_CN4_HEADER = ["head", "relation", "tail", "freq", "score"]


def _compiled(path, **kw):
    from .graph import KnowledgeGraph

    return KnowledgeGraph.load(path, **kw)


def _wordnet(path, **kw):
    from .loaders import from_wordnet

    return from_wordnet(path, **kw)


def _conceptnet(path, **kw):
    from .loaders import from_conceptnet

    return from_conceptnet(path, **kw)


def _conceptnet4(path, **kw):
    from .loaders import from_triples

    kw.setdefault("columns", dict(CONCEPTNET4_COLUMNS))
    kw.setdefault("relations", "conceptnet4")
    return from_triples(path, **kw)


def _table(path, **kw):
    from .loaders import from_triples

    return from_triples(path, **kw)


def _networkx(path, allow_empty: bool = False, **kw):
    from xml.etree.ElementTree import ParseError

    import networkx as nx

    from .loaders import from_networkx

    name = str(path).lower()
    graphml = name.endswith((".graphml", ".graphml.gz"))
    try:
        G = nx.read_graphml(path) if graphml else nx.read_gml(path)
    except _GZIP_ERRORS as e:
        raise GraphFormatError(f"{path}: truncated or corrupt gzip file: {e}", path=path, reason="gzip") from None
    except (nx.NetworkXError, ParseError, UnicodeDecodeError) as e:
        raise GraphFormatError(f"{path}: not a readable {'GraphML' if graphml else 'GML'} file: {e}", path=path,
                               reason="format") from None
    try:
        kg = from_networkx(G, **kw)
    except ValueError as e:  # the graph's content: an edge without relation, an undirected graph ...
        raise GraphFormatError(f"{path}: {e}", path=path, reason="format") from None
    if kg.num_edges == 0 and not allow_empty:
        raise GraphFormatError(f"{path}: no edges loaded ({kg.num_concepts} nodes, 0 edges); pass "
                               "allow_empty=True to load it anyway", path=path, reason="empty")
    return kg


#: format name -> loader ``(path, **options) -> KnowledgeGraph``.
GRAPH_FORMATS: dict[str, Callable[..., Any]] = {
    "compiled": _compiled,
    "wordnet": _wordnet,
    "conceptnet": _conceptnet,
    "conceptnet4": _conceptnet4,
    "table": _table,
    "triples": _table,
    "networkx": _networkx,
}


def _first_line(path: Path) -> str:
    with open(path, "rb") as f:
        magic = f.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.readline()
    except (OSError, EOFError):
        return ""


def detect_graph_format(path: str | os.PathLike) -> str:
    """The format of ``path`` (see the module docstring); :class:`GraphFormatError` when it cannot tell."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        if (p / "graph.json").is_file():
            return "compiled"
        if (p / "data.noun").is_file() or (p / "dict" / "data.noun").is_file():
            return "wordnet"
        raise GraphFormatError(f"{p}: a folder that is neither a compiled graph (graph.json) nor a WordNet "
                               "database (data.noun)", path=p, reason="format")
    if name.endswith((".csv", ".csv.gz")):
        return "conceptnet"
    if name.endswith((".graphml", ".graphml.gz", ".gml")):
        return "networkx"
    if name.endswith((".tsv", ".txt", ".tsv.gz", ".txt.gz")):
        header = [x.strip().lower() for x in _first_line(p).rstrip("\r\n").split("\t")]
        return "conceptnet4" if header == _CN4_HEADER else "table"
    raise GraphFormatError(f"{p}: cannot tell the graph format from the name; give a format, one of "
                           f"{', '.join(sorted(GRAPH_FORMATS))}", path=p, reason="format")


def open_graph(path: str | os.PathLike, format: str = "auto", *, allow_empty: bool = False, **options: Any):
    """Load the graph at ``path`` in ``format`` (``"auto"``: :func:`detect_graph_format`).

    ``options`` go to the format's loader (``relations``, ``add_inverse``, ``columns``,
    ``negated``, ``strict`` ...).

    Args:
        path: a graph file or folder.
        format: one of :data:`GRAPH_FORMATS`, or ``"auto"``.
        allow_empty: accept a source that gives no edges (an empty file, a header only,
            every line skipped or malformed); by default that is a :class:`GraphFormatError`
            naming the file and the load report's counts. A compiled graph loads as saved.
        **options: the loader's keyword arguments.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        GraphFormatError: an unknown or undetectable format, a truncated or corrupt gzip
            file, a malformed line with ``strict=True``, or no edges (see the module docstring).
        KGFormatError: a compiled graph folder is damaged.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"graph not found: {p}")
    fmt = detect_graph_format(p) if format == "auto" else format
    loader = GRAPH_FORMATS.get(fmt) if isinstance(fmt, str) else None
    if loader is None:
        raise GraphFormatError(f"{p}: " + _unknown("graph format", fmt, ["auto", *sorted(GRAPH_FORMATS)]),
                               path=p, reason="format")
    if fmt == "wordnet" and (p / "dict" / "data.noun").is_file() and not (p / "data.noun").is_file():
        p = p / "dict"
    if fmt != "compiled":
        options["allow_empty"] = allow_empty
    return loader(p, **options)
