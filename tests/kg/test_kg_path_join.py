"""The optimised join of PathRetriever returns exactly the paths of the straightforward join
it replaced (kept here as the reference): same paths, same order, same caps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kgfuse.kg import KnowledgeGraph
from kgfuse.kg.linking import Grounding
from kgfuse.kg.retrieval import PathRetriever, _concat_ranges, _Half

_I64 = np.int64


class ReferencePathRetriever(PathRetriever):
    """PathRetriever with the previous join: every answer concept searched over all of f."""

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
        if not fk.all():
            f = f.take(np.flatnonzero(fk))
        # b's rows sorted by (source, end) through an index (no copy of the half-paths);
        # generation order within equal keys
        N = np.int64(self.graph.num_concepts)
        bsel = np.flatnonzero(bk)
        bkey = b.src[bsel] * N + b.end[bsel]
        o = np.argsort(bkey, kind="stable")
        bidx, bkey = bsel[o], bkey[o]
        # f is sorted by source: matches of one pair are contiguous along f
        first = np.flatnonzero(np.r_[True, f.src[1:] != f.src[:-1]])
        group_start = np.repeat(first, np.diff(np.r_[first, f.size]))
        outs = []
        bsrc = b.src[bidx]  # ascending
        for ai in bsrc[np.flatnonzero(np.r_[True, bsrc[1:] != bsrc[:-1]])].tolist():
            fq = ai * N + f.end
            lo = np.searchsorted(bkey, fq, "left")
            cnt_all = np.searchsorted(bkey, fq, "right") - lo
            want = quota[f.src * n_a + ai]
            csum = np.cumsum(cnt_all)
            before = csum - cnt_all - (csum - cnt_all)[group_start]
            margin = 2
            while True:
                take = np.clip(np.minimum(want * margin, self.max_candidates) - before, 0, cnt_all)
                j = self._materialise_all(f, b, bidx, lo, take)
                got = np.bincount(j[0] if j else np.zeros(0, _I64), minlength=int(f.src.max()) + 1)
                short = (got[f.src] < want) & (take < cnt_all)
                if not short.any() or margin >= 1 << 20:
                    break
                margin *= 8
            if j:
                # first `want` valid paths per pair, in enumeration order
                qsrc = j[0]
                firstq = np.flatnonzero(np.r_[True, qsrc[1:] != qsrc[:-1]])
                rank = np.arange(qsrc.size) - np.repeat(firstq, np.diff(np.r_[firstq, qsrc.size]))
                keep = rank < quota[qsrc * n_a + ai]
                outs.append(tuple(x[keep] for x in j))
        if not outs:
            return ()
        return tuple(np.concatenate(x) for x in zip(*outs))

    def _materialise_all(self, f: _Half, b: _Half, bidx: np.ndarray, lo: np.ndarray,
                     take: np.ndarray) -> tuple[np.ndarray, ...]:
        bi, fi = _concat_ranges(lo, take)
        if fi.size == 0:
            return ()
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


@st.composite
def dense_graphs(draw):
    n = draw(st.integers(3, 9))
    r = draw(st.integers(1, 3))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, r - 1), st.integers(0, n - 1)),
                          min_size=1, max_size=40))
    h, rel, t = (list(x) for x in zip(*edges))
    return KnowledgeGraph([f"c{i}" for i in range(n)], [f"r{i}" for i in range(r)], h, rel, t)


@settings(max_examples=80, deadline=None)
@given(kg=dense_graphs(), directed=st.sampled_from([None, False, True]), hops=st.integers(1, 4),
       cap=st.integers(1, 8), candidates=st.sampled_from([1, 3, 1_000_000]), data=st.data())
def test_optimised_join_returns_the_reference_paths(kg, directed, hops, cap, candidates, data):
    n = kg.num_concepts
    qs = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
    As = data.draw(st.lists(st.integers(0, n - 1).filter(lambda x: x not in qs), min_size=1, max_size=3, unique=True))
    g = Grounding(qs, As, [])
    opts = dict(max_hops=hops, max_paths=cap, directed=directed, max_candidates=candidates)
    new = PathRetriever(kg, **opts).retrieve_arrays(g)
    ref = ReferencePathRetriever(kg, **opts).retrieve_arrays(g)
    assert new.keys() == ref.keys()
    for k in ref:
        assert np.array_equal(new[k], ref[k]), k


def test_reference_is_exercised():
    """A graph with many parallel paths: caps cut them, and both joins agree."""
    rng = np.random.default_rng(0)
    n, m = 40, 400
    kg = KnowledgeGraph([f"c{i}" for i in range(n)], ["r0", "r1"], rng.integers(0, n, m).tolist(),
                        rng.integers(0, 2, m).tolist(), rng.integers(0, n, m).tolist())
    g = Grounding([0, 1, 2], [3, 4], [])
    for directed in (True, False):
        new = PathRetriever(kg, max_paths=7, directed=directed).retrieve_arrays(g)
        ref = ReferencePathRetriever(kg, max_paths=7, directed=directed).retrieve_arrays(g)
        assert new["path_len"].size == 6 * 7  # every pair capped
        for k in ref:
            assert np.array_equal(new[k], ref[k]), k
