"""CSR neighbour gathers shared by the retrievers (:class:`_Adjacency`), the edge rebuild of
stored node sets (:class:`EdgeRebuilder`, :func:`path_edges`) and the detection of inverse
relation pairs (:func:`inverse_relations`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

from .base import _I64, _concat_ranges

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import KnowledgeGraph


#: The pair-index lookup replaces the out-edge scan for a node whose out-degree exceeds
#: this many times the size of the node set (a binary search costs about as much as
#: scanning that many out-edges; measured on the full-scale graph, see docs/benchmarks.md).
LOOKUP_FACTOR = 8

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
