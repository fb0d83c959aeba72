"""Loaders: build a :class:`~kgfuse.kg.graph.KnowledgeGraph` from real graph sources, one
loader per module:

- :func:`from_conceptnet` (``conceptnet.py``) streams the official ConceptNet 5 assertions
  file (plain or gzip).
- :func:`from_triples` (``tables.py``) reads delimited ``head, relation, tail[, weight]``
  files, or any column layout (ConceptNet 4, CN-100K, a CSV with extra columns).
- :func:`from_networkx` (``nxgraph.py``) converts a networkx ``DiGraph`` / ``MultiDiGraph``.
- :func:`from_wordnet` (``wordnet.py``) parses the WordNet 3.0 database files.
- ``_common.py``: the load report, malformed-line handling and relation presets they share.

Which loader a path needs is decided in one place, :func:`kgfuse.kg.formats.open_graph`.

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

from ..formats import GraphFormatError
from ._common import INVERSE_PREFIX, MERGED17, LoadReport, load_relation_preset, normalize_conceptnet_uri
from .conceptnet import from_conceptnet
from .nxgraph import from_networkx
from .tables import from_triples
from .wordnet import DEFAULT_WORDNET, WORDNET_POINTERS, from_wordnet, wordnet_senses

__all__ = [
    "GraphFormatError",
    "LoadReport",
    "MERGED17",
    "INVERSE_PREFIX",
    "DEFAULT_WORDNET",
    "load_relation_preset",
    "normalize_conceptnet_uri",
    "from_conceptnet",
    "from_triples",
    "from_networkx",
    "from_wordnet",
    "wordnet_senses",
    "WORDNET_POINTERS",
]
