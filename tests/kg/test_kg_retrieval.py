"""Tests of kgfuse.kg.retrieval: PathRetriever against networkx, SubgraphRetriever against a
direct set computation, KGData batching, explanations."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch

from kgfuse.kg import GraphBuilder, KnowledgeGraph
from kgfuse.kg.linking import Grounding
import kgfuse.kg.retrieval.adjacency as adjacency
import kgfuse.kg.retrieval.paths as paths_module
from kgfuse.kg.retrieval import (
    NODE_ANSWER,
    NODE_OTHER,
    NODE_QUESTION,
    KGData,
    EdgeRebuilder,
    PathRetriever,
    SubgraphRetriever,
    inverse_relations,
    question_answer_joins,
)


@st.composite
def multigraphs(draw, max_nodes=7, max_edges=14):
    n = draw(st.integers(2, max_nodes))
    r = draw(st.integers(1, 3))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, r - 1), st.integers(0, n - 1)), max_size=max_edges))
    h, rel, t = (list(x) for x in zip(*edges)) if edges else ([], [], [])
    return KnowledgeGraph([f"c{i}" for i in range(n)], [f"r{i}" for i in range(r)], h, rel, t)


def nx_graph(kg: KnowledgeGraph, directed: bool):
    G = nx.MultiDiGraph() if directed else nx.MultiGraph()
    G.add_nodes_from(range(kg.num_concepts))
    for e, (a, b) in enumerate(zip(kg.head.tolist(), kg.tail.tolist())):
        G.add_edge(a, b, key=e)
    return G


@settings(max_examples=60, deadline=None)
@given(kg=multigraphs(), directed=st.booleans(), hops=st.integers(1, 4), data=st.data())
def test_paths_match_networkx(kg, directed, hops, data):
    n = kg.num_concepts
    q = data.draw(st.integers(0, n - 1))
    a = data.draw(st.integers(0, n - 1).filter(lambda x: x != q))
    G = nx_graph(kg, directed)
    ref = {tuple(k for _, _, k in p) for p in nx.all_simple_edge_paths(G, q, a, cutoff=hops)}
    pr = PathRetriever(kg, max_hops=hops, max_paths=10**6, directed=directed)
    got = [tuple(e for e, _ in p) for p in pr.edge_paths(q, a)]
    assert len(got) == len(set(got))
    assert set(got) == ref
    # shortest first
    lens = [len(p) for p in got]
    assert lens == sorted(lens)
    # node paths are the distinct simple paths of networkx (with one entry per parallel edge)
    ref_nodes = {tuple(p) for p in nx.all_simple_paths(G, q, a, cutoff=hops)}
    assert {tuple(p) for p in pr.node_paths(q, a)} == ref_nodes
    # direction flags agree with the graph edges
    for p in pr.edge_paths(q, a):
        cur = q
        for e, fwd in p:
            h, t = int(kg.head[e]), int(kg.tail[e])
            assert (h, t)[0 if fwd else 1] == cur
            cur = (h, t)[1 if fwd else 0]
            assert fwd or not directed
        assert cur == a


@settings(max_examples=40, deadline=None)
@given(kg=multigraphs(), cap=st.integers(1, 4), data=st.data())
def test_path_cap_keeps_shortest(kg, cap, data):
    n = kg.num_concepts
    q = data.draw(st.integers(0, n - 1))
    a = data.draw(st.integers(0, n - 1).filter(lambda x: x != q))
    full = PathRetriever(kg, max_hops=3, max_paths=10**6).edge_paths(q, a)
    capped = PathRetriever(kg, max_hops=3, max_paths=cap).edge_paths(q, a)
    assert len(capped) == min(cap, len(full))
    assert set(map(tuple, capped)) <= set(map(tuple, full))
    if capped:  # shortest first: every path shorter than the longest kept one is kept
        longest = max(len(p) for p in capped)
        assert [p for p in full if len(p) < longest] == [p for p in capped if len(p) < longest]
    assert capped == sorted(capped, key=lambda p: (len(p), full.index(p)))


@settings(max_examples=40, deadline=None)
@given(kg=multigraphs(max_nodes=6, max_edges=10), data=st.data())
def test_path_kgdata(kg, data):
    n = kg.num_concepts
    qs = data.draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=3, unique=True))
    As = data.draw(st.lists(st.integers(0, n - 1).filter(lambda x: x not in qs), max_size=2, unique=True))
    pr = PathRetriever(kg, max_hops=3, max_paths=5)
    d = pr(Grounding(qs, As, []))
    assert isinstance(d, KGData) and d.num_nodes == len(qs) + len(As) + int((d.node_type == NODE_OTHER).sum())
    assert d.concept_ids[: len(qs)].tolist() == qs
    assert d.concept_ids[len(qs) : len(qs) + len(As)].tolist() == As
    assert d.node_type.tolist()[: len(qs) + len(As)] == [NODE_QUESTION] * len(qs) + [NODE_ANSWER] * len(As)
    expected = sum(min(5, len(pr.edge_paths(x, y))) for x in qs for y in As)
    assert d.paths.shape == (expected, 4) and d.path_rels.shape == (expected, 3)
    R = kg.num_relations
    cid = d.concept_ids
    for nodes, rels, L in zip(d.paths.tolist(), d.path_rels.tolist(), d.path_len.tolist()):
        assert cid[nodes[0]].item() in qs and cid[nodes[L]].item() in As
        assert nodes[L:] == [nodes[L]] * (4 - L)  # padding repeats the last node
        assert rels[L:] == [0] * (3 - L)
        for k in range(L):
            u, v, r = cid[nodes[k]].item(), cid[nodes[k + 1]].item(), rels[k]
            h, t = (u, v) if r < R else (v, u)
            assert ((kg.head == h) & (kg.tail == t) & (kg.relation == r % R)).any()
    # the subgraph's edges are exactly the edges of the kept paths, in edge-id order
    want = sorted({e for x in qs for y in As for p in pr.edge_paths(x, y) for e, _ in p})
    got = [
        int(np.flatnonzero((kg.head == cid[h].item()) & (kg.tail == cid[t].item()) & (kg.relation == r))[0])
        for (h, t), r in zip(d.edge_index.t().tolist(), d.edge_type.tolist())
    ]
    assert got == want


def subgraph_reference(kg: KnowledgeGraph, q: list[int], a: list[int], bridge: str) -> set[int]:
    nb = {i: set() for i in range(kg.num_concepts)}
    for h, t in zip(kg.head.tolist(), kg.tail.tolist()):
        nb[h].add(t)
        nb[t].add(h)
    grounded = set(q) | set(a)
    extra = set()
    pairs = [(x, y) for x in q for y in a] if bridge == "qa" else [(x, y) for x in grounded for y in grounded if x != y]
    for x, y in pairs:
        extra |= nb[x] & nb[y]
    return extra - grounded


@settings(max_examples=60, deadline=None)
@given(kg=multigraphs(max_nodes=9, max_edges=20), bridge=st.sampled_from(["qa", "all_pairs"]), data=st.data())
def test_subgraph_matches_set_computation(kg, bridge, data):
    n = kg.num_concepts
    qs = data.draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True))
    As = data.draw(st.lists(st.integers(0, n - 1).filter(lambda x: x not in qs), max_size=3, unique=True))
    sr = SubgraphRetriever(kg, max_nodes=1000, bridge=bridge)
    d = sr(Grounding(qs, As, []))
    cid = d.concept_ids.tolist()
    k = len(qs) + len(As)
    assert cid[:k] == qs + As
    assert set(cid[k:]) == subgraph_reference(kg, qs, As, bridge)
    assert cid[k:] == sorted(cid[k:])
    # induced edges: exactly the graph edges among the nodes
    s = set(cid)
    ref_edges = sorted(
        (h, r, t) for h, r, t in zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist()) if h in s and t in s
    )
    got = sorted((cid[h], r, cid[t]) for (h, t), r in zip(d.edge_index.t().tolist(), d.edge_type.tolist()))
    assert got == ref_edges


def test_subgraph_ranking_cut():
    # q - x_i - a for 5 bridges; x0 also touches the second answer; degrees differ
    b = GraphBuilder()
    for i in range(5):
        b.add("q", "R", f"x{i}")
        b.add(f"x{i}", "R", "a")
    b.add("x0", "R", "a2")
    for j in range(3):
        b.add("x3", "R", f"leaf{j}")
    kg = b.build()
    g = Grounding([kg.concept_id("q")], [kg.concept_id("a"), kg.concept_id("a2")], [])
    d = SubgraphRetriever(kg, max_nodes=5)(g)
    names = [kg.concept_name(c) for c in d.concept_ids.tolist()]
    # x0 bridges three grounded concepts; then lowest degree (x1, x2, x4 have degree 2), lowest id
    assert names == ["q", "a", "a2", "x0", "x1"]
    d2 = SubgraphRetriever(kg, max_nodes=4, ranking=lambda c, links, deg: deg.astype(float))(g)
    assert [kg.concept_name(c) for c in d2.concept_ids.tolist()] == ["q", "a", "a2", "x3"]
    d3 = SubgraphRetriever(kg, max_nodes=2)(g)
    assert [kg.concept_name(c) for c in d3.concept_ids.tolist()] == ["q", "a"]
    with pytest.raises(ValueError, match="connectivity"):
        SubgraphRetriever(kg, ranking="pagerank")


def test_question_answer_joins_direct_edge_two_hop_path_or_neither():
    b = GraphBuilder()
    b.add("q", "R", "a_direct")       # q -> a_direct
    b.add("q", "R", "mid")            # q -> mid <- a_path
    b.add("a_path", "R", "mid")
    b.add("far", "R", "a_far")        # q -> mid -> far -> a_far: three hops
    b.add("mid", "R", "far")
    b.add("a_alone", "R", "elsewhere")
    kg = b.build()
    sr = SubgraphRetriever(kg, max_nodes=50)

    def joins(answer):
        return question_answer_joins(sr(Grounding([kg.concept_id("q")], [kg.concept_id(answer)], [])))

    assert joins("a_direct") == (True, True)
    assert joins("a_path") == (False, True)   # through "mid", in either edge direction
    assert joins("a_far") == (False, False)
    assert joins("a_alone") == (False, False)
    # an empty subgraph (nothing linked) joins nothing
    assert question_answer_joins(sr(Grounding([], [], []))) == (False, False)


def sample_kg():
    b = GraphBuilder()
    for h, r, t in [
        ("plate", "AtLocation", "cupboard"),
        ("kitchen", "HasA", "cupboard"),
        ("plate", "AtLocation", "kitchen"),
        ("dish", "RelatedTo", "plate"),
        ("dish", "AtLocation", "cupboard"),
    ]:
        b.add(h, r, t)
    return b.build()


def test_explain_and_batching():
    kg = sample_kg()
    g = Grounding([kg.concept_id("plate")], [kg.concept_id("cupboard")], [])
    pr = PathRetriever(kg, max_hops=2)
    d = pr(g)
    assert pr.explain(d) == [
        "plate --AtLocation--> cupboard",
        "plate --AtLocation--> kitchen --HasA--> cupboard",
        "plate <--RelatedTo-- dish --AtLocation--> cupboard",
    ]
    sr = SubgraphRetriever(kg)
    ds = sr(g)
    assert "plate --AtLocation--> cupboard" in sr.explain(ds)
    assert len(sr.explain(ds)) == ds.edge_index.shape[1]
    empty = pr(Grounding([], [], []))
    assert empty.num_nodes == 0 and empty.paths.shape == (0, 3) and empty.edge_index.shape == (2, 0)
    batch = Batch.from_data_list([d, empty, d])
    assert batch.num_nodes == 2 * d.num_nodes
    assert torch.equal(batch.paths[d.paths.shape[0] :], d.paths + d.num_nodes)
    assert torch.equal(batch.path_rels, torch.cat([d.path_rels, d.path_rels]))
    assert SubgraphRetriever(kg)(Grounding([], [], [])).num_nodes == 0
    assert json.loads(json.dumps(pr.config)) == pr.config and json.loads(json.dumps(sr.config)) == sr.config


def test_scorer_prunes():
    kg = sample_kg()
    g = Grounding([kg.concept_id("plate")], [kg.concept_id("cupboard")], [])
    seen = {}

    def prefer_long(nodes, rels, lengths):
        seen["shape"] = nodes.shape
        return lengths.astype(float)

    pr = PathRetriever(kg, max_hops=2, scorer=prefer_long, scorer_top_k=2)
    d = pr(g)
    assert seen["shape"] == (3, 3)
    assert d.path_len.tolist() == [2, 2]
    assert pr.config["scorer"].endswith("prefer_long")


def test_hub_budget_truncates_but_stays_valid():
    # a hub with many neighbours between q and a
    b = GraphBuilder()
    b.add("q", "R", "hub")
    b.add("hub", "R", "a")
    for i in range(200):
        b.add("hub", "R", f"n{i}")
        b.add(f"n{i}", "R", "a")
    kg = b.build()
    g = Grounding([kg.concept_id("q")], [kg.concept_id("a")], [])
    full = PathRetriever(kg, max_hops=3, max_paths=1000)
    d = full(g)
    assert not full.truncated and d.paths.shape[0] == 201
    small = PathRetriever(kg, max_hops=3, max_paths=1000, max_expansion=50)
    d2 = small(g)
    assert small.truncated
    assert 1 <= d2.paths.shape[0] <= 201
    assert d2.path_len[0].item() == 2  # q - hub - a (level-1 expansion is never cut)


def test_invalid_args():
    kg = sample_kg()
    with pytest.raises(ValueError, match="max_hops"):
        PathRetriever(kg, max_hops=5)
    with pytest.raises(ValueError, match="bridge"):
        SubgraphRetriever(kg, bridge="x")
    assert np.array_equal(PathRetriever(kg).node_paths(0, 0), [])


@settings(max_examples=60, deadline=None)
@given(kg=multigraphs(max_nodes=12, max_edges=60), data=st.data())
def test_induced_edges_lookup_matches_csr_scan(kg, data):
    """The pair-index lookup, the out-edge scan and their per-node mix give the same edges."""
    nodes = np.asarray(data.draw(st.lists(st.integers(0, kg.num_concepts - 1), max_size=8, unique=True)), np.int64)
    ref = kg.induced_edges(nodes)
    rb = EdgeRebuilder(kg)
    saved = adjacency.LOOKUP_FACTOR
    try:
        for factor in (0, 1, saved, 10**9):  # all lookups, mixed, default, all scans
            adjacency.LOOKUP_FACTOR = factor
            assert rb._adj.induced(nodes).tolist() == ref.tolist(), factor
    finally:
        adjacency.LOOKUP_FACTOR = saved
    ei, et = rb.induced(nodes)
    assert [(int(nodes[h]), r, int(nodes[t])) for (h, t), r in zip(ei.T.tolist(), et.tolist())] == [
        (int(kg.head[e]), int(kg.relation[e]), int(kg.tail[e])) for e in ref
    ]


def test_pair_index():
    kg = KnowledgeGraph([f"c{i}" for i in range(5)], ["r0", "r1", "r2"],
                        [3, 0, 0, 3, 0, 4], [0, 2, 0, 1, 1, 2], [1, 1, 1, 1, 4, 4])
    keys, ptr, order = kg.pair_index()
    assert kg.pair_index() is kg.pair_index()  # built once
    pairs = {}
    for e, (h, t) in enumerate(zip(kg.head.tolist(), kg.tail.tolist())):
        pairs.setdefault(h * 5 + t, []).append(e)
    assert keys.tolist() == sorted(pairs)
    assert [order[ptr[u]:ptr[u + 1]].tolist() for u in range(keys.size)] == [pairs[k] for k in sorted(pairs)]
    h0 = kg.hash
    assert KnowledgeGraph(kg.concepts, kg.relations, kg.head, kg.relation, kg.tail).hash == h0


def with_inverses(kg: KnowledgeGraph, drop_one: bool = False) -> KnowledgeGraph:
    """``kg`` plus the twin ``(t, _r, h)`` of every edge (as the loaders' add_inverse)."""
    R = kg.num_relations
    h, r, t = kg.head, kg.relation, kg.tail
    m = kg.num_edges - (1 if drop_one else 0)
    return KnowledgeGraph(kg.concepts, list(kg.relations) + ["_" + x for x in kg.relations],
                          np.concatenate((h, t[:m])), np.concatenate((r, r[:m] + R)), np.concatenate((t, h[:m])))


@settings(max_examples=40, deadline=None)
@given(kg=multigraphs(max_nodes=6, max_edges=9), hops=st.integers(1, 3), data=st.data())
def test_auto_direction_with_inverse_relations(kg, hops, data):
    """On a graph holding every edge's inverse twin, auto follows edges forward only and finds
    each undirected path of the original graph exactly once (no twin duplicates)."""
    n = kg.num_concepts
    q = data.draw(st.integers(0, n - 1))
    a = data.draw(st.integers(0, n - 1).filter(lambda x: x != q))
    inv = with_inverses(kg)
    auto = PathRetriever(inv, max_hops=hops, max_paths=10**6)
    if kg.num_edges:
        assert auto.directed and auto.config["direction"] == "auto" and auto.config["directed"]
    got = auto.node_paths(q, a)
    ref = PathRetriever(kg, max_hops=hops, max_paths=10**6, directed=False).node_paths(q, a)
    assert sorted(got) == sorted(ref)
    both = PathRetriever(inv, max_hops=hops, max_paths=10**6, directed=False)
    assert not both.directed and both.config["direction"] == "undirected"
    # an undirected search over the twins: each path once per choice of twin at each step
    assert sum(2 ** (len(p) - 1) for p in got) == len(both.node_paths(q, a))
    # auto on a graph without (complete) inverses searches both ways
    assert not PathRetriever(kg).directed
    if kg.num_edges:
        assert inverse_relations(with_inverses(kg, drop_one=True)) is None
        assert not PathRetriever(with_inverses(kg, drop_one=True)).directed


def test_auto_direction_explains_once():
    b = GraphBuilder()
    for h, r, t in [("plate", "atlocation", "cupboard"), ("cupboard", "partof", "kitchen")]:
        b.add(h, r, t)
        b.add(t, "_" + r, h)
    kg = b.build()
    g = Grounding([kg.concept_id("plate")], [kg.concept_id("kitchen")], [])
    pr = PathRetriever(kg, max_hops=2)
    assert pr.directed and inverse_relations(kg).tolist() == [kg.relation_id(f"_{x}") if not x.startswith("_")
                                                              else kg.relation_id(x[1:]) for x in kg.relations]
    assert pr.explain(pr(g)) == ["plate --atlocation--> cupboard --partof--> kitchen"]
    assert len(PathRetriever(kg, max_hops=2, directed=False)(g).paths) == 4


@settings(max_examples=40, deadline=None)
@given(kg=multigraphs(max_nodes=8, max_edges=24), directed=st.sampled_from([None, False, True]),
       cap=st.integers(1, 6), data=st.data())
def test_path_chunks_and_windows_change_work_not_result(kg, directed, cap, data):
    """The chunked 3-edge search (early stop once every pair has its quota) returns what
    one chunk over all half-paths returns, whatever the window size (with the default
    ``max_candidates``)."""
    n = kg.num_concepts
    qs = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
    As = data.draw(st.lists(st.integers(0, n - 1).filter(lambda x: x not in qs), min_size=1, max_size=2, unique=True))
    g = Grounding(qs, As, [])
    saved = paths_module.PATH_CHUNK, paths_module.PATH_WINDOW
    try:
        outs = []
        for chunk, window in ((1, 1), (2, 10**9), (10**9, 2), (10**9, 10**9)):
            paths_module.PATH_CHUNK, paths_module.PATH_WINDOW = chunk, window
            d = PathRetriever(kg, max_hops=3, max_paths=cap, directed=directed).retrieve_arrays(g)
            outs.append({k: v.tolist() for k, v in d.items()})
    finally:
        paths_module.PATH_CHUNK, paths_module.PATH_WINDOW = saved
    assert outs[0] == outs[1] == outs[2] == outs[3]


@pytest.mark.parametrize("directed", [True, False])
def test_three_hop_paths_grown_from_the_answer_side(directed):
    # the question side is the expensive one, so the answer side is grown to two edges
    b = GraphBuilder()
    for h, t in [("q", "x"), ("x", "y"), ("a", "y")]:
        b.add(h, "R", t)
    for i in range(5):
        b.add("q", "R", f"n{i}")
    kg = b.build()
    q, a = kg.concept_id("q"), kg.concept_id("a")
    pr = PathRetriever(kg, max_hops=3, directed=directed)
    paths = pr.edge_paths(q, a)
    if directed:  # a -> y is against the direction
        assert paths == []
        return
    assert [[(kg.concept_name(kg.head[e]), kg.concept_name(kg.tail[e]), f) for e, f in p] for p in paths] == [
        [("q", "x", True), ("x", "y", True), ("a", "y", False)]
    ]
    assert pr.explain(pr(Grounding([q], [a], []))) == ["q --R--> x --R--> y <--R-- a"]


def test_every_module_of_the_package_is_imported_and_names_stay_importable():
    """A retriever is one module of ``kgfuse.kg.retrieval`` with one decorator: importing the
    package imports every module (so its decorator runs); the names of the former single
    module still import from the package."""
    import pkgutil
    import sys

    import kgfuse.kg.retrieval as pkg

    names = [m.name for m in pkgutil.iter_modules(pkg.__path__)]
    assert {"base", "adjacency", "registry", "paths", "subgraph"} <= set(names)
    assert all(f"kgfuse.kg.retrieval.{n}" in sys.modules for n in names)
    assert pkg.RETRIEVERS["path"] is PathRetriever and pkg.RETRIEVERS["subgraph"] is SubgraphRetriever
    for name in pkg.__all__ + ["LOOKUP_FACTOR", "PATH_WINDOW", "_Adjacency", "_Half", "_concat_ranges",
                               "_grounded", "_node_layout", "_callable_name"]:
        assert hasattr(pkg, name), name
