"""Mention-to-token alignment and collation with real fast tokenizers."""

from __future__ import annotations

import pytest
import torch

from kgfuse.kg.linking import Grounding, Mention
from kgfuse.kg.retrieval import KGData
from kgfuse.tasks.features import AlignmentStats, MultipleChoiceCollator, build_features

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "where", "put", "a", "pl", "##ate", "?", "the",
         "kitchen", "sink", "dirty", "cup", "##board", "you"]


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    from transformers import BertTokenizer

    try:
        tok = BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)})  # transformers 5: fast by default
    except TypeError:  # transformers 4
        from transformers import BertTokenizerFast

        p = tmp_path_factory.mktemp("vocab") / "vocab.txt"
        p.write_text("\n".join(WORDS))
        tok = BertTokenizerFast(vocab_file=str(p))
    assert tok.is_fast and tok.convert_ids_to_tokens(tok("plate")["input_ids"]) == ["[CLS]", "pl", "##ate", "[SEP]"]
    return tok


def kg(concepts, edges=(), paths=None):
    n = len(concepts)
    ei = torch.tensor(list(edges), dtype=torch.long).t().reshape(2, -1)
    kw = {}
    if paths is not None:
        kw = dict(paths=torch.tensor(paths[0], dtype=torch.long).reshape(-1, 3),
                  path_rels=torch.tensor(paths[1], dtype=torch.long).reshape(-1, 2),
                  path_len=torch.tensor(paths[2], dtype=torch.long))
    return KGData(concept_ids=torch.tensor(concepts, dtype=torch.long),
                  node_type=torch.tensor(([0, 1] + [2] * n)[:n], dtype=torch.long),
                  edge_index=ei, edge_type=torch.zeros(ei.shape[1], dtype=torch.long), num_nodes=n, **kw)


Q = "Where put a dirty plate?"


def example():
    # concept ids: dirty=14, plate=8, cupboard=15, sink=13
    g_cup = Grounding([8], [15], [Mention(18, 23, "plate", 8, "question"), Mention(12, 17, "dirty", 14, "question"),
                                  Mention(4, 12, "cupboard", 15, "choice")])
    g_sink = Grounding([8], [13], [Mention(18, 23, "plate", 8, "question"), Mention(10, 14, "sink", 13, "choice")])
    sub_cup = kg([8, 15, 14], edges=[(0, 1)], paths=([[0, 1, 1]], [[0, 0]], [1]))
    sub_sink = kg([8, 13], edges=[(0, 1), (1, 0)], paths=([[0, 1, 1], [1, 0, 0]], [[2, 0], [3, 0]], [1, 1]))
    return ["the cupboard", "kitchen sink"], [g_cup, g_sink], [sub_cup, sub_sink]


def test_mentions_align_to_first_subtoken(tiny_tokenizer):
    choices, groundings, subs = example()
    stats = AlignmentStats()
    f = build_features(Q, choices, groundings, subs, tiny_tokenizer, label=0, stats=stats)
    toks = tiny_tokenizer.convert_ids_to_tokens(f["input_ids"][0])
    assert toks == ["[CLS]", "where", "put", "a", "dirty", "pl", "##ate", "?", "[SEP]", "the", "cup", "##board", "[SEP]"]
    ent = f["entity_local"][0]
    assert ent[toks.index("pl")] == 0 and ent[toks.index("##ate")] == -1
    assert ent[toks.index("dirty")] == 2  # local node of concept 14 in this subgraph
    assert ent[toks.index("cup")] == 1 and ent[toks.index("##board")] == -1
    assert sum(e >= 0 for e in ent) == 3
    toks1 = tiny_tokenizer.convert_ids_to_tokens(f["input_ids"][1])
    ent1 = f["entity_local"][1]
    assert ent1[toks1.index("sink")] == 1 and ent1[toks1.index("pl")] == 0
    assert f["token_type_ids"][0][toks.index("cup")] == 1 and f["label"] == 0
    assert stats.aligned == 5 and stats.not_in_subgraph == 0


def test_truncation_and_missing_concepts_are_counted(tiny_tokenizer):
    choices, groundings, subs = example()
    stats = AlignmentStats()
    subs[1] = kg([8])  # 'sink' not in the subgraph
    f = build_features(Q, choices, groundings, subs, tiny_tokenizer, max_length=6, stats=stats)
    assert all(len(ids) == 6 for ids in f["input_ids"])
    # 6 tokens keep none of the mentions: each one with a node is counted as truncated, sink as missing
    assert (stats.aligned, stats.truncated, stats.not_in_subgraph) == (0, 4, 1)
    assert all(e == -1 for row in f["entity_local"] for e in row)
    with pytest.raises(ValueError, match="one of each per choice"):
        build_features(Q, choices, groundings[:1], subs, tiny_tokenizer)


def test_shipped_minilm_tokenizer_alignment():
    from kgfuse.encoders.text import load_tokenizer

    tok = load_tokenizer()
    choices, groundings, subs = example()
    f = build_features(Q, choices, groundings, subs, tok)
    toks = tok.convert_ids_to_tokens(f["input_ids"][0])
    ent = f["entity_local"][0]
    assert ent[toks.index("plate")] == 0 and ent[toks.index("dirty")] == 2
    assert ent[toks.index("cupboard")] == 1
    toks1 = tok.convert_ids_to_tokens(f["input_ids"][1])
    assert f["entity_local"][1][toks1.index("sink")] == 1


def test_collator_offsets_and_determinism(tiny_tokenizer):
    choices, groundings, subs = example()
    f0 = build_features(Q, choices, groundings, subs, tiny_tokenizer, label=1)
    empty = [kg([], paths=([], [], [])), kg([], paths=([], [], []))]
    f1 = build_features(Q, choices, [Grounding([], [], []), Grounding([], [], [])], empty, tiny_tokenizer, label=0)
    col = MultipleChoiceCollator(tiny_tokenizer)
    b = col([f0, f1, f0])
    assert b["input_ids"].shape == (3, 2, 13) and b["labels"].tolist() == [1, 0, 1]
    assert b["node_batch"].tolist() == [0, 0, 0, 1, 1, 4, 4, 4, 5, 5]
    assert b["node_concept_ids"].tolist() == [8, 15, 14, 8, 13] * 2
    assert b["edge_index"].tolist() == [[0, 3, 4, 5, 8, 9], [1, 4, 3, 6, 9, 8]]
    assert b["paths"].tolist() == [[0, 1, 1], [3, 4, 4], [4, 3, 3], [5, 6, 6], [8, 9, 9], [9, 8, 8]]
    assert b["path_rels"][:, 0].tolist() == [0, 2, 3, 0, 2, 3] and b["path_len"].tolist() == [1] * 6
    # entity_index points to global nodes whose concept is the mention's concept
    ids = b["input_ids"][2, 0].tolist()
    pl = tiny_tokenizer.convert_tokens_to_ids("pl")
    assert b["entity_index"][2, 0, ids.index(pl)] == 5 and b["node_concept_ids"][5] == 8
    assert (b["entity_index"][1] == -1).all()
    valid = b["entity_index"] >= 0
    stmt = torch.arange(6).view(3, 2, 1).expand_as(b["entity_index"])
    assert torch.equal(b["node_batch"][b["entity_index"][valid]], stmt[valid])
    b2 = col([f0, f1, f0])
    assert all(torch.equal(b[k], b2[k]) for k in b)
    # raw features are tokenised by the collator
    raw = {"question": Q, "choices": choices, "groundings": groundings, "subgraphs": subs, "label": 1}
    b3 = MultipleChoiceCollator(tiny_tokenizer)([raw])
    assert torch.equal(b3["input_ids"][0], b["input_ids"][0]) and torch.equal(b3["entity_index"][0], b["entity_index"][0])


def test_collator_feeds_the_model(tiny_tokenizer):
    from transformers import BertConfig

    from kgfuse.fusion.modeling import KGFusedForMultipleChoice

    choices, groundings, subs = example()
    f = build_features(Q, choices, groundings, subs, tiny_tokenizer, label=1)
    batch = MultipleChoiceCollator(tiny_tokenizer)([f, f])
    cfg = BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=64)
    model = KGFusedForMultipleChoice.from_text_config(cfg, graph_encoder="kagnet", num_concepts=20, num_relations=2,
                                                      node_dim=8, graph_hidden_dim=16, num_fusion_layers=1)
    model.eval()
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (2, 2) and torch.allclose(out.logits[0], out.logits[1], atol=1e-6)  # the same question twice
    assert out.loss.item() == pytest.approx(torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 1])).item(), rel=1e-6)
    # the graph reaches the scores: the same batch without its concepts scores differently
    blind = dict(batch, entity_index=torch.full_like(batch["entity_index"], -1))
    with torch.no_grad():
        assert not torch.allclose(model(**blind).logits, out.logits, atol=1e-6)
