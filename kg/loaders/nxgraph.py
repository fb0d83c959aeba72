"""networkx ``DiGraph`` / ``MultiDiGraph`` graphs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ..graph import KnowledgeGraph
from ._common import LoadReport, _finish_report, _sorted_graph

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx


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


