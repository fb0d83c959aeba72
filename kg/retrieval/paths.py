"""KagNet paths (:class:`PathRetriever`): the simple paths of at most ``max_hops`` edges
between question and answer concepts, found by a meet-in-the-middle search over the graph's
CSR arrays.

One module because the search's half-path growth, joins and streamed 3-edge level share one
set of array layouts and budgets (``max_candidates``, ``max_expansion``), which only make sense
read together. The same search is compiled in ``_pathsearch.c`` (built at install time when a C
compiler is there, used by default); the numpy code here is its reference and its fallback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from .adjacency import EdgeRebuilder, _Adjacency, inverse_relations
from .base import (
    _I64,
    NODE_ANSWER,
    NODE_OTHER,
    NODE_QUESTION,
    _callable_name,
    _concat_ranges,
    _empty_arrays,
    _grounded,
    _node_layout,
    _pad_columns,
    _Retriever,
    _run_flags,
)
from .registry import register_retriever

try:  # the compiled search (kg/retrieval/_pathsearch.c), built at install time when a C compiler is there
    from . import _pathsearch
except ImportError:  # pragma: no cover - an install without a C compiler: the numpy search
    _pathsearch = None

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import KnowledgeGraph
    from ..linking import Grounding

#: Edge cost of the first window of the 3-edge path search (then doubling). A window is the
#: unit that ``max_candidates`` counts in; with the default ``max_candidates`` results do not
#: depend on it.
PATH_WINDOW = 4096

#: Edges read in the first chunk of the 3-edge search (then doubling); the search stops after
#: the chunk in which the last pair reaches its quota. Results do not depend on it.
PATH_CHUNK = 4096

#: The search implementations of :class:`PathRetriever` (``backend``): ``"compiled"``, the C
#: kernel ``_pathsearch`` (one call per statement); ``"numpy"``, the vectorised search of this
#: module (the reference, and the fallback when the kernel was not built); ``"auto"``:
#: compiled when importable. Both return exactly the same paths.
BACKENDS = ("auto", "compiled", "numpy")


def compiled_search_available() -> bool:
    """Whether the compiled path search was built (a C compiler at install time)."""
    return _pathsearch is not None


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


class _Table:
    """The half-paths of one side indexed by (end node, source), for joins.

    ``loc[node]`` is the local id of an end node (-1: no half-path ends there; a scratch
    array of the retriever, reset by :meth:`release`); ``cnt[u, s]`` counts the half-paths
    of source ``s`` ending at local node ``u``; they are ``bidx[start[u * n_src + s]:][:cnt]``,
    in generation order."""

    __slots__ = ("half", "n_src", "loc", "ends", "cnt", "start", "bidx", "_bits")

    def __init__(self, half: _Half, n_src: int, loc: np.ndarray) -> None:
        self.half, self.n_src, self.loc = half, int(n_src), loc
        ends = self.ends = half.end
        b = ends.size
        loc[ends] = np.arange(b, dtype=np.int32)  # repeated ends: one of their positions
        key = loc[ends].astype(_I64) * self.n_src + half.src
        self.bidx = np.argsort(key, kind="stable")
        cnt = np.bincount(key, minlength=b * self.n_src)
        self.start = np.cumsum(cnt) - cnt
        self.cnt = cnt.reshape(b, self.n_src)
        self._bits: np.ndarray | None = None

    @property
    def bits(self) -> np.ndarray:
        """The end nodes as a bitset (bit ``v & 7`` of byte ``v >> 3``): a membership test
        that stays in cache where ``loc`` (4 bytes per concept) does not."""
        if self._bits is None:
            self._bits = np.packbits(self.loc >= 0, bitorder="little")
        return self._bits

    def release(self) -> None:
        self.loc[self.ends] = -1


class _QuestionSide:
    """What the search keeps of the question side between statements with the same
    question concepts: the 1-edge half-paths, their growth costs, their join index."""

    __slots__ = ("key", "half", "cost", "table")

    def __init__(self, key: tuple[int, ...], half: _Half, cost: np.ndarray) -> None:
        self.key, self.half, self.cost = key, half, cost
        self.table: _Table | None = None


def _simple(pf: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Rows whose two node lists (the nodes of both half-paths before their meeting node)
    are disjoint."""
    ok = np.ones(pf.shape[0], dtype=bool)
    for x in range(pf.shape[1]):
        for y in range(pb.shape[1]):
            ok &= pf[:, x] != pb[:, y]
    return ok



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
    then forward). Its edges are read as one stream (its half-paths in generation order,
    each end node's CSR slice) in chunks of doubling size from ``PATH_CHUNK`` edges, and the
    search stops as soon as every pair has ``max_paths`` paths, so pairs with plenty of
    short paths stop early. A join never builds a path it does not keep: the other side's
    half-paths are indexed once by (end node, source), so each grown half-path knows how
    many paths it starts for each pair, a running count per pair finds where each quota is
    reached, and only the paths before that point are materialised. The half-paths of the
    question side are kept from one statement to the next while the question concepts stay
    the same (the choices of one question). Chunks change the work, not the result.

    **Caps (hubs).** Growing a frontier gathers the edges of its end nodes. When that would
    exceed ``max_expansion`` edges for one side and level, frontier nodes are expanded in
    ascending degree order until the budget is spent, so paths *through* the biggest hubs
    are skipped (a grounded hub itself is always expanded at the first level). At most
    ``max_candidates`` joined candidates are considered per pair and level (at the 3-edge
    level: per window of the grown side's half-paths, ``PATH_WINDOW`` edges of cost, then
    doubling).
    ``retriever.truncated`` tells whether the expansion budget cut the last search.

    **Implementations** (``backend``). The search above is implemented twice: in C
    (``kg/retrieval/_pathsearch.c``, one call per statement, which also lays out the node set
    when there is no scorer) and in numpy (this module). Both return exactly the same arrays
    (``tests/kg/test_kg_path_join.py``); the compiled one is about 11x faster on a
    ConceptNet-scale graph (docs/benchmarks.md). It is built by ``pip install`` when a C
    compiler is available; without one the install still succeeds and ``"auto"`` uses numpy.

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
        backend: ``"auto"`` (default): the compiled search when it was built, else numpy;
            ``"compiled"`` (an error when it was not built) or ``"numpy"``. Same paths
            either way, so not part of ``config``; ``retriever.backend`` holds the choice.
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
        backend: str = "auto",
    ) -> None:
        if not 1 <= int(max_hops) <= 4:
            raise ValueError(f"max_hops must be in 1..4, got {max_hops}")
        if max_paths < 1:
            raise ValueError(f"max_paths must be >= 1, got {max_paths}")
        if edges not in ("paths", "induced"):
            raise ValueError(f"edges must be 'paths' or 'induced', not {edges!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if backend == "compiled" and _pathsearch is None:
            raise ImportError("backend='compiled': kgfuse was installed without its compiled path search "
                              "(kgfuse.kg.retrieval._pathsearch; it needs a C compiler at install time); "
                              "use backend='numpy' or 'auto', or reinstall with a compiler")
        self.backend = "numpy" if backend == "numpy" or _pathsearch is None else "compiled"
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
        self._loc: tuple[np.ndarray, np.ndarray] | None = None
        self._qcache: _QuestionSide | None = None
        self._kernel_obj = None
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
    def _locs(self) -> tuple[np.ndarray, np.ndarray]:
        """Two node -> local id scratch arrays (-1 elsewhere): one for the question side's
        index (kept across statements), one for the answer side's."""
        if self._loc is None:
            n = self.graph.num_concepts
            self._loc = (np.full(n, -1, dtype=np.int32), np.full(n, -1, dtype=np.int32))
        return self._loc

    @property
    def _edges(self) -> EdgeRebuilder:
        if self._edges_obj is None:
            self._edges_obj = EdgeRebuilder(self.graph)
        return self._edges_obj

    @property
    def _kernel(self):
        """The compiled search over this graph (``_pathsearch.PathSearch``: the CSR arrays as
        contiguous int64, its scratch arrays, the last question side)."""
        if self._kernel_obj is None:
            adj = self._adj
            self._kernel_obj = _pathsearch.PathSearch(
                *(np.ascontiguousarray(x, dtype=_I64)
                  for x in (adj.out_ptr, adj.in_ptr, adj.tail, adj.in_nbr, adj.in_order, adj.rel)),
                self.graph.num_relations)
        return self._kernel_obj

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_kernel_obj"] = None  # not picklable; remade on first use
        return state

    def build(self) -> "PathRetriever":
        """Make the search structures now (before worker processes fork); otherwise the
        first search does."""
        self._adj, self._edges  # noqa: B018
        if self.backend == "compiled":
            self._kernel  # noqa: B018
        else:
            self._locs  # noqa: B018
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

    # ------------------------------------------------------------------ growth
    def _budget_rows(self, half: _Half, forward_side: bool,
                     cost: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``half`` to expand (ascending) under ``max_expansion``, and their costs."""
        use_out = (not self.directed) or forward_side
        use_in = (not self.directed) or not forward_side
        ends = half.end
        if cost is None:
            cost = self._adj.cost(ends, use_out, use_in)
        rows = np.arange(half.size, dtype=_I64)
        if int(cost.sum()) > self.max_expansion and half.nodes.shape[1] > 1:
            order = np.lexsort((ends, cost))
            keep = order[np.cumsum(cost[order]) <= self.max_expansion]
            rows = np.sort(keep)
            self.truncated = True
        return rows, cost[rows]

    def _grow(self, half: _Half, forward_side: bool) -> _Half:
        """One more edge on every half-path (within the budget), simple ones only."""
        adj = self._adj
        use_out = (not self.directed) or forward_side
        use_in = (not self.directed) or not forward_side
        rows, _ = self._budget_rows(half, forward_side)
        own, nxt, slot, fwd = adj.gather(half.end[rows], use_out, use_in)
        own = rows[own]
        # simple: the new node is not already on the half-path
        if half.nodes.shape[1] == 1:
            sel = half.nodes[own, 0] != nxt
        else:
            sel = ~(half.nodes[own] == nxt[:, None]).any(axis=1)
        own, nxt, slot, fwd = own[sel], nxt[sel], slot[sel], fwd[sel]
        eid = adj.edge_ids(slot, fwd)
        return _Half(
            half.src[own],
            np.concatenate((half.nodes[own], nxt[:, None]), axis=1),
            np.concatenate((half.edges[own], eid[:, None]), axis=1),
            np.concatenate((half.fwd[own], fwd[:, None]), axis=1),
        )

    def _question_side(self, q: np.ndarray) -> _QuestionSide:
        """The 1-edge half-paths from the question concepts (kept while they stay the same)."""
        key = tuple(q.tolist())
        qs = self._qcache
        if qs is not None and qs.key == key:
            return qs
        if qs is not None and qs.table is not None:
            qs.table.release()
        half = self._grow(_Half.start(q), True)
        qs = self._qcache = _QuestionSide(key, half, self._adj.cost(half.end, True, not self.directed))
        return qs

    def _question_table(self, qs: _QuestionSide, n_q: int) -> _Table:
        if qs.table is None:
            qs.table = _Table(qs.half, n_q, self._locs[0])
        return qs.table

    # ------------------------------------------------------------------ joins
    def _join(self, fsrc: np.ndarray, fu: np.ndarray, T: _Table, quota: np.ndarray, allow: Any,
              f_pre: Callable[[np.ndarray], np.ndarray] | None):
        """Join outer half-paths (sources ``fsrc``, ascending; end nodes' local ids ``fu`` in
        ``T``) with the half-paths of ``T``.

        Per pair (outer source s, inner source t) the candidates are enumerated outer row by
        outer row, and for each, the inner half-paths of t ending at its end node in
        generation order; of the first ``allow`` (``max_candidates``; a scalar or per-pair
        matrix), the first ``quota[s, t]`` simple ones are kept. ``f_pre(rows)``: the outer
        nodes before the meeting node, for the simplicity check (``None``: every candidate is
        simple). Only the kept candidates are materialised.

        Returns ``(fi, bi, fs, bs, got, seen)``: kept outer rows (indices into ``fsrc``),
        inner rows of ``T.half``, their sources, the kept count per pair and the candidates
        considered per pair (``[n_outer, n_inner]`` each).
        """
        M, nb = fsrc.size, T.n_src
        nf = quota.shape[0]
        c = T.cnt[fu]  # [M, nb] candidates of each outer row, per inner source
        before = np.cumsum(c, axis=0)
        before -= c
        first = np.flatnonzero(_run_flags(fsrc))
        if first.size > 1:  # counts restart at each outer source
            before -= np.repeat(before[first], np.diff(np.append(first, M)), axis=0)
        want = quota[fsrc]
        cap = allow if np.isscalar(allow) else allow[fsrc]
        b_pre = T.half.nodes[:, :-1]
        check = f_pre is not None and b_pre.shape[1] > 0
        margin = 1
        while True:
            take = np.clip(np.minimum(want * margin, cap) - before, 0, c)
            tt = take.T.ravel()  # inner-source major: candidates come grouped by pair
            nz = np.flatnonzero(tt)
            bs = nz // M
            i = nz - bs * M
            pos, own = _concat_ranges(T.start[fu[i] * nb + bs], tt[nz])
            bi = T.bidx[pos]
            fi = i[own]
            bs = bs[own]
            fs = fsrc[fi]
            if not check:
                break
            ok = _simple(f_pre(fi), b_pre[bi])
            if margin == 1 and ok.all():
                break
            # the first quota[s, t] simple candidates of each pair (s, t)
            pair = bs * nf + fs
            okc = np.cumsum(ok)
            first_c = np.flatnonzero(_run_flags(pair))
            base = np.repeat(okc[first_c] - ok[first_c], np.diff(np.append(first_c, pair.size)))
            keep = ok & (okc - base <= quota[fs, bs])
            got = np.bincount(fs[keep] * nb + bs[keep], minlength=nf * nb).reshape(nf, nb)
            # a pair is short while a row of it was cut by the margin (not by ``allow``)
            short = (got[fsrc] < want) & (take < c) & (want * margin < cap)
            if not short.any():
                fi, bi, fs, bs = fi[keep], bi[keep], fs[keep], bs[keep]
                break
            margin *= 8
        got = np.bincount(fs * nb + bs, minlength=nf * nb).reshape(nf, nb)
        seen = np.add.reduceat(take, first, axis=0) if M else np.zeros((0, nb), _I64)
        seen_full = np.zeros((nf, nb), _I64)
        seen_full[fsrc[first]] = seen
        return fi, bi, fs, bs, got, seen_full

    def _join_halves(self, f: _Half, b: _Half, quota: np.ndarray) -> tuple[np.ndarray, ...]:
        """Paths q .. m .. a from forward half ``f`` and backward half ``b`` meeting at m
        (first ``quota[q, a]`` of each pair in enumeration order); ``quota`` is updated."""
        if f.size == 0 or b.size == 0:
            return ()
        T = _Table(b, quota.shape[1], self._locs[1])
        try:
            u = T.loc[f.end]
            rows = np.flatnonzero(u >= 0)
            if rows.size == 0:
                return ()
            pre = None if f.nodes.shape[1] == 1 else (lambda i: f.nodes[rows[i], :-1])
            fi, bi, fs, bs, got, _ = self._join(f.src[rows], u[rows].astype(_I64), T, quota, self.max_candidates, pre)
        finally:
            T.release()
        if fi.size == 0:
            return ()
        quota -= got
        fi = rows[fi]
        nodes = np.concatenate((f.nodes[fi], b.nodes[bi][:, -2::-1]), axis=1) if b.nodes.shape[1] > 1 else f.nodes[fi]
        edges = np.concatenate((f.edges[fi], b.edges[bi][:, ::-1]), axis=1)
        fwd = np.concatenate((f.fwd[fi], ~b.fwd[bi][:, ::-1]), axis=1)
        return fs, bs, nodes, edges, fwd

    def _level3(self, qs: _QuestionSide, B1: _Half, quota: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        """Paths of 3 edges: the cheaper side is grown to 2 edges (towards the other side's
        frontier) and is the outer side of the enumeration; its edges are read in chunks
        and the search stops as soon as every pair has its quota. ``quota`` is updated in
        place."""
        adj = self._adj
        F1 = qs.half
        n_q, n_a = quota.shape
        cf = int(qs.cost.sum())
        bcost = adj.cost(B1.end, not self.directed, True)
        grow_f = cf <= int(bcost.sum())
        out: list[tuple[np.ndarray, ...]] = []
        if grow_f:
            side, other, qv = F1, B1, quota
            rows, cost = self._budget_rows(F1, True, qs.cost)
        else:
            side, other, qv = B1, F1, quota.T
            rows, cost = self._budget_rows(B1, False, bcost)
        if rows.size == 0 or other.size == 0:
            return out
        T = self._question_table(qs, n_q) if not grow_f else _Table(B1, n_a, self._locs[1])
        try:
            self._stream(side, other, T, rows, cost, grow_f, qv, out)
        finally:
            if grow_f:
                T.release()
        return out

    def _stream(self, side: _Half, other: _Half, T: _Table, rows: np.ndarray, cost: np.ndarray,
                grow_f: bool, qv: np.ndarray, out: list) -> None:
        adj = self._adj
        use_out = (not self.directed) or grow_f
        use_in = (not self.directed) or not grow_f
        ends = side.end[rows]
        # the edge stream: per row its out-slice, then its in-slice
        if use_out and use_in:
            seg_row = np.repeat(rows, 2)
            seg_lo = np.stack((adj.out_ptr[ends], adj.in_ptr[ends]), axis=1).reshape(-1)
            seg_len = np.stack((adj.out_deg[ends], adj.in_deg[ends]), axis=1).reshape(-1)
            seg_fwd = np.tile(np.array([True, False]), rows.size)
        elif use_out:
            seg_row, seg_lo, seg_len, seg_fwd = rows, adj.out_ptr[ends], adj.out_deg[ends], None
        else:
            seg_row, seg_lo, seg_len, seg_fwd = rows, adj.in_ptr[ends], adj.in_deg[ends], None
        seg_end = np.cumsum(seg_len)
        seg_beg = seg_end - seg_len
        # windows (the unit of max_candidates): rows of doubling cost from PATH_WINDOW
        row_end = np.cumsum(cost)
        bounds = []
        start, limit, n = 0, PATH_WINDOW, rows.size
        while start < n:
            stop = max(int(np.searchsorted(row_end, row_end[start] - cost[start] + limit, "right")), start + 1)
            bounds.append(int(row_end[stop - 1]))
            start, limit = stop, limit * 2
        maxc = self.max_candidates
        sides_pre = side.nodes
        o_nodes, o_edges, o_fwd = other.nodes, other.edges, other.fwd
        p0, chunk = 0, PATH_CHUNK
        loc, bits = T.loc, T.bits
        if seg_fwd is None:
            nbr_arr = adj.tail if use_out else adj.in_nbr
        for wend in bounds:
            seen = np.zeros(qv.shape, _I64)
            while p0 < wend:
                p1 = min(p0 + chunk, wend)
                chunk *= 2
                s0 = int(np.searchsorted(seg_end, p0, "right"))
                s1 = int(np.searchsorted(seg_beg, p1, "left"))
                lo = np.maximum(p0 - seg_beg[s0:s1], 0)
                ln = np.minimum(p1, seg_end[s0:s1]) - seg_beg[s0:s1] - lo
                srow = seg_row[s0:s1]
                p0 = p1
                live = (qv > 0).any(axis=1)[side.src[srow]]
                if not live.all():
                    ln = np.where(live, ln, 0)
                first = seg_lo[s0:s1] + lo  # CSR slot of each segment's first edge in the chunk
                cum = np.cumsum(ln)
                if cum.size == 0 or cum[-1] == 0:
                    continue
                # the chunk's neighbours, one slice copy per segment
                if seg_fwd is None:
                    nbr = np.concatenate([nbr_arr[x:x + y] for x, y in zip(first.tolist(), ln.tolist()) if y])
                else:
                    fl = seg_fwd[s0:s1]
                    nbr = np.concatenate([(adj.tail if f else adj.in_nbr)[x:x + y]
                                          for x, y, f in zip(first.tolist(), ln.tolist(), fl.tolist()) if y])
                m = np.flatnonzero((bits[nbr >> 3] >> (nbr & 7).astype(np.uint8)) & 1)
                if m.size == 0:
                    continue
                k = np.searchsorted(cum, m, "right")  # segment of each member
                pos = first[k] + (m - (cum[k] - ln[k]))
                own = srow[k]
                nbr = nbr[m]
                sn = sides_pre[own]
                m2 = np.flatnonzero((sn[:, 0] != nbr) & (sn[:, 1] != nbr))
                if m2.size == 0:
                    continue
                if m2.size < m.size:
                    k, pos, own, nbr, sn, m = k[m2], pos[m2], own[m2], nbr[m2], sn[m2], m[m2]
                allow = maxc - seen
                fi, bi, fs, bs, got, saw = self._join(side.src[own], loc[nbr].astype(_I64), T, qv, allow,
                                                      lambda i: sn[i])
                seen += saw
                if fi.size:
                    qv -= got
                    o = own[fi]
                    p = pos[fi]
                    if seg_fwd is None:
                        f_last = np.full(fi.size, use_out)
                        eid = p if use_out else adj.in_order[p]
                    else:
                        f_last = fl[k[fi]]
                        eid = np.where(f_last, p, adj.in_order[np.where(f_last, 0, p)])
                    nodes = np.concatenate((sides_pre[o], nbr[fi, None], o_nodes[bi][:, -2::-1]), axis=1)
                    edges = np.concatenate((side.edges[o], eid[:, None], o_edges[bi][:, ::-1]), axis=1)
                    fwd = np.concatenate((side.fwd[o], f_last[:, None], ~o_fwd[bi][:, ::-1]), axis=1)
                    if grow_f:
                        out.append((fs, bs, nodes, edges, fwd))
                    else:  # paths a .. q: turn them round
                        out.append((bs, fs, nodes[:, ::-1], edges[:, ::-1], ~fwd[:, ::-1]))
                    if qv.max() <= 0:
                        return

    def _search(self, q: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
        """All capped paths: arrays ``qi, ai, nodes [P,H+1], edges [P,H], fwd [P,H], length``."""
        if self.backend == "compiled":
            return self._search_compiled(q, a)
        return self._search_numpy(q, a)

    def _kernel_args(self, q: np.ndarray, a: np.ndarray) -> tuple:
        return (np.ascontiguousarray(q, dtype=_I64), np.ascontiguousarray(a, dtype=_I64), self.max_hops,
                self.directed, self.max_paths, self.max_expansion, self.max_candidates, PATH_WINDOW)

    def _search_compiled(self, q: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`_search` in one call of the compiled search."""
        H = self.max_hops
        P, self.truncated, qi, ai, nodes, edges, fwd, length = self._kernel.search(*self._kernel_args(q, a))
        return {
            "qi": np.frombuffer(qi, _I64), "ai": np.frombuffer(ai, _I64),
            "nodes": np.frombuffer(nodes, _I64).reshape(P, H + 1), "edges": np.frombuffer(edges, _I64).reshape(P, H),
            "fwd": np.frombuffer(fwd, bool).reshape(P, H), "length": np.frombuffer(length, _I64),
        }

    def _search_numpy(self, q: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`_search` as vectorised numpy (the reference of the compiled search)."""
        H = self.max_hops
        self.truncated = False
        qs = self._question_side(q)
        F1 = qs.half
        B0 = _Half.start(a)
        B1 = self._grow(B0, False) if H >= 2 else None
        found: list[tuple[np.ndarray, ...]] = []
        quota = np.full((q.size, a.size), self.max_paths, dtype=_I64)
        for h in range(1, H + 1):
            if h == 1:
                j = self._join_halves(F1, B0, quota)
            elif h == 2:
                j = self._join_halves(F1, B1, quota)
            elif h == 3:
                found.extend(self._level3(qs, B1, quota))
                j = ()
            else:  # h == 4: both sides to 2 edges
                j = self._join_halves(self._grow(F1, True), self._grow(B1, False), quota)
            if j:
                found.append(j)
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
        return {"qi": qi, "ai": ai, "nodes": nodes, "edges": edges, "fwd": fwd, "length": length}

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
        # the compiled search also lays the node set out, unless a scorer comes in between
        # (or a subclass brings its own _search)
        if (self.backend == "compiled" and self.scorer is None and q.size and a.size
                and type(self)._search is PathRetriever._search):
            return self._node_set_compiled(q, a)
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

    def _node_set_compiled(self, q: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`retrieve_nodes` without a scorer, laid out by the compiled search itself."""
        H = self.max_hops
        self.truncated, P, cid, n_other, paths, rels, length = self._kernel.node_set(*self._kernel_args(q, a))
        return {
            "concept_ids": np.frombuffer(cid, _I64),
            "node_type": np.repeat(np.array([NODE_QUESTION, NODE_ANSWER, NODE_OTHER], _I64), (q.size, a.size, n_other)),
            "paths": np.frombuffer(paths, _I64).reshape(P, H + 1),
            "path_rels": np.frombuffer(rels, _I64).reshape(P, H),
            "path_len": np.frombuffer(length, _I64),
        }

    def add_edges(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``arrays`` (from :meth:`retrieve_nodes`) with ``edge_index`` and ``edge_type``."""
        return self._edges(arrays, self.edges)


    def __repr__(self) -> str:
        return f"PathRetriever(max_hops={self.max_hops}, max_paths={self.max_paths}, directed={self.directed})"
