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
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any, Callable

__all__ = ["GRAPH_FORMATS", "CONCEPTNET4_COLUMNS", "detect_graph_format", "open_graph"]

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


def _networkx(path, **kw):
    import networkx as nx

    from .loaders import from_networkx

    name = str(path).lower()
    G = nx.read_graphml(path) if name.endswith((".graphml", ".graphml.gz")) else nx.read_gml(path)
    return from_networkx(G, **kw)


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
    """The format of ``path`` (see the module docstring); ``ValueError`` when it cannot tell."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        if (p / "graph.json").is_file():
            return "compiled"
        if (p / "data.noun").is_file() or (p / "dict" / "data.noun").is_file():
            return "wordnet"
        raise ValueError(f"{p}: a folder that is neither a compiled graph (graph.json) nor a WordNet "
                         "database (data.noun)")
    if name.endswith((".csv", ".csv.gz")):
        return "conceptnet"
    if name.endswith((".graphml", ".graphml.gz", ".gml")):
        return "networkx"
    if name.endswith((".tsv", ".txt", ".tsv.gz", ".txt.gz")):
        header = [x.strip().lower() for x in _first_line(p).rstrip("\r\n").split("\t")]
        return "conceptnet4" if header == _CN4_HEADER else "table"
    raise ValueError(f"cannot tell the graph format of {p}; give one of {sorted(GRAPH_FORMATS)}")


def open_graph(path: str | os.PathLike, format: str = "auto", **options: Any):
    """Load the graph at ``path`` in ``format`` (``"auto"``: :func:`detect_graph_format`).

    ``options`` go to the format's loader (``relations``, ``add_inverse``, ``columns``,
    ``negated`` ...). Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for
    an unknown format.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"graph not found: {p}")
    fmt = detect_graph_format(p) if format == "auto" else format
    loader = GRAPH_FORMATS.get(fmt)
    if loader is None:
        raise ValueError(f"unknown graph format {fmt!r}; valid: auto, {', '.join(sorted(GRAPH_FORMATS))}")
    if fmt == "wordnet" and (p / "dict" / "data.noun").is_file() and not (p / "data.noun").is_file():
        p = p / "dict"
    return loader(p, **options)
