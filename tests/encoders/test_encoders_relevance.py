"""Tests of QA-GNN's node relevance: the text-encoder scorer (kgfuse.encoders.relevance),
the score as a QA-GNN node feature (QAGNNEncoder(use_node_score=True)) and the collator
that carries the scores into the batch.

The scorer runs on a tiny BERT built in code with the shipped MiniLM's (real) tokenizer, and
once on the shipped all-MiniLM-L6-v2 itself."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from kgfuse.encoders.base import GraphInputs
from kgfuse.encoders.qagnn import QAGNNEncoder
from kgfuse.encoders.relevance import TextRelevanceScorer, concept_text
from kgfuse.encoders.text import load_tokenizer, weights_hash
from kgfuse.kg import GraphBuilder
from kgfuse.kg.linking import Grounding
from kgfuse.kg.retrieval import KGData, SubgraphRetriever

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
NAMES = ["ice_cream", "cupboard", "running_shoe", "plate", "kitchen_cupboard"]
STATEMENT = "Where do you keep a clean plate? cupboard"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()  # the shipped MiniLM's WordPiece tokenizer, offline


def tiny_bert(tokenizer, seed=0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    return BertModel(BertConfig(vocab_size=len(tokenizer), **TINY)).eval()


def direct_embedding(tokenizer, model, text, max_length=32):
    """One text alone (no padding): mean of the last hidden states, L2-normalised."""
    enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state[0].mean(0)
    return (h / h.norm()).numpy()


class ForwardCounter:
    """Counts the encoder's forward passes (a forward hook on the real model)."""

    def __init__(self, model):
        self.calls = 0
        model.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.calls += 1


# ---------------------------------------------------------------------- the scorer
def test_scores_are_cosines_of_mean_pooled_embeddings(tokenizer):
    model = tiny_bert(tokenizer)
    scorer = TextRelevanceScorer((tokenizer, model), max_length=32, batch_size=2)  # batches pad: masks matter
    got = scorer.score(STATEMENT, NAMES)
    s = direct_embedding(tokenizer, model, STATEMENT)
    want = np.array([direct_embedding(tokenizer, model, concept_text(n)) @ s for n in NAMES])
    assert got.dtype == np.float32 and got.shape == (len(NAMES),)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (np.abs(got) <= 1.0).all() and np.ptp(got) > 1e-3
    # names are read with spaces; an empty list gives no scores
    assert concept_text("ice_cream") == "ice cream"
    np.testing.assert_allclose(scorer.score(STATEMENT, ["ice cream"]), got[:1], atol=1e-6)
    assert scorer.score(STATEMENT, []).shape == (0,)


def test_embeddings_are_memoised_and_statements_batched(tokenizer):
    model = tiny_bert(tokenizer)
    count = ForwardCounter(model)
    scorer = TextRelevanceScorer((tokenizer, model), max_length=32, batch_size=2)
    first = scorer.score(STATEMENT, NAMES)
    assert count.calls == 1 + 3  # the statement, then 5 names in batches of 2
    np.testing.assert_array_equal(scorer.score(STATEMENT, list(reversed(NAMES))), first[::-1])
    assert count.calls == 4  # nothing embedded again
    scorer.score(STATEMENT, NAMES + ["dish"])
    assert count.calls == 5  # the one new name
    statements = [f"question {i} answer" for i in range(5)]
    scorer.prepare(statements + statements[:2])
    assert count.calls == 5 + 3  # 5 distinct statements in batches of 2
    scorer.score(statements[3], ["dish"])
    assert count.calls == 8
    # only what was asked is embedded; precompute embeds a given list
    assert scorer.precompute(["dish", "bowl"]) == len(NAMES) + 2 and count.calls == 9


def test_config_identifies_weights_and_settings(tokenizer, tmp_path):
    model = tiny_bert(tokenizer)
    a = TextRelevanceScorer((tokenizer, model), max_length=32)
    assert a.config == TextRelevanceScorer((tokenizer, tiny_bert(tokenizer)), max_length=32).config
    assert a.config["encoder"] != TextRelevanceScorer((tokenizer, tiny_bert(tokenizer, seed=1)), max_length=32).config["encoder"]
    assert a.config != TextRelevanceScorer((tokenizer, model), max_length=16).config
    assert a.config == TextRelevanceScorer((tokenizer, model), max_length=32, batch_size=3).config
    assert a.fingerprint != TextRelevanceScorer((tokenizer, model), max_length=16).fingerprint
    # a folder: weights hashed like the name-embedding cache, loaded offline on first use
    model.save_pretrained(tmp_path / "enc")
    tokenizer.save_pretrained(tmp_path / "enc")
    b = TextRelevanceScorer(str(tmp_path / "enc"), max_length=32)
    assert b.config["encoder"] == weights_hash(tmp_path / "enc") and not b.encoder_loaded
    np.testing.assert_allclose(b.score(STATEMENT, NAMES), a.score(STATEMENT, NAMES), atol=1e-6)
    assert b.encoder_loaded
    with pytest.raises(ValueError, match="max_length"):
        TextRelevanceScorer(max_length=1)


def test_name_embeddings_cache_on_disk(tokenizer, tmp_path, caplog):
    model = tiny_bert(tokenizer)
    model.save_pretrained(tmp_path / "enc")
    tokenizer.save_pretrained(tmp_path / "enc")
    cache = tmp_path / "cache"
    a = TextRelevanceScorer(str(tmp_path / "enc"), max_length=32, cache_dir=cache)
    want = a.name_embeddings(NAMES)
    path = a.flush()
    assert path is not None and path.is_file() and path.parent == cache and a.flush() is None  # nothing new
    # a new scorer with the same fingerprint reads the names back without loading the encoder
    b = TextRelevanceScorer(str(tmp_path / "enc"), max_length=32, cache_dir=cache)
    np.testing.assert_array_equal(b.name_embeddings(NAMES), want)
    assert not b.encoder_loaded
    # another setting is another file
    c = TextRelevanceScorer(str(tmp_path / "enc"), max_length=16, cache_dir=cache)
    assert c.cache_file != path
    # a damaged file is ignored (and said so); the embeddings are computed again
    path.write_bytes(path.read_bytes()[:50])
    d = TextRelevanceScorer(str(tmp_path / "enc"), max_length=32, cache_dir=cache)
    with caplog.at_level(logging.WARNING, logger="kgfuse.encoders.relevance"):
        np.testing.assert_allclose(d.name_embeddings(NAMES), want, atol=1e-6)
    assert d.encoder_loaded and "ignoring" in caplog.text


def test_shipped_minilm_ranks_the_relevant_bridging_concept_first():
    # dish and volcano both bridge plate and cupboard; volcano is the better connected one
    b = GraphBuilder()
    for h, r, t in [("plate", "RelatedTo", "dish"), ("dish", "AtLocation", "cupboard"),
                    ("plate", "RelatedTo", "volcano"), ("volcano", "RelatedTo", "cupboard"),
                    ("clean", "RelatedTo", "volcano")]:
        b.add(h, r, t)
    kg = b.build()
    g = Grounding([kg.concept_id("plate"), kg.concept_id("clean")], [kg.concept_id("cupboard")], [])
    ctx = ("Where do you keep a clean plate?", "cupboard")
    assert kg.concept_name(int(SubgraphRetriever(kg, max_nodes=4).retrieve_nodes(g)["concept_ids"][-1])) == "volcano"
    scorer = TextRelevanceScorer()  # all-MiniLM-L6-v2, offline
    sr = SubgraphRetriever(kg, max_nodes=4, ranking="relevance", scorer=scorer)
    out = sr.retrieve_nodes(g, context=ctx)
    names = [kg.concept_name(int(c)) for c in out["concept_ids"]]
    assert names == ["plate", "clean", "cupboard", "dish"]
    np.testing.assert_allclose(out["node_score"], scorer.score(" ".join(ctx), names), atol=1e-6)
    assert sr.config["scorer"]["encoder"] == weights_hash(None)


# ---------------------------------------------------------------------- the score in QA-GNN
def graph_inputs(with_score=True):
    ei = torch.tensor([[0, 1, 2, 3, 5], [1, 2, 0, 4, 3]])
    nt = torch.tensor([0, 1, 2, 0, 1, 2])
    score = torch.tensor([0.9, 0.1, -0.4, 0.3, 0.8, 0.0]) if with_score else None
    return GraphInputs(ei, torch.tensor([0, 1, 2, 0, 1]), nt, torch.tensor([0, 0, 0, 1, 1, 1]), 3, node_score=score)


def encoders(seed=0, **kw):
    torch.manual_seed(seed)
    off = QAGNNEncoder(6, 8, 3, context_dim=5, num_layers=2, **kw)
    torch.manual_seed(seed)
    on = QAGNNEncoder(6, 8, 3, context_dim=5, num_layers=2, use_node_score=True, **kw)
    return off.eval(), on.eval()


def test_without_the_flag_scores_change_nothing():
    off, on = encoders()
    assert not any("score" in k for k in off.state_dict())
    # the encoder with the flag has the same other weights (score parameters are made last)
    sd = on.state_dict()
    assert sorted(set(sd) - set(off.state_dict())) == ["score_emb.proj.bias", "score_emb.proj.weight"]
    assert all(torch.equal(v, sd[k]) for k, v in off.state_dict().items())
    x, ctx = torch.randn(6, 6), torch.randn(3, 5)
    h0, g0 = off(graph_inputs(False), x, ctx)
    h1, g1 = off(graph_inputs(True), x, ctx)
    assert torch.equal(h0, h1) and torch.equal(g0, g1)
    # a zero score embedding is exactly the encoder without scores
    with torch.no_grad():
        on.score_emb.proj.weight.zero_()
        on.score_emb.proj.bias.zero_()
    h2, g2 = on(graph_inputs(True), x, ctx)
    assert torch.equal(h0, h2) and torch.equal(g0, g2)


def test_scores_change_the_output_and_get_gradient():
    off, on = encoders()
    x, ctx = torch.randn(6, 6), torch.randn(3, 5)
    _, g_off = off(graph_inputs(), x, ctx)
    h_on, g_on = on(graph_inputs(), x, ctx)
    assert not torch.allclose(g_on, g_off, atol=1e-6)
    other = graph_inputs()
    other.node_score = other.node_score.flip(0)
    assert not torch.allclose(on(other, x, ctx)[1], g_on, atol=1e-6)  # which node has which score matters
    (h_on.square().sum() + g_on.square().sum()).backward()
    for p in on.score_emb.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    # the embedding itself: GELU(W sin(1.1^j s) + b)
    emb = on.score_emb
    s = torch.tensor([0.5])
    basis = torch.sin(s.unsqueeze(-1) * torch.pow(1.1, torch.arange(emb.num_basis, dtype=torch.float32)))
    assert torch.allclose(emb(s), torch.nn.functional.gelu(emb.proj(basis)))


def test_flag_without_scores_is_an_error_except_for_empty_graphs():
    _, on = encoders()
    with pytest.raises(ValueError, match=r"use_node_score=True\) needs node_score"):
        on(graph_inputs(False), torch.randn(6, 6), torch.randn(3, 5))
    bad = graph_inputs()
    bad.node_score = bad.node_score[:-1]
    with pytest.raises(ValueError, match="5 entries but the graph has 6 nodes"):
        on(bad, torch.randn(6, 6), torch.randn(3, 5))
    empty = GraphInputs(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                        torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 2)
    h, g = on(empty, torch.zeros(0, 6), torch.randn(2, 5))
    assert h.shape == (0, 8) and torch.isfinite(g).all()


def test_a_pyg_batch_of_scored_subgraphs_feeds_the_encoder():
    def sub(n, score):
        return KGData(concept_ids=torch.arange(n), node_type=torch.tensor([0, 1, 2][:n]), num_nodes=n,
                      edge_index=torch.tensor([[0], [1]]) if n > 1 else torch.zeros(2, 0, dtype=torch.long),
                      edge_type=torch.zeros(min(1, n - 1), dtype=torch.long), node_score=torch.tensor(score))

    batch = Batch.from_data_list([sub(3, [0.2, 0.7, -0.1]), sub(2, [0.5, 0.4])])
    assert batch.node_score.tolist() == pytest.approx([0.2, 0.7, -0.1, 0.5, 0.4])
    _, on = encoders()
    x, ctx = torch.randn(5, 6), torch.randn(2, 5)
    h, g = on(batch, x, ctx)
    flat = GraphInputs(batch.edge_index, batch.edge_type, batch.node_type, batch.batch, 2, node_score=batch.node_score)
    assert torch.equal(g, on(flat, x, ctx)[1]) and h.shape == (5, 8)


def test_the_collator_carries_node_scores(tokenizer):
    from kgfuse.tasks.features import MultipleChoiceCollator, build_features

    def sub(score):
        n = 0 if score is None else len(score)
        d = KGData(concept_ids=torch.arange(n), node_type=torch.zeros(n, dtype=torch.long), num_nodes=n,
                   edge_index=torch.zeros(2, 0, dtype=torch.long), edge_type=torch.zeros(0, dtype=torch.long))
        if score is not None:
            d.node_score = torch.tensor(score, dtype=torch.float32)
        return d

    q, choices = "Where do you keep a plate?", ["cupboard", "oven"]
    gr = [Grounding([], [], []), Grounding([], [], [])]
    f1 = build_features(q, choices, gr, [sub([0.5, 0.25]), sub([0.75])], tokenizer, label=0)
    f2 = build_features(q, choices, gr, [sub([]), sub([0.125, 1.0, -0.5])], tokenizer, label=1)
    batch = MultipleChoiceCollator(tokenizer)([f1, f2])
    assert batch["node_score"].dtype == torch.float32
    assert batch["node_score"].tolist() == [0.5, 0.25, 0.75, 0.125, 1.0, -0.5]
    assert batch["node_score"].shape == batch["node_concept_ids"].shape
    # without scores the batch has no such key; a subgraph with nodes but no scores in a scored batch is refused
    plain = MultipleChoiceCollator(tokenizer)([build_features(q, choices, gr, [sub(None), sub(None)], tokenizer)])
    assert "node_score" not in plain
    unscored = KGData(concept_ids=torch.arange(2), node_type=torch.zeros(2, dtype=torch.long), num_nodes=2,
                      edge_index=torch.zeros(2, 0, dtype=torch.long), edge_type=torch.zeros(0, dtype=torch.long))
    mixed = build_features(q, choices, gr, [sub([0.5]), unscored], tokenizer)
    with pytest.raises(ValueError, match="without node_score"):
        MultipleChoiceCollator(tokenizer)([mixed])
    # the scores reach QA-GNN through GraphInputs built from the batch
    _, on = encoders()
    gi = GraphInputs(batch["edge_index"], batch["edge_type"], batch["node_type"], batch["node_batch"], 4,
                     node_score=batch["node_score"])
    h, g = on(gi, torch.randn(6, 6), torch.randn(4, 5))
    assert h.shape == (6, 8) and g.shape == (4, 8)
