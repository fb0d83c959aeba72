"""The indexed join and chunked 3-edge search of PathRetriever return exactly the paths of the
previous search (kept verbatim in ``reference_paths.py``): same paths, same order, same caps,
same budget cuts, on the sample graph and on random multigraphs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_paths import ReferencePathRetriever

import kgfuse.kg.retrieval.paths as paths_module
from kgfuse.kg import GraphBuilder, KnowledgeGraph
from kgfuse.kg.linking import Grounding
from kgfuse.kg.retrieval import PathRetriever


def assert_same(kg, grounding, **opts):
    new, ref = PathRetriever(kg, **opts), ReferencePathRetriever(kg, **opts)
    got, want = new.retrieve_arrays(grounding), ref.retrieve_arrays(grounding)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
    assert new.truncated == ref.truncated
    return got


@st.composite
def dense_graphs(draw):
    n = draw(st.integers(3, 9))
    r = draw(st.integers(1, 3))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, r - 1), st.integers(0, n - 1)),
                          min_size=1, max_size=40))
    h, rel, t = (list(x) for x in zip(*edges))
    return KnowledgeGraph([f"c{i}" for i in range(n)], [f"r{i}" for i in range(r)], h, rel, t)


@settings(max_examples=120, deadline=None)
@given(kg=dense_graphs(), directed=st.sampled_from([None, False, True]), hops=st.integers(1, 4),
       cap=st.integers(1, 8), candidates=st.sampled_from([1, 3, 1_000_000]),
       expansion=st.sampled_from([3, 10, 200_000]), data=st.data())
def test_search_returns_the_reference_paths(kg, directed, hops, cap, candidates, expansion, data):
    n = kg.num_concepts
    qs = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
    As = data.draw(st.lists(st.integers(0, n - 1).filter(lambda x: x not in qs), min_size=1, max_size=3, unique=True))
    assert_same(kg, Grounding(qs, As, []), max_hops=hops, max_paths=cap, directed=directed,
                max_candidates=candidates, max_expansion=expansion)


@settings(max_examples=40, deadline=None)
@given(kg=dense_graphs(), directed=st.sampled_from([False, True]), data=st.data())
def test_question_side_kept_across_statements(kg, directed, data):
    """One retriever over several statements (the question side is reused while the
    question concepts stay the same) finds what a fresh reference finds for each."""
    n = kg.num_concepts
    new = PathRetriever(kg, max_paths=3, directed=directed)
    for _ in range(3):
        qs = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2, unique=True))
        for _ in range(2):
            As = data.draw(st.lists(st.integers(0, n - 1).filter(lambda x: x not in qs), min_size=1, max_size=2,
                                    unique=True))
            g = Grounding(qs, As, [])
            got = new.retrieve_arrays(g)
            want = ReferencePathRetriever(kg, max_paths=3, directed=directed).retrieve_arrays(g)
            for k in want:
                assert np.array_equal(got[k], want[k]), k


@pytest.mark.parametrize("directed", [None, True, False])
def test_random_graph_with_hubs(directed):
    """A graph with parallel paths and hubs: caps cut every pair, small chunks and a small
    budget change the work; the paths are the reference's."""
    rng = np.random.default_rng(0)
    n, m = 60, 900
    head = np.minimum(rng.zipf(1.6, m) - 1, n - 1)
    tail = rng.integers(0, n, m)
    rel = rng.integers(0, 3, m)
    kg = KnowledgeGraph([f"c{i}" for i in range(n)], ["r0", "r1", "r2"], head.tolist(), rel.tolist(), tail.tolist())
    g = Grounding([0, 1, 2, 7], [3, 4], [])
    saved = paths_module.PATH_CHUNK
    try:
        for chunk in (1, 64, saved):
            paths_module.PATH_CHUNK = chunk
            d = assert_same(kg, g, max_paths=7, directed=directed)
            assert d["path_len"].size == 8 * 7  # every pair capped
            assert_same(kg, g, max_paths=50, directed=directed, max_expansion=150)
            assert_same(kg, g, max_paths=50, max_hops=4, directed=directed, max_expansion=400)
    finally:
        paths_module.PATH_CHUNK = saved


def test_sample_graph_paths_are_the_reference_paths():
    b = GraphBuilder()
    for h, r, t in [
        ("plate", "AtLocation", "cupboard"),
        ("kitchen", "HasA", "cupboard"),
        ("plate", "AtLocation", "kitchen"),
        ("dish", "RelatedTo", "plate"),
        ("dish", "AtLocation", "cupboard"),
        ("cupboard", "PartOf", "kitchen"),
        ("fork", "AtLocation", "kitchen"),
        ("dish", "RelatedTo", "fork"),
    ]:
        b.add(h, r, t)
    kg = b.build()
    ids = [kg.concept_id(x) for x in ("plate", "dish", "fork")]
    for answers in (["cupboard"], ["kitchen", "cupboard"]):
        g = Grounding(ids, [kg.concept_id(x) for x in answers], [])
        for hops in (1, 2, 3, 4):
            for directed in (None, True, False):
                d = assert_same(kg, g, max_hops=hops, directed=directed)
                assert d["path_len"].size > 0
