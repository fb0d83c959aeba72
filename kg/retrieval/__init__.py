"""Retrieval: cut out the part of the graph that connects question concepts to answer concepts.

Two retrievers, both vectorised over the graph's CSR arrays (numpy, no networkx):

- :class:`PathRetriever` -- KagNet (Lin et al., 2019): every simple path of at most
  ``max_hops`` edges between each (question concept, answer concept) pair, shortest first,
  at most ``max_paths`` per pair.
- :class:`SubgraphRetriever` -- MHGRN (Feng et al., 2020) / QA-GNN (Yasunaga et al., 2021):
  the grounded concepts plus the "bridging" concepts adjacent to both a question concept and
  an answer concept, cut to ``max_nodes`` by a pluggable ranking, with all edges among them;
  ``ranking="relevance"`` ranks by a language model's relevance to the statement (QA-GNN)
  and returns the kept nodes' scores as ``node_score``.

Both return :class:`KGData`, a :class:`torch_geometric.data.Data` whose nodes are the
grounded question concepts, then the answer concepts, then the other retrieved concepts
(``node_type`` :data:`NODE_QUESTION`, :data:`NODE_ANSWER`, :data:`NODE_OTHER`).
Both work in two steps that can run on different machines:

1. ``retrieve_nodes(grounding)`` -- the *node set* (``concept_ids``, ``node_type`` and, for
   paths, ``paths``, ``path_rels``, ``path_len``): the search, which needs the grounding;
2. ``add_edges(arrays)`` -- ``edge_index`` / ``edge_type``, rebuilt from the graph alone
   (:class:`EdgeRebuilder`: the induced edges, or the edges of the kept paths).

``retrieve_arrays(grounding)`` does both and returns plain numpy arrays;
:mod:`kgfuse.kg.preprocess` caches only the node sets (a few bytes per node) and rebuilds
the edges when a statement is read. ``explain(data, graph)`` renders what they found as
``plate --AtLocation--> cupboard`` lines.

Layout of the package: :mod:`.base` (node types, array helpers, the retriever base class,
rendering), :mod:`.adjacency` (CSR gathers, edge rebuild, inverse relations),
:mod:`.registry` (:data:`RETRIEVERS`, :func:`register_retriever`), then one module per
retriever (:mod:`.paths`, :mod:`.subgraph`). Every module of this package is imported with
it, so a retriever added as a new module here is registered without further edits.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

# Private names are re-exported too: they were importable from the single-module kg.retrieval.
from .adjacency import LOOKUP_FACTOR, EdgeRebuilder, _Adjacency, inverse_relations, path_edges  # noqa: F401
from .base import (  # noqa: F401
    _I64,
    NODE_ANSWER,
    NODE_OTHER,
    NODE_QUESTION,
    _callable_name,
    _concat_ranges,
    _empty_arrays,
    _grounded,
    _localise,
    _node_layout,
    _pad_columns,
    _Retriever,
    _run_flags,
    _run_start_of,
    arrays_to_kgdata,
    explain,
    question_answer_joins,
    statement_text,
)
from .paths import PATH_WINDOW, PathRetriever, _Half  # noqa: F401
from .registry import RETRIEVERS, build_retriever, register_retriever
from .subgraph import (  # noqa: F401
    RANKINGS, RELEVANCE, RelevanceScorer, SubgraphRetriever, rank_connectivity, rank_degree, rank_id,
)

__all__ = [
    "KGData",
    "NODE_QUESTION",
    "NODE_ANSWER",
    "NODE_OTHER",
    "question_answer_joins",
    "PathRetriever",
    "SubgraphRetriever",
    "RETRIEVERS",
    "register_retriever",
    "build_retriever",
    "RANKINGS",
    "RELEVANCE",
    "RelevanceScorer",
    "statement_text",
    "explain",
    "arrays_to_kgdata",
    "EdgeRebuilder",
    "path_edges",
    "inverse_relations",
]

# a retriever is one module of this package with a @register_retriever class: import them all
for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")
del _mod


def __getattr__(name: str) -> Any:
    # KGData (a torch_geometric Data) is defined in ..kgdata, so that importing this package
    # (the retriever registry, the search) does not import torch and torch_geometric
    if name == "KGData":
        from ..kgdata import KGData

        globals()["KGData"] = KGData
        return KGData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
