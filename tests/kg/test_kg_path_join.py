"""Both search implementations of PathRetriever -- the numpy search (indexed join, chunked
3-edge stream) and the compiled one (``kg/retrieval/_pathsearch.c``) -- return exactly the
paths of the previous search (kept verbatim in ``reference_paths.py``) and of each other: same
paths, same order, same caps, same budget cuts, on the sample graph and on random multigraphs.
The compiled cases are skipped only when the extension was not built (no C compiler at
install time)."""

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

NOT_BUILT = "the compiled path search (kgfuse.kg.retrieval._pathsearch) was not built: no C compiler at install time"
BACKENDS = ["numpy", pytest.param("compiled", marks=pytest.mark.skipif(
    not paths_module.compiled_search_available(), reason=NOT_BUILT))]
needs_compiled = pytest.mark.skipif(not paths_module.compiled_search_available(), reason=NOT_BUILT)


def assert_same(kg, grounding, backend="numpy", **opts):
    new, ref = PathRetriever(kg, backend=backend, **opts), ReferencePathRetriever(kg, **opts)
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


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=120, deadline=None)
@given(kg=dense_graphs(), directed=st.sampled_from([None, False, True]), hops=st.integers(1, 4),
       cap=st.integers(1, 8), candidates=st.sampled_from([1, 3, 1_000_000]),
       expansion=st.sampled_from([3, 10, 200_000]), data=st.data())
def test_search_returns_the_reference_paths(backend, kg, directed, hops, cap, candidates, expansion, data):
    n = kg.num_concepts
    qs = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
    As = data.draw(st.lists(st.integers(0, n - 1).filter(lambda x: x not in qs), min_size=1, max_size=3, unique=True))
    assert_same(kg, Grounding(qs, As, []), backend, max_hops=hops, max_paths=cap, directed=directed,
                max_candidates=candidates, max_expansion=expansion)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(kg=dense_graphs(), directed=st.sampled_from([False, True]), data=st.data())
def test_question_side_kept_across_statements(backend, kg, directed, data):
    """One retriever over several statements (the question side is reused while the
    question concepts stay the same) finds what a fresh reference finds for each."""
    n = kg.num_concepts
    new = PathRetriever(kg, max_paths=3, directed=directed, backend=backend)
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


def hub_graph(seed=0, n=60, m=900):
    rng = np.random.default_rng(seed)
    head = np.minimum(rng.zipf(1.6, m) - 1, n - 1)
    tail = rng.integers(0, n, m)
    rel = rng.integers(0, 3, m)
    return KnowledgeGraph([f"c{i}" for i in range(n)], ["r0", "r1", "r2"], head.tolist(), rel.tolist(), tail.tolist())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("directed", [None, True, False])
def test_random_graph_with_hubs(directed, backend):
    """A graph with parallel paths and hubs: caps cut every pair, small chunks and a small
    budget change the work; the paths are the reference's."""
    kg = hub_graph()
    g = Grounding([0, 1, 2, 7], [3, 4], [])
    saved = paths_module.PATH_CHUNK
    try:
        for chunk in (1, 64, saved):
            paths_module.PATH_CHUNK = chunk
            d = assert_same(kg, g, backend, max_paths=7, directed=directed)
            assert d["path_len"].size == 8 * 7  # every pair capped
            assert_same(kg, g, backend, max_paths=50, directed=directed, max_expansion=150)
            assert_same(kg, g, backend, max_paths=50, max_hops=4, directed=directed, max_expansion=400)
    finally:
        paths_module.PATH_CHUNK = saved


def assert_backends_agree(kg, statements, **opts):
    """The numpy and the compiled search, one retriever each over all ``statements`` (so
    the compiled question side is reused and replaced): same arrays, same ``truncated``,
    same paths through every public entry point."""
    num, com = PathRetriever(kg, backend="numpy", **opts), PathRetriever(kg, backend="compiled", **opts)
    assert com.backend == "compiled" and num.backend == "numpy" and com.config == num.config
    total = 0
    for g in statements:
        want, got = num.retrieve_arrays(g), com.retrieve_arrays(g)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
        assert com.truncated == num.truncated
        total += want["path_len"].size
        q, a = g.question_concepts[0], g.answer_concepts[0]
        assert com.edge_paths(q, a) == num.edge_paths(q, a)
        assert com.node_paths(q, a) == num.node_paths(q, a)
    return total


@needs_compiled
@pytest.mark.parametrize("directed", [None, True, False])
def test_backends_agree_over_several_windows(directed):
    """Small ``PATH_WINDOW`` values put the 3-edge level's ``max_candidates`` count over
    many windows (the reference only ever sees one on small graphs): both backends still
    agree, for one retriever over statements sharing and changing question concepts."""
    kg = hub_graph(seed=1, n=80, m=1500)
    rng = np.random.default_rng(2)
    statements = []
    for _ in range(4):
        qs = rng.choice(80, size=4, replace=False).tolist()
        for _ in range(3):
            As = rng.choice([x for x in range(80) if x not in qs], size=2, replace=False).tolist()
            statements.append(Grounding(qs, As, []))
    saved = paths_module.PATH_WINDOW
    try:
        for window in (1, 5, 40, saved):
            paths_module.PATH_WINDOW = window
            for candidates in (1, 4, 30, 1_000_000):
                for hops in (3, 4):
                    assert assert_backends_agree(kg, statements, max_hops=hops, max_paths=20, directed=directed,
                                                 max_candidates=candidates, max_expansion=300) > 0
    finally:
        paths_module.PATH_WINDOW = saved


@needs_compiled
def test_backends_agree_with_a_scorer_and_induced_edges():
    """A scorer (applied after the search) and ``edges="induced"`` see the same paths."""
    def by_length(nodes, rels, length):
        return -length.astype(float) + 0.001 * nodes[:, 1]

    kg = hub_graph(seed=3)
    statements = [Grounding([0, 1, 5], [3, 4], []), Grounding([0, 1, 5], [9], []), Grounding([2], [3, 6], [])]
    assert assert_backends_agree(kg, statements, scorer=by_length, scorer_top_k=5) > 0
    assert assert_backends_agree(kg, statements, edges="induced", max_paths=9) > 0


@needs_compiled
def test_compiled_retriever_pickles_and_searches_again():
    import pickle

    kg = hub_graph()
    g = Grounding([0, 1, 2, 7], [3, 4], [])
    r = PathRetriever(kg, max_paths=7).build()
    assert r.backend == "compiled"
    want = r.retrieve_arrays(g)
    again = pickle.loads(pickle.dumps(r))
    got = again.retrieve_arrays(g)
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_backend_choice(monkeypatch):
    kg = hub_graph()
    with pytest.raises(ValueError, match="backend"):
        PathRetriever(kg, backend="fortran")
    assert PathRetriever(kg, backend="numpy").backend == "numpy"
    # an install without the compiled search: auto falls back, compiled is refused
    monkeypatch.setattr(paths_module, "_pathsearch", None)
    assert not paths_module.compiled_search_available()
    assert PathRetriever(kg).backend == "numpy"
    with pytest.raises(ImportError, match="C compiler"):
        PathRetriever(kg, backend="compiled")


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_graph_paths_are_the_reference_paths(backend):
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
                d = assert_same(kg, g, backend, max_hops=hops, directed=directed)
                assert d["path_len"].size > 0
