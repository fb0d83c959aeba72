"""The path search of :class:`~kgfuse.kg.retrieval.PathRetriever` as it was before the join
indexes and the chunked 3-edge stream: the reference that the current search must match
path for path (``test_kg_path_join.py``). Kept verbatim: growth of materialised half-paths,
a join that searches each answer concept's half-paths, windows of doubling edge cost."""

from __future__ import annotations

import numpy as np

from kgfuse.kg.retrieval import PathRetriever
from kgfuse.kg.retrieval.base import _concat_ranges, _pad_columns, _run_flags, _run_start_of
from kgfuse.kg.retrieval.paths import _Half

_I64 = np.int64

#: Edge cost of the first window of the 3-edge search (then doubling).
REFERENCE_WINDOW = 4096


class ReferencePathRetriever(PathRetriever):
    """PathRetriever with the previous search."""

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
        start, limit = 0, REFERENCE_WINDOW
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
