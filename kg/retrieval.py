"""Retrieval: cut out the part of the graph that connects question concepts to answer concepts.

Two retrievers, both vectorised over the graph's CSR arrays (numpy, no networkx):

- :class:`PathRetriever` -- KagNet (Lin et al., 2019): every simple path of at most
  ``max_hops`` edges between each (question concept, answer concept) pair, shortest first,
  at most ``max_paths`` per pair.
- :class:`SubgraphRetriever` -- MHGRN (Feng et al., 2020) / QA-GNN (Yasunaga et al., 2021):
  the grounded concepts plus the "bridging" concepts adjacent to both a question concept and
  an answer concept, cut to ``max_nodes`` by a pluggable ranking, with all edges among them.

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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from kgfuse.registry import registrar

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

    from .graph import KnowledgeGraph
    from .kgdata import KGData
    from .linking import Grounding

__all__ = [
    "KGData",
    "NODE_QUESTION",
    "NODE_ANSWER",
    "NODE_OTHER",
    "PathRetriever",
    "SubgraphRetriever",
    "RETRIEVERS",
    "register_retriever",
    "build_retriever",
    "RANKINGS",
    "explain",
    "arrays_to_kgdata",
    "EdgeRebuilder",
    "path_edges",
    "inverse_relations",
]

NODE_QUESTION = 0
NODE_ANSWER = 1
NODE_OTHER = 2

_I64 = np.int64


# --------------------------------------------------------------------------- data
def __getattr__(name: str) -> Any:
    # KGData (a torch_geometric Data) is defined in .kgdata, so that importing this module
    # (the retriever registry, the search) does not import torch and torch_geometric
    if name == "KGData":
        from .kgdata import KGData

        globals()["KGData"] = KGData
        return KGData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def arrays_to_kgdata(arrays: Mapping[str, np.ndarray]) -> KGData:
    """Wrap the numpy arrays of ``retrieve_arrays`` into a :class:`KGData`."""
    import torch

    from .kgdata import KGData

    kw = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=_I64)) for k, v in arrays.items()}
    n = int(kw["concept_ids"].shape[0])
    return KGData(num_nodes=n, **kw)


def _empty_arrays(max_hops: int | None) -> dict[str, np.ndarray]:
    out = {
        "concept_ids": np.zeros(0, _I64),
        "node_type": np.zeros(0, _I64),
        "edge_index": np.zeros((2, 0), _I64),
        "edge_type": np.zeros(0, _I64),
    }
    if max_hops is not None:
        out["paths"] = np.zeros((0, max_hops + 1), _I64)
        out["path_rels"] = np.zeros((0, max_hops), _I64)
        out["path_len"] = np.zeros(0, _I64)
    return out


def _grounded(grounding: "Grounding") -> tuple[np.ndarray, np.ndarray]:
    """Question and answer concept arrays: deduplicated, order kept, answers removed from
    the question side."""
    a = list(dict.fromkeys(int(c) for c in grounding.answer_concepts))
    aset = set(a)
    q = [c for c in dict.fromkeys(int(c) for c in grounding.question_concepts) if c not in aset]
    return np.asarray(q, dtype=_I64), np.asarray(a, dtype=_I64)


def _node_layout(q: np.ndarray, a: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nodes = np.concatenate((q, a, others)).astype(_I64, copy=False)
    types = np.concatenate(
        (np.full(q.size, NODE_QUESTION, _I64), np.full(a.size, NODE_ANSWER, _I64), np.full(others.size, NODE_OTHER, _I64))
    )
    return nodes, types


def _localise(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Local positions in ``nodes`` (unique, any order) of global ids ``x`` (all present)."""
    sorter = np.argsort(nodes, kind="stable")
    return sorter[np.searchsorted(nodes, x, sorter=sorter)]


def _concat_ranges(starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``concat(arange(s, s + l))`` for each (s, l) and the index of the range of each item."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, _I64), np.zeros(0, _I64)
    owner = np.repeat(np.arange(lens.size, dtype=_I64), lens)
    offs = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return np.arange(total, dtype=_I64) + offs, owner


#: The pair-index lookup replaces the out-edge scan for a node whose out-degree exceeds
#: this many times the size of the node set (a binary search costs about as much as
#: scanning that many out-edges; measured on the full-scale graph, see docs/benchmarks.md).
LOOKUP_FACTOR = 8


#: Edge cost of the first window of the 3-edge path search (then doubling); see
#: ``PathRetriever`` (Search). Results do not depend on it, only the work done.
PATH_WINDOW = 4096


def _run_flags(x: np.ndarray) -> np.ndarray:
    """``True`` where a run of equal values starts in ``x``."""
    d = np.empty(x.size, dtype=bool)
    if x.size:
        d[0] = True
        np.not_equal(x[1:], x[:-1], out=d[1:])
    return d


def _run_start_of(x: np.ndarray) -> np.ndarray:
    """For every element of ``x``, the index where its run of equal values starts."""
    return np.maximum.accumulate(np.where(_run_flags(x), np.arange(x.size, dtype=_I64), 0))


def _pad_columns(a: np.ndarray, width: int, fill: Any) -> np.ndarray:
    """``a`` [P, k] widened to ``width`` columns with ``fill`` (``"edge"``: the last column)."""
    if a.shape[1] == width:
        return a
    out = np.empty((a.shape[0], width), dtype=a.dtype)
    out[:, : a.shape[1]] = a
    out[:, a.shape[1]:] = a[:, -1:] if fill == "edge" else fill
    return out


class _Adjacency:
    """Vectorised neighbour gathers over a graph's CSR arrays (with reusable scratch arrays)."""

    def __init__(self, graph: "KnowledgeGraph") -> None:
        self.graph = graph
        self.out_ptr = np.asarray(graph.out_ptr)
        self.in_ptr = np.asarray(graph.in_ptr)
        self.in_order = np.asarray(graph.in_order)
        self.head = np.asarray(graph.head)
        self.tail = np.asarray(graph.tail)
        self.rel = np.asarray(graph.relation)
        self.out_deg = np.diff(self.out_ptr)
        self.in_deg = np.diff(self.in_ptr)
        self._pos = np.zeros(graph.num_concepts, dtype=_I64)
        self._mask = np.zeros(graph.num_concepts, dtype=bool)
        self._in_nbr: np.ndarray | None = None

    @property
    def in_nbr(self) -> np.ndarray:
        """Heads of the in-edges in in-CSR order (``head[in_order]``; built once), so that
        gathering in-neighbours reads one array sequentially."""
        if self._in_nbr is None:
            self._in_nbr = self.head[self.in_order]
        return self._in_nbr

    def edge_ids(self, slot: np.ndarray, fwd: np.ndarray) -> np.ndarray:
        """Edge ids of gathered slots (out-CSR slot = edge id; in-CSR slot via ``in_order``)."""
        if fwd.all():
            return slot
        return np.where(fwd, slot, self.in_order[np.where(fwd, 0, slot)])

    def local_edges(self, nodes: np.ndarray, eids: np.ndarray) -> np.ndarray:
        """``[2, len(eids)]`` positions in ``nodes`` (unique) of the edges' heads and tails."""
        pos = self._pos
        pos[nodes] = np.arange(nodes.size, dtype=_I64)
        return np.stack((pos[self.head[eids]], pos[self.tail[eids]]))

    def gather(self, nodes: np.ndarray, out: bool, inn: bool,
               grouped: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Edges around ``nodes``: (owner index into nodes, neighbour, CSR slot, forward flag);
        :meth:`edge_ids` turns (slot, forward) into edge ids.

        With ``grouped``, by owner in ascending order and per owner its out-edges (ascending
        edge id), then its in-edges; else all out-edges, then all in-edges."""
        parts = []
        if out:
            e, own = _concat_ranges(self.out_ptr[nodes], self.out_deg[nodes])
            parts.append((own, self.tail[e], e, np.ones(e.size, dtype=bool)))
        if inn:
            pos, own = _concat_ranges(self.in_ptr[nodes], self.in_deg[nodes])
            parts.append((own, self.in_nbr[pos], pos, np.zeros(pos.size, dtype=bool)))
        if len(parts) == 1:
            return parts[0]
        own, nbr, e, fwd = (np.concatenate(x) for x in zip(*parts))
        if not grouped:
            return own, nbr, e, fwd
        order = np.argsort(own, kind="stable")  # merge of two sorted runs
        return own[order], nbr[order], e[order], fwd[order]

    def induced(self, nodes: np.ndarray) -> np.ndarray:
        """Sorted ids of the edges with both ends in ``nodes`` (unique ids).

        Per node u of S = ``nodes``, whichever is cheaper: scan u's out-edges and keep those
        whose tail is in S (cost: out-degree of u), or look the |S| pairs (u, v), v in S, up
        in the graph's sorted pair index (:meth:`KnowledgeGraph.pair_index`; cost: |S| binary
        searches). A hub's thousands of out-edges are thus never scanned, and the total cost
        is ``sum_u min(deg(u), LOOKUP_FACTOR * |S|)`` plus the edges found.
        """
        s = np.sort(nodes)
        if s.size == 0:
            return np.zeros(0, _I64)
        deg = self.out_deg[s]
        lookup = deg > LOOKUP_FACTOR * s.size
        parts = []
        if not lookup.all():
            rows = ~lookup
            e, _ = _concat_ranges(self.out_ptr[s[rows]], deg[rows])
            mask = self._mask
            mask[s] = True
            parts.append(e[mask[self.tail[e]]])
            mask[s] = False
        if lookup.any():
            keys, ptr, order = self.graph.pair_index()
            q = (s[lookup][:, None] * np.int64(self.graph.num_concepts) + s[None, :]).reshape(-1)
            u = np.minimum(np.searchsorted(keys, q), keys.size - 1)
            u = u[keys[u] == q]
            lo = ptr[u].astype(_I64)
            pos, _ = _concat_ranges(lo, ptr[u + 1].astype(_I64) - lo)
            parts.append(order[pos].astype(_I64))
        if len(parts) == 1 and not lookup.any():
            return parts[0]
        return np.sort(np.concatenate(parts))

    def cost(self, nodes: np.ndarray, out: bool, inn: bool) -> np.ndarray:
        c = np.zeros(nodes.size, dtype=_I64)
        if out:
            c += self.out_deg[nodes]
        if inn:
            c += self.in_deg[nodes]
        return c


def path_edges(concept_ids: np.ndarray, paths: np.ndarray, path_rels: np.ndarray, path_len: np.ndarray,
               num_relations: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct graph edges walked by the paths: ``(edge_index [2, e], edge_type [e])``.

    Step k of path p goes from local node ``paths[p, k]`` to ``paths[p, k + 1]``; relation
    ``r < num_relations`` means the edge ``(paths[p, k], r, paths[p, k + 1])`` was walked
    forward, ``r + num_relations`` that ``(paths[p, k + 1], r, paths[p, k])`` was walked
    backward. Edges come out in the graph's canonical order (global head, relation, tail),
    i.e. ascending edge id. Needs no graph.
    """
    R = int(num_relations)
    H = path_rels.shape[1] if path_rels.ndim == 2 else 0
    if path_len.size == 0 or H == 0:
        return np.zeros((2, 0), _I64), np.zeros(0, _I64)
    valid = np.arange(H)[None, :] < path_len[:, None]
    u, v, r = paths[:, :-1][valid], paths[:, 1:][valid], path_rels[valid]
    back = r >= R
    h, t, r = np.where(back, v, u), np.where(back, u, v), np.where(back, r - R, r)
    n = np.int64(max(int(concept_ids.size), 1))
    key = np.unique((h * R + r) * n + t)
    h, r, t = key // (R * n), (key // n) % R, key % n
    cid = np.asarray(concept_ids, dtype=_I64)
    order = np.lexsort((cid[t], r, cid[h]))
    return np.stack((h[order], t[order])).astype(_I64), r[order].astype(_I64)


class EdgeRebuilder:
    """Adds ``edge_index`` / ``edge_type`` to a stored node set, from the graph alone.

    ``mode="induced"``: every graph edge among ``concept_ids`` (:class:`SubgraphRetriever`,
    ``PathRetriever(edges="induced")``); ``mode="paths"``: the edges walked by ``paths``
    (:func:`path_edges`; the default of :class:`PathRetriever`). Reuses scratch arrays: one
    rebuilder per process, not thread-safe.

    Args:
        graph: the graph the node sets were retrieved from (same hash).
    """

    MODES = ("induced", "paths")

    def __init__(self, graph: "KnowledgeGraph") -> None:
        self.graph = graph
        self._adj = _Adjacency(graph)

    def induced(self, concept_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(edge_index [2, e] local, edge_type [e])`` of all graph edges among the nodes."""
        concept_ids = np.asarray(concept_ids, dtype=_I64)
        eids = self._adj.induced(concept_ids)
        return self._adj.local_edges(concept_ids, eids).astype(_I64), self._adj.rel[eids].astype(_I64)

    def __call__(self, arrays: Mapping[str, np.ndarray], mode: str) -> dict[str, np.ndarray]:
        out = dict(arrays)
        if mode == "induced":
            out["edge_index"], out["edge_type"] = self.induced(out["concept_ids"])
        elif mode == "paths":
            out["edge_index"], out["edge_type"] = path_edges(
                out["concept_ids"], out["paths"], out["path_rels"], out["path_len"], self.graph.num_relations
            )
        else:
            raise ValueError(f"edge mode must be one of {self.MODES}, not {mode!r}")
        return out


def inverse_relations(graph: "KnowledgeGraph") -> np.ndarray | None:
    """``inv[r]``, the relation of the reversed twin of every ``r`` edge, when the graph
    contains inverse relations for *all* its edges; else ``None``.

    Relations pair by name (``x`` and ``_x``, the loaders' ``add_inverse`` convention) or,
    for a loader that named its inverses otherwise, by the recorded
    ``meta["params"]["add_inverse"]`` and ``meta["num_relations_forward"]`` (relation
    ``r + F`` is the inverse of ``r``). Unless the loader recorded ``add_inverse=True``,
    every edge ``(h, r, t)`` is checked to have its twin ``(t, inv[r], h)`` (one vectorised
    lookup over the canonical edge order).
    """
    R = graph.num_relations
    if R == 0 or graph.num_edges == 0:
        return None
    names = list(graph.relations)
    idx = {name: i for i, name in enumerate(names)}
    inv = np.full(R, -1, dtype=_I64)
    for i, name in enumerate(names):
        j = idx.get(name[1:]) if name.startswith("_") else idx.get("_" + name)
        if j is not None:
            inv[i] = j
    params = graph.meta.get("params") if isinstance(graph.meta, Mapping) else None
    trusted = isinstance(params, Mapping) and params.get("add_inverse") is True
    if (inv < 0).any():
        F = graph.meta.get("num_relations_forward")
        if not (trusted and isinstance(F, int) and 2 * F == R):
            return None
        inv = (np.arange(R, dtype=_I64) + F) % R
    if trusted:
        return inv
    N = graph.num_concepts
    if float(N) * N * R >= 2.0**62:  # keys would overflow: cannot check, do not assume
        return None
    head, rel, tail = np.asarray(graph.head), np.asarray(graph.relation), np.asarray(graph.tail)
    key = (head * R + rel) * N + tail  # ascending: the canonical edge order
    twin = (tail * R + inv[rel]) * N + head
    pos = np.minimum(np.searchsorted(key, twin), key.size - 1)
    return inv if bool((key[pos] == twin).all()) else None


# --------------------------------------------------------------------------- paths
class _Half:
    """Half-paths grown from a set of sources: ``src`` [P] (index of the source), ``nodes``
    [P, k+1], ``edges`` [P, k], ``fwd`` [P, k] (edge followed head -> tail while walking away
    from the source)."""

    __slots__ = ("src", "nodes", "edges", "fwd")

    def __init__(self, src, nodes, edges, fwd):
        self.src, self.nodes, self.edges, self.fwd = src, nodes, edges, fwd

    @classmethod
    def start(cls, sources: np.ndarray) -> "_Half":
        p = sources.size
        return cls(np.arange(p, dtype=_I64), sources.reshape(p, 1).astype(_I64), np.zeros((p, 0), _I64), np.zeros((p, 0), bool))

    @property
    def size(self) -> int:
        return int(self.src.size)

    @property
    def end(self) -> np.ndarray:
        return self.nodes[:, -1]

    def take(self, idx: np.ndarray) -> "_Half":
        return _Half(self.src[idx], self.nodes[idx], self.edges[idx], self.fwd[idx])


#: name -> retriever class (``retriever.type`` of a config). A new retriever is one class with
#: ``retrieve_nodes`` / ``add_edges`` (or ``retrieve_arrays``), ``config`` and ``explain``, and
#: one :func:`register_retriever` decorator.
RETRIEVERS: dict[str, type] = {}
_register_retriever = registrar(RETRIEVERS, "retriever", "retriever_name")


def register_retriever(name: str) -> Callable[[type], type]:
    """Class decorator registering a retriever under ``name`` (``retriever: {type: name}``);
    its constructor takes the graph first, then keyword options."""
    return _register_retriever(name)


def build_retriever(graph: "KnowledgeGraph", kind: str = "path", **options: Any):
    """The registered retriever ``kind`` over ``graph`` with keyword ``options``.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    cls = RETRIEVERS.get(str(kind).lower())
    if cls is None:
        raise ValueError(f"unknown retriever type {kind!r}; valid: {sorted(RETRIEVERS)}")
    return cls(graph, **options)


class _Retriever:
    """What both retrievers share: ``retrieve_nodes`` (the node set, cached by
    :func:`~kgfuse.kg.preprocess.preprocess_dataset`) then ``add_edges`` (rebuilt on read)."""

    graph: "KnowledgeGraph"

    def retrieve_nodes(self, grounding: "Grounding") -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def add_edges(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def retrieve_arrays(self, grounding: "Grounding") -> dict[str, np.ndarray]:
        """The retrieved subgraph as numpy arrays (fields of :class:`KGData`)."""
        return self.add_edges(self.retrieve_nodes(grounding))

    def __call__(self, grounding: "Grounding") -> KGData:
        return arrays_to_kgdata(self.retrieve_arrays(grounding))

    def explain(self, data: KGData, graph: "KnowledgeGraph | None" = None, limit: int | None = None) -> list[str]:
        """Readable lines: one per path (``plate --AtLocation--> cupboard <--IsA-- kitchen``)
        where the data holds paths, else one per edge."""
        return explain(data, graph or self.graph, limit=limit)


@register_retriever("path")
class PathRetriever(_Retriever):
    """KagNet's path finder: simple paths between question and answer concepts.

    For every pair (q, a) of a question concept and an answer concept, the simple paths
    ``q = v_0 - v_1 - ... - v_h = a`` with ``1 <= h <= max_hops`` are collected shortest
    first: all paths of length 1, then of length 2, ... until ``max_paths`` are found. When
    a length has more paths than the remaining room, the first ones in the meet-in-the-middle
    enumeration order are kept, so a hub pair with millions of 3-hop paths costs what it
    keeps. That order: forward half-paths (grown from q) in generation order -- by question
    concept, then step by step each node's out-edges in ascending edge id (= relation, then
    tail), then its in-edges -- and for each of them the backward half-paths (grown from a)
    in the same generation order; at length 3 the side that was grown to two edges is the
    outer one (see Search). The kept paths are returned sorted by (pair, length, node ids,
    edge ids).

    **What counts as a path.** A path is a sequence of *graph edges* with no repeated node.
    Undirected search (``directed=False``, as KagNet searches the undirected graph): each
    edge may be walked either way; walking ``u -r-> v`` from v to u is recorded as relation
    ``r + num_relations``. Parallel edges (same ends, different relations) give different
    paths. This is exactly the set of ``networkx.all_simple_edge_paths`` on the
    ``MultiGraph`` (``directed=False``) or the ``MultiDiGraph`` (``directed=True``, edges
    walked forward only) of the graph.

    **Direction (default ``directed=None``: auto).** When the graph already holds the
    inverse twin ``(t, _r, h)`` of every edge ``(h, r, t)`` (the loaders' ``add_inverse``;
    see :func:`inverse_relations`), an undirected search would return every path twice
    (``plate --atlocation--> cupboard`` and ``plate <--_atlocation-- cupboard``), so auto
    follows edges forward only: walking the twin forward *is* walking the edge backward,
    and each undirected path of the graph without inverses is found exactly once. On any
    other graph auto searches both directions. ``retriever.directed`` holds the resolved
    choice; ``config`` records both.

    **Search.** Meet in the middle: half-paths are grown from all question concepts at once
    and from all answer concepts at once, one vectorised CSR gather per level, and joined on
    their end node: length ``h`` joins ``ceil(h/2)``/``floor(h/2)`` levels. For ``h = 3``
    whichever side is cheaper to grow is grown to two edges, only where it reaches the
    other side's frontier, so the work is the sum of the degrees of the concepts next to
    the grounded ones, not the number of 2-hop walks; that grown side is then the *outer*
    side of the enumeration order above (for the backward side: backward half-path first,
    then forward), and it is grown in windows of its half-paths (generation order,
    doubling edge cost from ``PATH_WINDOW``) until every pair has ``max_paths`` paths, so
    pairs with plenty of short paths stop early. Windows change the work, not the result.

    **Caps (hubs).** Growing a frontier gathers the edges of its end nodes. When that would
    exceed ``max_expansion`` edges for one side and level, frontier nodes are expanded in
    ascending degree order until the budget is spent, so paths *through* the biggest hubs
    are skipped (a grounded hub itself is always expanded at the first level). At most
    ``max_candidates`` joined paths are materialised per pair and level.
    ``retriever.truncated`` tells whether the expansion budget cut the last search.

    Args:
        graph: the knowledge graph.
        max_hops: longest path, in edges (1..4).
        max_paths: paths kept per (question, answer) pair.
        directed: ``True``: follow edges head -> tail only; ``False``: both ways;
            ``None`` (default): ``True`` when the graph holds the inverse of every edge, else
            ``False`` (see Direction).
        scorer: optional ``scorer(paths_nodes [P, max_hops+1] global ids padded by repeating
            the last node, paths_rels [P, max_hops] as in ``path_rels``, path_len [P]) ->
            scores [P]``; with it, the ``scorer_top_k`` best paths per pair are kept (and
            paths scoring below ``scorer_threshold``, when given, are dropped).
        scorer_top_k: paths kept per pair after scoring.
        scorer_threshold: minimum score.
        max_expansion: edge-gather budget per side and level (see Caps).
        max_candidates: joined paths materialised per pair and level (see Caps).
        edges: ``"paths"`` (default): the subgraph's edges are the edges of the kept paths;
            ``"induced"``: all graph edges among the path nodes.
    """

    def __init__(
        self,
        graph: "KnowledgeGraph",
        max_hops: int = 3,
        max_paths: int = 100,
        directed: bool | None = None,
        scorer: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
        *,
        scorer_top_k: int = 10,
        scorer_threshold: float | None = None,
        max_expansion: int = 200_000,
        max_candidates: int = 1_000_000,
        edges: str = "paths",
    ) -> None:
        if not 1 <= int(max_hops) <= 4:
            raise ValueError(f"max_hops must be in 1..4, got {max_hops}")
        if max_paths < 1:
            raise ValueError(f"max_paths must be >= 1, got {max_paths}")
        if edges not in ("paths", "induced"):
            raise ValueError(f"edges must be 'paths' or 'induced', not {edges!r}")
        self.graph = graph
        self.max_hops = int(max_hops)
        self.max_paths = int(max_paths)
        self.direction = "auto" if directed is None else ("directed" if directed else "undirected")
        self.directed = (inverse_relations(graph) is not None) if directed is None else bool(directed)
        self.scorer = scorer
        self.scorer_top_k = int(scorer_top_k)
        self.scorer_threshold = scorer_threshold
        self.max_expansion = int(max_expansion)
        self.max_candidates = int(max_candidates)
        self.edges = edges
        self._adj_obj: _Adjacency | None = None
        self._edges_obj: EdgeRebuilder | None = None
        self.truncated = False

    # the search structures are made on first use (a cache hit never needs them)
    @property
    def _adj(self) -> _Adjacency:
        if self._adj_obj is None:
            self._adj_obj = _Adjacency(self.graph)
            if not self.directed:
                self._adj_obj.in_nbr  # noqa: B018  (built once, shared by forked workers)
        return self._adj_obj

    @property
    def _mask(self) -> np.ndarray:
        return self._adj._mask

    @property
    def _edges(self) -> EdgeRebuilder:
        if self._edges_obj is None:
            self._edges_obj = EdgeRebuilder(self.graph)
        return self._edges_obj

    def build(self) -> "PathRetriever":
        """Make the search structures now (before worker processes fork); otherwise the
        first search does."""
        self._adj, self._edges  # noqa: B018
        return self

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able configuration (part of cache keys)."""
        return {
            "class": "PathRetriever",
            "version": 3,  # 3: windowed 3-edge level, grown side outer (which paths fill a cap)
            "max_hops": self.max_hops,
            "max_paths": self.max_paths,
            "direction": self.direction,
            "directed": self.directed,
            "scorer": None if self.scorer is None else _callable_name(self.scorer),
            "scorer_top_k": self.scorer_top_k if self.scorer is not None else None,
            "scorer_threshold": self.scorer_threshold if self.scorer is not None else None,
            "max_expansion": self.max_expansion,
            "max_candidates": self.max_candidates,
            "edges": self.edges,
        }

    # ------------------------------------------------------------------ growth and join
    def _budget_rows(self, half: _Half, forward_side: bool) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``half`` to expand (ascending) under ``max_expansion``, and their costs."""
        use_out = (not self.directed) or forward_side
        use_in = (not self.directed) or not forward_side
        ends = half.end
        cost = self._adj.cost(ends, use_out, use_in)
        rows = np.arange(half.size, dtype=_I64)
        if int(cost.sum()) > self.max_expansion and half.nodes.shape[1] > 1:
            order = np.lexsort((ends, cost))
            keep = order[np.cumsum(cost[order]) <= self.max_expansion]
            rows = np.sort(keep)
            self.truncated = True
        return rows, cost[rows]

    def _grow(self, half: _Half, forward_side: bool, target: np.ndarray | None,
              rows: np.ndarray | None = None) -> _Half:
        """One more edge on every half-path (or on ``rows``, already within the budget);
        keep simple ones ending in ``target`` (if given)."""
        adj = self._adj
        use_out = (not self.directed) or forward_side
        use_in = (not self.directed) or not forward_side
        ends = half.end
        if rows is None:
            rows, _ = self._budget_rows(half, forward_side)
        own, nxt, slot, fwd = adj.gather(ends[rows], use_out, use_in)
        if target is not None:
            mask = self._mask
            mask[target] = True
            sel = np.flatnonzero(mask[nxt])
            mask[target] = False
            own, nxt, slot, fwd = own[sel], nxt[sel], slot[sel], fwd[sel]
        own = rows[own]
        # simple: the new node is not already on the half-path
        k = half.nodes.shape[1]
        if k == 1:
            sel = half.nodes[own, 0] != nxt
        else:
            prev = half.nodes[own]
            sel = ~(prev == nxt[:, None]).any(axis=1)
        own, nxt, slot, fwd = own[sel], nxt[sel], slot[sel], fwd[sel]
        eid = adj.edge_ids(slot, fwd)
        return _Half(
            half.src[own],
            np.concatenate((half.nodes[own], nxt[:, None]), axis=1),
            np.concatenate((half.edges[own], eid[:, None]), axis=1),
            np.concatenate((half.fwd[own], fwd[:, None]), axis=1),
        )

    def _join(self, f: _Half, b: _Half, quota: np.ndarray, n_a: int) -> tuple[np.ndarray, ...]:
        """Paths q .. m .. a from forward half ``f`` and backward half ``b`` meeting at m.

        At most ``quota[q * n_a + a]`` paths per pair: the first ones in the order of
        (forward half-path, backward half-path), both in generation order (``f`` comes
        grouped by source); only those are materialised, so hub pairs with millions of
        candidates cost what they keep.
        """
        if f.size == 0 or b.size == 0:
            return ()
        # only half-paths ending where the other side ends can meet (order kept)
        mask = self._mask
        mask[b.end] = True
        fk = mask[f.end]
        mask[b.end] = False
        mask[f.end] = True
        bk = mask[b.end]
        mask[f.end] = False
        if not fk.any():
            return ()
        # b's rows sorted by (source, end) through an index (no copy of the half-paths);
        # generation order within equal keys
        N = np.int64(self.graph.num_concepts)
        bsel = np.flatnonzero(bk)
        bkey = b.src[bsel] * N + b.end[bsel]
        o = np.argsort(bkey, kind="stable")
        bidx, bkey = bsel[o], bkey[o]
        # Per answer concept ai: only the rows of f ending where one of ai's half-paths ends
        # (found with the scratch mask) are searched in ai's slice of bkey. f is sorted by
        # source, so the matches of one pair are contiguous along those rows.
        outs = []
        bsrc = b.src[bidx]  # ascending
        a_first = np.flatnonzero(_run_flags(bsrc))
        a_stop = np.append(a_first[1:], bsrc.size)
        f_end, f_src = f.end, f.src
        nsrc = int(f_src.max()) + 1
        for ai, s0, s1 in zip(bsrc[a_first].tolist(), a_first.tolist(), a_stop.tolist()):
            keys = bkey[s0:s1]
            ends = b.end[bidx[s0:s1]]
            mask[ends] = True
            rows = np.flatnonzero(mask[f_end])
            mask[ends] = False
            if rows.size == 0:
                continue
            fsrc = f_src[rows]
            fq = ai * N + f_end[rows]
            lo = np.searchsorted(keys, fq, "left")
            cnt_all = np.searchsorted(keys, fq, "right") - lo
            lo += s0
            want = quota[fsrc * n_a + ai]
            csum = np.cumsum(cnt_all)
            before = csum - cnt_all
            before -= before[_run_start_of(fsrc)]
            margin = 2
            while True:
                take = np.clip(np.minimum(want * margin, self.max_candidates) - before, 0, cnt_all)
                j = self._materialise(f, b, bidx, lo, take, rows)
                got = np.bincount(j[0] if j else np.zeros(0, _I64), minlength=nsrc)
                short = (got[fsrc] < want) & (take < cnt_all)
                if not short.any() or margin >= 1 << 20:
                    break
                margin *= 8
            if j:
                # first `want` valid paths per pair, in enumeration order
                qsrc = j[0]
                rank = np.arange(qsrc.size) - _run_start_of(qsrc)
                keep = rank < quota[qsrc * n_a + ai]
                outs.append(tuple(x[keep] for x in j))
        if not outs:
            return ()
        return tuple(np.concatenate(x) for x in zip(*outs))

    def _level3(self, F1: _Half, B1: _Half, quota: np.ndarray, n_q: int, n_a: int) -> list[tuple[np.ndarray, ...]]:
        """Paths of 3 edges: the cheaper side is grown to 2 edges (towards the other side's
        frontier) and is the outer side of the enumeration; it is grown window by window
        (its half-paths in generation order, windows of doubling edge cost) and the search
        stops as soon as every pair has its quota, so hub pairs with plenty of paths cost
        a fraction of the expansion budget. ``quota`` is updated in place."""
        adj = self._adj
        cf = int(adj.cost(F1.end, True, not self.directed).sum())
        cb = int(adj.cost(B1.end, not self.directed, True).sum())
        grow_f = cf <= cb
        side, other = (F1, B1) if grow_f else (B1, F1)
        # quota of (outer source, inner source): a view of ``quota`` (q-major) or its transpose
        q2 = quota.reshape(n_q, n_a) if grow_f else quota.reshape(n_q, n_a).T
        rows, cost = self._budget_rows(side, grow_f)
        out: list[tuple[np.ndarray, ...]] = []
        if rows.size == 0:
            return out
        ends = cost.cumsum()
        start, limit = 0, PATH_WINDOW
        while start < rows.size:
            stop = max(int(np.searchsorted(ends, ends[start] - cost[start] + limit, "right")), start + 1)
            win = rows[start:stop]
            start, limit = stop, limit * 2
            open_src = (q2 > 0).any(axis=1)
            win = win[open_src[side.src[win]]]
            if win.size == 0:
                continue
            g2 = self._grow(side, grow_f, other.end, rows=win)
            j = self._join(g2, other, np.ascontiguousarray(q2).reshape(-1), q2.shape[1])
            if j:
                if not grow_f:  # paths a .. q: turn them round
                    j = (j[1], j[0], j[2][:, ::-1], j[3][:, ::-1], ~j[4][:, ::-1])
                out.append(j)
                quota -= np.bincount(j[0] * n_a + j[1], minlength=quota.size)
                if quota.max() <= 0:
                    break
        return out

    def _materialise(self, f: _Half, b: _Half, bidx: np.ndarray, lo: np.ndarray,
                     take: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """Joined paths of f's ``rows`` (``take`` of them from ``bidx[lo:]`` each), simple ones only."""
        bi, fi = _concat_ranges(lo, take)
        if fi.size == 0:
            return ()
        fi = rows[fi]
        bi = bidx[bi]
        fn, bn = f.nodes[fi], b.nodes[bi]
        # simple: nodes before the meeting point on both halves are disjoint
        ok = np.ones(fi.size, dtype=bool)
        for x in range(fn.shape[1] - 1):
            for y in range(bn.shape[1] - 1):
                ok &= fn[:, x] != bn[:, y]
        fi, bi, fn, bn = fi[ok], bi[ok], fn[ok], bn[ok]
        if fi.size == 0:
            return ()
        nodes = np.concatenate((fn, bn[:, -2::-1]), axis=1) if bn.shape[1] > 1 else fn
        edges = np.concatenate((f.edges[fi], b.edges[bi][:, ::-1]), axis=1)
        fwd = np.concatenate((f.fwd[fi], ~b.fwd[bi][:, ::-1]), axis=1)
        return f.src[fi], b.src[bi], nodes, edges, fwd

    def _search(self, q: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
        """All capped paths: arrays ``qi, ai, nodes [P,H+1], edges [P,H], fwd [P,H], length``."""
        H = self.max_hops
        self.truncated = False
        F = {0: _Half.start(q)}
        B = {0: _Half.start(a)}
        adj = self._adj
        F[1] = self._grow(F[0], True, None)
        if H >= 2:
            B[1] = self._grow(B[0], False, None)
        found: list[tuple[np.ndarray, ...]] = []
        npairs = q.size * a.size
        quota = np.full(npairs, self.max_paths, dtype=_I64)
        for h in range(1, H + 1):
            if h == 1:
                fh, bh = F[1], B[0]
            elif h == 2:
                fh, bh = F[1], B[1]
            elif h == 3:
                found.extend(self._level3(F[1], B[1], quota, q.size, a.size))  # updates quota
                if quota.max() <= 0:
                    break
                continue
            else:  # h == 4: both sides to 2 edges, meeting in the intersection of 2-hop sets
                f2 = self._grow(F[1], True, None)
                b2 = self._grow(B[1], False, None)
                meet = np.intersect1d(f2.end, b2.end)
                fh = f2.take(np.flatnonzero(np.isin(f2.end, meet)))
                bh = b2.take(np.flatnonzero(np.isin(b2.end, meet)))
            j = self._join(fh, bh, quota, a.size)
            if j:
                found.append(j)
                quota -= np.bincount(j[0] * a.size + j[1], minlength=npairs)
                if quota.max() <= 0:
                    break
        P = sum(x[0].size for x in found)
        if P == 0:
            return self._no_paths()
        qi = np.concatenate([x[0] for x in found])
        ai = np.concatenate([x[1] for x in found])
        length = np.concatenate([np.full(x[0].size, x[2].shape[1] - 1, _I64) for x in found])
        nodes = np.concatenate([_pad_columns(x[2], H + 1, "edge") for x in found])
        edges = np.concatenate([_pad_columns(x[3], H, -1) for x in found])
        fwd = np.concatenate([_pad_columns(x[4], H, True) for x in found])
        keys = [edges[:, k] for k in range(H - 1, -1, -1)] + [nodes[:, k] for k in range(H, -1, -1)]
        order = np.lexsort(keys + [length, ai, qi])
        qi, ai, nodes, edges, fwd, length = qi[order], ai[order], nodes[order], edges[order], fwd[order], length[order]
        pair = qi * max(a.size, 1) + ai
        _, first = np.unique(pair, return_index=True)
        start = np.repeat(first, np.diff(np.append(first, pair.size)))
        keep = (np.arange(pair.size) - start) < self.max_paths
        return {"qi": qi[keep], "ai": ai[keep], "nodes": nodes[keep], "edges": edges[keep], "fwd": fwd[keep], "length": length[keep]}

    def _no_paths(self) -> dict[str, np.ndarray]:
        H = self.max_hops
        return {
            "qi": np.zeros(0, _I64), "ai": np.zeros(0, _I64), "nodes": np.zeros((0, H + 1), _I64),
            "edges": np.zeros((0, H), _I64), "fwd": np.zeros((0, H), bool), "length": np.zeros(0, _I64),
        }

    def _rels(self, edges: np.ndarray, fwd: np.ndarray, length: np.ndarray) -> np.ndarray:
        R = self.graph.num_relations
        rel = self._adj.rel[np.maximum(edges, 0)] + np.where(fwd, 0, R)
        valid = np.arange(self.max_hops)[None, :] < length[:, None]
        return np.where(valid, rel, 0).astype(_I64)

    # ------------------------------------------------------------------ public API
    def edge_paths(self, q: int, a: int) -> list[list[tuple[int, bool]]]:
        """Paths of one pair as lists of ``(edge id, followed forward)``."""
        res = self._search(np.asarray([q], _I64), np.asarray([a], _I64))
        return [
            [(int(e), bool(f)) for e, f in zip(res["edges"][p, :L], res["fwd"][p, :L])]
            for p, L in enumerate(res["length"].tolist())
        ]

    def node_paths(self, q: int, a: int) -> list[list[int]]:
        """Paths of one pair as node-id lists (concept ids), shortest first.

        Parallel edges give repeated node lists; :meth:`edge_paths` tells them apart.
        """
        res = self._search(np.asarray([q], _I64), np.asarray([a], _I64))
        return [res["nodes"][p, : L + 1].tolist() for p, L in enumerate(res["length"].tolist())]

    @property
    def edge_mode(self) -> str:
        """How :meth:`add_edges` rebuilds edges: ``"paths"`` or ``"induced"``."""
        return self.edges

    def retrieve_nodes(self, grounding: "Grounding") -> dict[str, np.ndarray]:
        """The search result without edges: ``concept_ids``, ``node_type``, ``paths``,
        ``path_rels``, ``path_len`` (what the preprocessing cache stores)."""
        q, a = _grounded(grounding)
        H = self.max_hops
        if q.size + a.size == 0:
            out = _empty_arrays(H)
            del out["edge_index"], out["edge_type"]
            return out
        res = self._search(q, a) if (q.size and a.size) else self._no_paths()
        nodes_g, edges, fwd, length = res["nodes"], res["edges"], res["fwd"], res["length"]
        if self.scorer is not None and length.size:
            rels = self._rels(edges, fwd, length)
            scores = np.asarray(self.scorer(nodes_g, rels, length), dtype=np.float64).reshape(-1)
            if scores.shape[0] != length.shape[0]:
                raise ValueError(f"scorer returned {scores.shape[0]} scores for {length.shape[0]} paths")
            pair = res["qi"] * a.size + res["ai"]
            order = np.lexsort((np.arange(pair.size), -scores, pair))
            ps = pair[order]
            _, first = np.unique(ps, return_index=True)
            start = np.repeat(first, np.diff(np.append(first, ps.size)))
            keep = order[(np.arange(ps.size) - start) < self.scorer_top_k]
            if self.scorer_threshold is not None:
                keep = keep[scores[keep] >= self.scorer_threshold]
            keep = np.sort(keep)
            nodes_g, edges, fwd, length = nodes_g[keep], edges[keep], fwd[keep], length[keep]
        grounded = np.concatenate((q, a))
        others = np.setdiff1d(np.unique(nodes_g), grounded)
        concept_ids, node_type = _node_layout(q, a, others)
        pos = self._adj._pos
        pos[concept_ids] = np.arange(concept_ids.size, dtype=_I64)
        paths = pos[nodes_g] if length.size else np.zeros((0, H + 1), _I64)
        return {
            "concept_ids": concept_ids,
            "node_type": node_type,
            "paths": paths.astype(_I64),
            "path_rels": self._rels(edges, fwd, length),
            "path_len": length.astype(_I64),
        }

    def add_edges(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``arrays`` (from :meth:`retrieve_nodes`) with ``edge_index`` and ``edge_type``."""
        return self._edges(arrays, self.edges)


    def __repr__(self) -> str:
        return f"PathRetriever(max_hops={self.max_hops}, max_paths={self.max_paths}, directed={self.directed})"


# --------------------------------------------------------------------------- subgraphs
def rank_connectivity(candidates: np.ndarray, n_links: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Default ranking: concepts adjacent to more grounded concepts first, then rarer
    (lower-degree, more specific) concepts; ties go to the lower id."""
    return n_links.astype(np.float64) * (float(degree.max(initial=0)) + 1.0) - degree


def rank_degree(candidates: np.ndarray, n_links: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Lowest degree first."""
    return -degree.astype(np.float64)


def rank_id(candidates: np.ndarray, n_links: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Lowest concept id first (MHGRN keeps ``sorted(extra_nodes)``)."""
    return np.zeros(candidates.size)


#: Named rankings for :class:`SubgraphRetriever`: ``fn(candidates, n_links, degree) -> scores``
#: (higher is kept first; ties by lower concept id).
RANKINGS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "connectivity": rank_connectivity,
    "degree": rank_degree,
    "id": rank_id,
}


@register_retriever("subgraph")
class SubgraphRetriever(_Retriever):
    """The MHGRN / QA-GNN two-hop subgraph.

    Nodes: the question concepts Q, the answer concepts A, and the bridging concepts

    .. math::
        X = \\big(N(Q) \\cap N(A)\\big) \\setminus (Q \\cup A)   \\quad (\\text{bridge}="qa")

    where :math:`N(S)` is the set of concepts adjacent (in either direction) to some concept
    of S -- i.e. the middle nodes of every 2-hop question-answer path. ``bridge="all_pairs"``
    is QA-GNN's variant: concepts adjacent to at least two distinct grounded concepts.
    Edges: every graph edge among the kept nodes (direct question-answer edges included),
    with its relation id.

    When ``|Q| + |A| + |X| > max_nodes``, the grounded concepts are kept (cut themselves if
    they alone exceed ``max_nodes``) and X is ranked by ``ranking`` -- a name in
    :data:`RANKINGS` or a callable ``fn(candidates, n_links, degree) -> scores`` where
    ``n_links`` counts the grounded concepts each candidate is adjacent to and ``degree``
    is its total degree; higher scores are kept, ties go to the lower id. The default
    ``"connectivity"`` keeps concepts that bridge more grounded concepts, then the rarer
    ones. (QA-GNN ranks by a language-model relevance score; pass such a callable.)
    Kept bridging concepts are listed in ascending id order after the grounded ones.

    Args:
        graph: the knowledge graph.
        max_nodes: node budget.
        ranking: name or callable (see above).
        bridge: ``"qa"`` or ``"all_pairs"``.
    """

    def __init__(
        self,
        graph: "KnowledgeGraph",
        max_nodes: int = 200,
        ranking: str | Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = "connectivity",
        *,
        bridge: str = "qa",
    ) -> None:
        if max_nodes < 1:
            raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
        if bridge not in ("qa", "all_pairs"):
            raise ValueError(f"bridge must be 'qa' or 'all_pairs', not {bridge!r}")
        if isinstance(ranking, str):
            if ranking not in RANKINGS:
                raise ValueError(f"unknown ranking {ranking!r}; choose one of {sorted(RANKINGS)} or pass a callable")
            self._rank = RANKINGS[ranking]
        elif callable(ranking):
            self._rank = ranking
        else:
            raise TypeError(f"ranking must be a name or a callable, not {type(ranking).__name__}")
        self.ranking = ranking
        self.graph = graph
        self.max_nodes = int(max_nodes)
        self.bridge = bridge
        self._parts: tuple[_Adjacency, np.ndarray, np.ndarray, EdgeRebuilder] | None = None

    def build(self) -> "SubgraphRetriever":
        """Make the adjacency arrays and the pair index now (before worker processes fork,
        shared copy-on-write); otherwise the first retrieval does. A cache hit needs neither."""
        if self._parts is None:
            graph = self.graph
            adj = _Adjacency(graph)
            adj.in_nbr  # noqa: B018
            if graph.num_edges > 100_000:
                graph.pair_index()
            self._parts = (adj, adj.out_deg + adj.in_deg, np.zeros(graph.num_concepts, dtype=np.uint8),
                           EdgeRebuilder(graph))
        return self

    @property
    def _adj(self) -> _Adjacency:
        return self.build()._parts[0]

    @property
    def _degree(self) -> np.ndarray:
        return self.build()._parts[1]

    @property
    def _mark(self) -> np.ndarray:
        return self.build()._parts[2]

    @property
    def _edges(self) -> EdgeRebuilder:
        return self.build()._parts[3]

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able configuration (part of cache keys)."""
        return {
            "class": "SubgraphRetriever",
            "version": 2,
            "max_nodes": self.max_nodes,
            "ranking": self.ranking if isinstance(self.ranking, str) else _callable_name(self.ranking),
            "bridge": self.bridge,
        }

    def bridging(self, q: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidate bridging concepts (ascending id) and the number of grounded concepts
        each is adjacent to."""
        g = np.concatenate((q, a))
        own, nbr, _, _ = self._adj.gather(g, True, True, grouped=False)
        mark = self._mark
        if self.bridge == "qa":
            isq = own < q.size
            mark[nbr[isq]] |= 1
            mark[nbr[~isq]] |= 2
            mark[g] |= 4
            sel = mark[nbr] == 3
            mark[nbr] = 0
            mark[g] = 0
        else:
            mark[g] = 4
            sel = mark[nbr] != 4
            mark[g] = 0
        own, nbr = own[sel], nbr[sel]
        if nbr.size == 0:
            return np.zeros(0, _I64), np.zeros(0, _I64)
        code = np.unique(nbr * g.size + own)
        cand, n_links = np.unique(code // g.size, return_counts=True)
        if self.bridge == "all_pairs":
            keep = n_links >= 2
            cand, n_links = cand[keep], n_links[keep]
        return cand.astype(_I64), n_links.astype(_I64)

    @property
    def edge_mode(self) -> str:
        """How :meth:`add_edges` rebuilds edges: always ``"induced"``."""
        return "induced"

    def retrieve_nodes(self, grounding: "Grounding") -> dict[str, np.ndarray]:
        """The node set without edges: ``concept_ids``, ``node_type`` (what the
        preprocessing cache stores)."""
        q, a = _grounded(grounding)
        if q.size + a.size == 0:
            return {"concept_ids": np.zeros(0, _I64), "node_type": np.zeros(0, _I64)}
        budget = self.max_nodes
        if q.size + a.size > budget:  # keep the grounded concepts first, questions first
            q = q[:budget]
            a = a[: budget - q.size]
        can_bridge = (q.size and a.size) if self.bridge == "qa" else (q.size + a.size >= 2)
        if can_bridge and q.size + a.size < budget:
            cand, n_links = self.bridging(q, a)
        else:
            cand, n_links = np.zeros(0, _I64), np.zeros(0, _I64)
        room = budget - q.size - a.size
        if cand.size > room:
            scores = np.asarray(self._rank(cand, n_links, self._degree[cand]), dtype=np.float64).reshape(-1)
            if scores.shape[0] != cand.shape[0]:
                raise ValueError(f"ranking returned {scores.shape[0]} scores for {cand.shape[0]} candidates")
            order = np.lexsort((cand, -scores))
            cand = np.sort(cand[order[:room]])
        concept_ids, node_type = _node_layout(q, a, cand)
        return {"concept_ids": concept_ids, "node_type": node_type}

    def add_edges(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``arrays`` (from :meth:`retrieve_nodes`) with the induced ``edge_index`` and
        ``edge_type``."""
        return self._edges(arrays, "induced")


    def __repr__(self) -> str:
        return f"SubgraphRetriever(max_nodes={self.max_nodes}, ranking={self.config['ranking']!r}, bridge={self.bridge!r})"


# --------------------------------------------------------------------------- rendering
def explain(data: Data, graph: "KnowledgeGraph", limit: int | None = None) -> list[str]:
    """Readable lines for a retrieved subgraph.

    With ``paths`` (PathRetriever): one line per path, backward steps drawn ``<--r--``:
    ``plate --AtLocation--> cupboard <--IsA-- kitchen_cupboard``. Without: one line per
    edge, ``head --relation--> tail``.
    """
    names = [graph.concept_name(c) for c in data.concept_ids.tolist()]
    R = graph.num_relations
    lines: list[str] = []
    paths = getattr(data, "paths", None)
    if paths is not None:
        for nodes, rels, L in zip(paths.tolist(), data.path_rels.tolist(), data.path_len.tolist()):
            parts = [names[nodes[0]]]
            for k in range(L):
                r = rels[k]
                if r >= R:
                    parts.append(f"<--{graph.relation_name(r - R)}--")
                else:
                    parts.append(f"--{graph.relation_name(r)}-->")
                parts.append(names[nodes[k + 1]])
            lines.append(" ".join(parts))
            if limit is not None and len(lines) >= limit:
                break
        return lines
    for (h, t), r in zip(data.edge_index.t().tolist(), data.edge_type.tolist()):
        lines.append(f"{names[h]} --{graph.relation_name(r)}--> {names[t]}")
        if limit is not None and len(lines) >= limit:
            break
    return lines


def _callable_name(fn: Any) -> str:
    name = getattr(fn, "config_name", None)
    if isinstance(name, str):
        return name
    mod = getattr(fn, "__module__", type(fn).__module__)
    qual = getattr(fn, "__qualname__", type(fn).__qualname__)
    return f"{mod}.{qual}"
