"""Tests of SubgraphRetriever(ranking="relevance"): QA-GNN's ranking of bridging concepts by
their relevance to the statement, the node scores it returns, and their preprocessing cache.

The scorers here are small hand-made classes implementing the graph layer's
``RelevanceScorer`` protocol (the text-encoder scorer is tested in
tests/encoders/test_encoders_relevance.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from kgfuse.kg import GraphBuilder
from kgfuse.kg.linking import Grounding
from kgfuse.kg.retrieval import NODE_OTHER, RelevanceScorer, SubgraphRetriever, statement_text


class FavourScorer:
    """Scores 1.0 for the names in ``favourites`` and ``base`` for every other name; records
    the statements it was asked about."""

    def __init__(self, favourites=(), base=0.0, tag="v1"):
        self.favourites, self.base, self.tag = set(favourites), float(base), tag
        self.contexts: list[str] = []
        self.prepared: list[str] = []
        self.flushed = 0

    @property
    def config(self):
        return {"class": "FavourScorer", "favourites": sorted(self.favourites), "tag": self.tag}

    def score(self, context, names):
        self.contexts.append(context)
        return np.array([1.0 if n in self.favourites else self.base for n in names], dtype=np.float32)

    def prepare(self, contexts):
        self.prepared.extend(contexts)

    def flush(self):
        self.flushed += 1


class WordOverlapScorer:
    """Relevance = the fraction of the name's words that occur in the statement (a real,
    deterministic text scorer without a model)."""

    config = {"class": "WordOverlapScorer", "version": 1}

    def score(self, context, names):
        words = set(context.lower().replace("?", " ").split())
        out = []
        for n in names:
            parts = n.split("_")
            out.append(sum(p in words for p in parts) / len(parts))
        return np.asarray(out, dtype=np.float32)


def star_graph():
    """plate (question) and cupboard (answer); kitchen bridges plate, clean and cupboard
    (best connected), shelf and sink bridge plate and cupboard only."""
    b = GraphBuilder()
    for h, r, t in [
        ("plate", "AtLocation", "kitchen"), ("clean", "RelatedTo", "kitchen"), ("kitchen", "HasA", "cupboard"),
        ("plate", "AtLocation", "shelf"), ("shelf", "PartOf", "cupboard"),
        ("plate", "RelatedTo", "sink"), ("sink", "RelatedTo", "cupboard"),
        ("plate", "AtLocation", "cupboard"),
    ]:
        b.add(h, r, t)
    return b.build()


def grounding(kg, q, a):
    return Grounding([kg.concept_id(c) for c in q], [kg.concept_id(c) for c in a], [])


def names_of(kg, ids):
    return [kg.concept_name(int(c)) for c in ids]


def test_the_scorer_decides_which_bridging_concept_is_kept():
    kg = star_graph()
    g = grounding(kg, ["plate", "clean"], ["cupboard"])
    ctx = ("Where do you keep a clean plate?", "cupboard")
    # room for one bridging concept: connectivity keeps kitchen (adjacent to 3 grounded concepts)
    conn = SubgraphRetriever(kg, max_nodes=4).retrieve_nodes(g)
    assert names_of(kg, conn["concept_ids"]) == ["plate", "clean", "cupboard", "kitchen"]
    assert "node_score" not in conn
    # a scorer that favours shelf makes the retriever keep shelf instead
    scorer = FavourScorer({"shelf"})
    sr = SubgraphRetriever(kg, max_nodes=4, ranking="relevance", scorer=scorer)
    out = sr.retrieve_nodes(g, context=ctx)
    assert names_of(kg, out["concept_ids"]) == ["plate", "clean", "cupboard", "shelf"]
    assert out["node_type"].tolist()[-1] == NODE_OTHER
    assert scorer.contexts == ["Where do you keep a clean plate? cupboard"]
    # the scores of the kept nodes, grounded ones included, aligned with concept_ids
    assert out["node_score"].dtype == np.float32 and out["node_score"].shape == out["concept_ids"].shape
    assert out["node_score"].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_node_scores_align_with_concept_ids_and_ties_go_to_the_lower_id():
    kg = star_graph()
    g = grounding(kg, ["plate"], ["cupboard"])
    ctx = ("Is the plate in the kitchen sink?", "cupboard")
    sr = SubgraphRetriever(kg, max_nodes=10, ranking="relevance", scorer=WordOverlapScorer())
    out = sr.retrieve_arrays(g, context=ctx)
    names = names_of(kg, out["concept_ids"])
    # every candidate fits: all kept, bridging ones in ascending id order after the grounded ones
    assert names[:2] == ["plate", "cupboard"] and sorted(names[2:]) == ["kitchen", "shelf", "sink"]
    assert out["concept_ids"][2:].tolist() == sorted(out["concept_ids"][2:].tolist())
    want = WordOverlapScorer().score(statement_text(ctx), names)
    np.testing.assert_array_equal(out["node_score"], want)
    assert "edge_index" in out and out["edge_index"].shape[1] > 0
    # room for two: kitchen and sink (overlap 1.0) beat shelf (0.0)
    two = SubgraphRetriever(kg, max_nodes=4, ranking="relevance", scorer=WordOverlapScorer()).retrieve_nodes(g, context=ctx)
    assert sorted(names_of(kg, two["concept_ids"][2:])) == ["kitchen", "sink"]
    # room for one among equal scores: the lowest id
    one = SubgraphRetriever(kg, max_nodes=3, ranking="relevance", scorer=FavourScorer()).retrieve_nodes(g, context=ctx)
    cands = [kg.concept_id(c) for c in ("kitchen", "shelf", "sink")]
    assert one["concept_ids"].tolist()[2:] == [min(cands)]
    # the KGData of __call__ carries the scores as float32
    data = sr(g, context=ctx)
    assert data.node_score.dtype.is_floating_point and data.node_score.tolist() == pytest.approx(want.tolist())


def test_empty_grounding_and_grounded_only_subgraphs_are_scored():
    kg = star_graph()
    sr = SubgraphRetriever(kg, max_nodes=2, ranking="relevance", scorer=WordOverlapScorer())
    empty = sr.retrieve_nodes(Grounding([], [], []), context=("Why?", "because"))
    assert empty["concept_ids"].size == 0 and empty["node_score"].dtype == np.float32 and empty["node_score"].size == 0
    # the budget is filled by the grounded concepts: no bridging, the grounded ones still scored
    out = sr.retrieve_nodes(grounding(kg, ["plate"], ["cupboard"]), context=("a plate", "a box"))
    assert names_of(kg, out["concept_ids"]) == ["plate", "cupboard"]
    assert out["node_score"].tolist() == [1.0, 0.0]


def test_config_carries_the_scorer_config_and_bad_uses_are_refused():
    kg = star_graph()
    a = SubgraphRetriever(kg, ranking="relevance", scorer=FavourScorer({"shelf"}))
    b = SubgraphRetriever(kg, ranking="relevance", scorer=FavourScorer({"shelf"}, tag="v2"))
    assert a.config["ranking"] == "relevance" and a.config["scorer"] == FavourScorer({"shelf"}).config
    assert a.config != b.config
    assert a.needs_context and not a.fork_safe
    plain = SubgraphRetriever(kg)
    assert "scorer" not in plain.config and not plain.needs_context and plain.fork_safe
    assert isinstance(FavourScorer(), RelevanceScorer)
    with pytest.raises(ValueError, match="needs a scorer"):
        SubgraphRetriever(kg, ranking="relevance")
    with pytest.raises(ValueError, match="relevance' only"):
        SubgraphRetriever(kg, ranking="degree", scorer=FavourScorer())
    with pytest.raises(ValueError, match="context=\\(question, choice\\)"):
        a.retrieve_nodes(grounding(kg, ["plate"], ["cupboard"]))

    class Unjsonable(FavourScorer):
        @property
        def config(self):
            return {"fn": object()}

    with pytest.raises(TypeError, match="JSON-able"):
        SubgraphRetriever(kg, ranking="relevance", scorer=Unjsonable())

    class Short(FavourScorer):
        def score(self, context, names):
            return np.zeros(len(names) - 1)

    with pytest.raises(ValueError, match="scores for"):
        SubgraphRetriever(kg, ranking="relevance", scorer=Short()).retrieve_nodes(
            grounding(kg, ["plate"], ["cupboard"]), context="x")


# ---------------------------------------------------------------------- preprocessing cache
import kgfuse.kg.preprocess as preprocess_mod  # noqa: E402
from kgfuse.kg.preprocess import CacheFormatError, PreprocessedDataset, preprocess_dataset  # noqa: E402


@dataclass
class Ex:
    id: str
    question: str
    choices: list


EXAMPLES = [
    Ex("a", "Where do you keep a clean plate?", ["cupboard", "shelf", "sink"]),
    Ex("b", "Where is the plate washed?", ["sink", "kitchen", "xyzzy"]),
    Ex("c", "Nothing matches here?", ["zzz", "qqq", "www"]),
]


@pytest.fixture(scope="module")
def kg():
    return star_graph()


@pytest.fixture(scope="module")
def linker(kg):
    pytest.importorskip("spacy")
    from kgfuse.kg.linking import EntityLinker

    return EntityLinker(kg)


def _rerecord_manifest(path):
    from kgfuse.integrity import list_files, write_manifest

    kind = json.loads((path / preprocess_mod.MANIFEST).read_text())["kind"]
    write_manifest(path, list_files(path, exclude=[preprocess_mod.MANIFEST]), preprocess_mod.MANIFEST, kind=kind)


def test_the_cache_stores_and_returns_node_scores(kg, linker, tmp_path):
    scorer = FavourScorer({"shelf", "kitchen"}, base=0.25)
    sr = SubgraphRetriever(kg, max_nodes=3, ranking="relevance", scorer=scorer)
    pre = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=2, chunk_size=1, progress=False)
    assert not pre.cache_hit and pre.has_node_score and pre.meta["has_node_score"] is True
    assert np.load(pre.path / "arrays" / "node_score.npy").dtype == np.float32
    # the statements were given to the scorer in one batch first, and scored in this process
    statements = [f"{ex.question} {c}" for ex in EXAMPLES for c in ex.choices]
    assert scorer.prepared == statements and scorer.flushed == 1
    assert set(scorer.contexts) <= set(statements) and scorer.contexts
    scored = 0
    for i, ex in enumerate(EXAMPLES):
        for j, c in enumerate(ex.choices):
            ref = sr.retrieve_arrays(linker.ground(ex.question, c), context=(ex.question, c))
            g, d = pre[i][j]
            assert d.concept_ids.tolist() == ref["concept_ids"].tolist()
            assert d.node_score.dtype.is_floating_point and d.node_score.tolist() == ref["node_score"].tolist()
            assert pre.arrays(i, j)["node_score"].dtype == np.float32
            assert sorted(d.keys()) == sorted(sr(linker.ground(ex.question, c), context=(ex.question, c)).keys())
            scored += int((d.node_score == 1.0).sum())
    assert scored > 0  # the favoured concepts were kept and scored
    # a second run reads the cache, node scores included
    again = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=1, progress=False)
    assert again.cache_hit and again.path == pre.path
    assert again[0][0][1].node_score.tolist() == pre[0][0][1].node_score.tolist()
    # another scorer config is another cache
    other = SubgraphRetriever(kg, max_nodes=3, ranking="relevance", scorer=FavourScorer({"shelf", "kitchen"}, 0.25, "v2"))
    third = preprocess_dataset(EXAMPLES, kg, linker, other, tmp_path, num_workers=1, progress=False)
    assert not third.cache_hit and third.path != pre.path
    # the graph_input views of the tasks layer keep the scores of the nodes they keep
    from kgfuse.tasks.graph_input import drop_edges, qa_nodes_only

    d = pre[0][0][1]
    assert drop_edges(d).node_score.tolist() == d.node_score.tolist()
    qa = qa_nodes_only(d)
    assert qa.node_score.tolist() == d.node_score[d.node_type < 2].tolist()
    # a view that re-retrieves from stored groundings cannot: the statement text is not stored
    with pytest.raises(ValueError, match="statement text"):
        pre.with_retriever(sr)


def test_caches_without_scores_read_as_before(kg, linker, tmp_path):
    sr = SubgraphRetriever(kg, max_nodes=3)
    pre = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=1, progress=False)
    assert pre.meta["has_node_score"] is False and not (pre.path / "arrays" / "node_score.npy").exists()
    assert getattr(pre[0][0][1], "node_score", None) is None
    # a cache written before the field existed (no "has_node_score" in meta.json) still reads
    meta = json.loads((pre.path / "meta.json").read_text())
    del meta["has_node_score"]
    (pre.path / "meta.json").write_text(json.dumps(meta))
    _rerecord_manifest(pre.path)
    old = PreprocessedDataset.load(pre.path, graph=kg)
    assert not old.has_node_score and old[0][0][1].concept_ids.tolist() == pre[0][0][1].concept_ids.tolist()


@pytest.mark.parametrize("make, msg", [
    (lambda a: np.where(np.arange(a.size) == 0, np.nan, a).astype(np.float32), "not finite"),
    (lambda a: a[:-1], "entries, concept_ids has"),
    (lambda a: a.astype(np.int32), "expected a float array"),
    (None, "file missing"),
])
def test_malformed_node_scores_are_refused(kg, linker, tmp_path, make, msg):
    sr = SubgraphRetriever(kg, max_nodes=3, ranking="relevance", scorer=FavourScorer({"shelf"}, base=0.5))
    pre = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=1, progress=False)
    f = pre.path / "arrays" / "node_score.npy"
    if make is None:
        f.unlink()
    else:
        np.save(f, make(np.load(f)), allow_pickle=False)
    with pytest.raises(CacheFormatError, match="node_score"):  # the manifest first
        PreprocessedDataset.load(pre.path, graph=kg)
    _rerecord_manifest(pre.path)
    with pytest.raises(CacheFormatError, match=f"node_score.npy: field 'node_score': .*{msg}"):
        PreprocessedDataset.load(pre.path, graph=kg)


def test_an_empty_dataset_with_relevance_ranking(kg, linker, tmp_path):
    sr = SubgraphRetriever(kg, ranking="relevance", scorer=FavourScorer())
    pre = preprocess_dataset([], kg, linker, sr, tmp_path, num_workers=1, progress=False)
    assert len(pre) == 0 and pre.has_node_score
    assert np.load(pre.path / "arrays" / "node_score.npy").shape == (0,)
