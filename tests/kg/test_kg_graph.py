"""KnowledgeGraph core on a hand-made 4-node graph with known answers (see ``tiny_kg``)."""

from __future__ import annotations

import numpy as np
import pytest

from kgfuse.kg import GraphBuilder, KnowledgeGraph

A, B, C, D = 0, 1, 2, 3


def test_canonical_order_and_sizes(tiny_kg):
    kg = tiny_kg
    assert (kg.num_concepts, kg.num_relations, kg.num_edges) == (4, 2, 5)
    triples = list(zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist()))
    assert triples == [(A, 0, B), (A, 1, C), (B, 0, C), (C, 1, D), (D, 0, A)]
    assert kg.weight.tolist() == [1.0, 2.0, 3.0, 0.5, 1.0]
    assert kg.out_ptr.tolist() == [0, 2, 3, 4, 5]
    assert kg.concept_id("c") == C and kg.concept_name(D) == "d" and kg.relation_id("r1") == 1
    with pytest.raises(KeyError, match="unknown concept"):
        kg.concept_id("zebra")
    assert kg.concept_id("zebra", default=-1) == -1


def test_neighbors(tiny_kg):
    kg = tiny_kg
    out = kg.neighbors(A)
    assert out.nodes.tolist() == [B, C] and out.relations.tolist() == [0, 1] and out.edges.tolist() == [0, 1]
    inn = kg.neighbors(C, "in")
    assert sorted(zip(inn.nodes.tolist(), inn.relations.tolist())) == [(A, 1), (B, 0)]
    both = kg.neighbors(A, "both")
    assert both.nodes.tolist() == [B, C, D] and len(both) == 3
    assert list(kg.neighbors(D)) == [(A, 0)]
    assert kg.degree("out").tolist() == [2, 1, 1, 1] and kg.degree("in").tolist() == [1, 1, 2, 1]
    with pytest.raises(IndexError):
        kg.neighbors(4)
    with pytest.raises(ValueError, match="direction"):
        kg.neighbors(A, "sideways")


def test_induced_edges(tiny_kg):
    kg = tiny_kg
    assert kg.induced_edges([A, B, C]).tolist() == [0, 1, 2]
    assert kg.induced_edges([D, C]).tolist() == [3]
    assert kg.induced_edges([A, D]).tolist() == [4]
    assert kg.induced_edges([B]).tolist() == []
    assert kg.induced_edges([]).tolist() == []


def test_induced_edges_matches_networkx_on_sample(sample_kg):
    nx = pytest.importorskip("networkx")
    G = sample_kg.to_networkx()
    rng = np.random.default_rng(0)
    names = sample_kg.concepts
    for _ in range(5):
        nodes = rng.choice(sample_kg.num_concepts, size=40, replace=False)
        got = {(names[h], sample_kg.relation_name(r), names[t]) for h, r, t in
               zip(*(a[sample_kg.induced_edges(nodes)].tolist()
                     for a in (sample_kg.head, sample_kg.relation, sample_kg.tail)))}
        H = G.subgraph([names[i] for i in nodes])
        want = {(u, d["relation"], v) for u, v, d in H.edges(data=True)}
        assert got == want


def test_subgraph(tiny_kg):
    sub = tiny_kg.subgraph([C, A, B])
    assert list(sub.concepts) == ["c", "a", "b"] and sub.relations == tiny_kg.relations
    triples = set(zip(sub.head.tolist(), sub.relation.tolist(), sub.tail.tolist()))
    assert triples == {(1, 0, 2), (1, 1, 0), (2, 0, 0)}  # a->b, a->c, b->c in local ids
    w = {(h, t): x for h, t, x in zip(sub.head.tolist(), sub.tail.tolist(), sub.weight.tolist())}
    assert w[(2, 0)] == 3.0
    assert sub.meta["parent_ids"] == [C, A, B] and sub.meta["parent_hash"] == tiny_kg.hash
    with pytest.raises(ValueError, match="duplicates"):
        tiny_kg.subgraph([A, A])


def test_hash_is_stable_and_sensitive(tiny_kg):
    names, rels = ["a", "b", "c", "d"], ["r0", "r1"]
    edges = [(A, 0, B, 1.0), (A, 1, C, 2.0), (B, 0, C, 3.0), (C, 1, D, 0.5), (D, 0, A, 1.0)]

    def build(es, **kw):
        h, r, t, w = zip(*es)
        return KnowledgeGraph(kw.get("names", names), kw.get("rels", rels), h, r, t, w)

    rng = np.random.default_rng(1)
    for _ in range(3):
        perm = rng.permutation(len(edges))
        assert build([edges[i] for i in perm]).hash == tiny_kg.hash
    # duplicates merge (keeping the largest weight) to the same graph
    assert build(edges + [(A, 0, B, 0.25)]).hash == tiny_kg.hash
    assert len(tiny_kg.hash) == 64
    changed = [
        build(edges[:-1] + [(D, 1, A, 1.0)]),  # one relation changed
        build(edges[:-1] + [(D, 0, B, 1.0)]),  # one tail changed
        build(edges[:-1] + [(D, 0, A, 1.5)]),  # one weight changed
        build(edges[:-1]),  # one edge removed
        build(edges, names=["a", "b", "c", "e"]),  # one name changed
        build(edges, rels=["r0", "r2"]),  # one relation name changed
    ]
    hashes = {g.hash for g in changed} | {tiny_kg.hash}
    assert len(hashes) == len(changed) + 1


def test_hash_ignores_meta():
    a = KnowledgeGraph(["x", "y"], ["r"], [0], [0], [1], meta={"loader": "one"})
    b = KnowledgeGraph(["x", "y"], ["r"], [0], [0], [1], meta={"loader": "two"})
    assert a.hash == b.hash and a == b and hash(a) == hash(b)


def test_immutability(tiny_kg):
    kg = tiny_kg
    before = {name: getattr(kg, name).tolist() for name in ("head", "relation", "tail", "weight", "out_ptr", "in_ptr", "in_order")}
    with pytest.raises(AttributeError, match="immutable"):
        kg.head = np.zeros(5, dtype=np.int64)
    for name in ("head", "relation", "tail", "weight", "out_ptr", "in_ptr", "in_order"):
        with pytest.raises(ValueError):
            getattr(kg, name)[0] = 0
    with pytest.raises(TypeError):
        kg.concepts[0] = "z"  # read-only view
    # nothing changed: the arrays, the names, and a graph rebuilt from them has the cached hash
    assert {name: getattr(kg, name).tolist() for name in before} == before and list(kg.concepts) == ["a", "b", "c", "d"]
    rebuilt = KnowledgeGraph(list(kg.concepts), list(kg.relations), kg.head.copy(), kg.relation.copy(), kg.tail.copy(),
                             kg.weight.copy())
    assert rebuilt.hash == kg.hash


def test_hash_is_pinned_across_processes_and_versions(tiny_kg):
    """The hash keys every cache and saved model: it must not depend on the process (string
    hashing, dict order) or the platform. The value was recorded once; change it only together
    with the hash version (which invalidates every cache)."""
    assert tiny_kg.hash == "087df429c6b81a6e5a625a04e287d7e4cf52598c4278c52e2ac65c153c7e4391"


def test_constructor_validation():
    with pytest.raises(ValueError, match="differ in length"):
        KnowledgeGraph(["a", "b"], ["r"], [0, 1], [0], [1, 0])
    with pytest.raises(ValueError, match="'tail' has id 5"):
        KnowledgeGraph(["a", "b"], ["r"], [0], [0], [5])
    with pytest.raises(ValueError, match="not unique"):
        KnowledgeGraph(["a"], ["r", "r"], [], [], [])


def test_builder_and_tensors(tiny_kg):
    torch = pytest.importorskip("torch")
    b = GraphBuilder()
    for h, r, t, w in [("d", "r0", "a", 1.0), ("c", "r1", "d", 0.5), ("a", "r0", "b", 1.0),
                       ("a", "r1", "c", 2.0), ("b", "r0", "c", 3.0)]:
        b.add(h, r, t, w)
    kg = b.build()
    assert {(kg.concept_name(h), kg.relation_name(r), kg.concept_name(t)) for h, r, t in
            zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist())} == {
        ("a", "r0", "b"), ("a", "r1", "c"), ("b", "r0", "c"), ("c", "r1", "d"), ("d", "r0", "a")}
    ei = tiny_kg.edge_index
    assert ei.dtype == torch.long and ei.tolist() == [[A, A, B, C, D], [B, C, C, D, A]]
    assert tiny_kg.edge_type.tolist() == [0, 1, 0, 1, 0]
    data = tiny_kg.to_pyg()
    assert data.num_nodes == 4 and data.edge_weight.tolist() == [1.0, 2.0, 3.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="newline"):
        GraphBuilder().add("a\nb", "r", "c")
