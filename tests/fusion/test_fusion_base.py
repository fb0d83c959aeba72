"""KGFusedModel, the base of every kgfuse model: its output, the heads built on it (same
parameter names, the same initial weights for one seed), AutoModel, and folders moving
between the base and the heads, on the same graph and on another one."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoModelForMultipleChoice, AutoModelForPreTraining, BertConfig

from kgfuse.fusion.base import FusedEncoderOutput, KGFusedModel
from kgfuse.fusion.modeling import KGFusedForMultipleChoice
from kgfuse.fusion.pretraining import KGFusedForPreTraining

BASE_MODULES = ["text_encoder", "node_embeddings", "graph_encoder", "entity_proj", "fusion_layers"]


def tiny_text_config():
    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                      max_position_embeddings=64)


def build(cls, seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("num_fusion_layers", 1)
    return cls.from_text_config(tiny_text_config(), num_concepts=30, num_relations=4, node_dim=12, graph_hidden_dim=16,
                                graph_hash="g1", **kw)


def mc_batch():
    """1 question, 2 choices of 8 tokens; statement 0 mentions nodes 0, 1, statement 1 node 2."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 99, (1, 2, 8), generator=g)
    ent = torch.full_like(ids, -1)
    ent[0, 0, 1], ent[0, 0, 3], ent[0, 1, 2] = 0, 1, 2
    return dict(input_ids=ids, attention_mask=torch.ones_like(ids), entity_index=ent,
                node_concept_ids=torch.tensor([3, 4, 5]), node_type=torch.zeros(3, dtype=torch.long),
                node_batch=torch.tensor([0, 0, 1]), edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([2]))


def top_modules(model):
    return list(dict.fromkeys(k.split(".", 1)[0] for k in model.state_dict()))


def test_state_dict_names_are_the_base_plus_each_head():
    base, mc, pre = build(KGFusedModel), build(KGFusedForMultipleChoice), build(KGFusedForPreTraining)
    assert top_modules(base) == BASE_MODULES
    assert top_modules(mc) == BASE_MODULES + ["classifier"]
    assert top_modules(pre) == BASE_MODULES + ["mlm_head", "dea_head"]
    b = list(base.state_dict())
    assert [k for k in mc.state_dict() if not k.startswith("classifier.")] == b
    assert [k for k in pre.state_dict() if not k.startswith(("mlm_head.", "dea_head."))] == b


@pytest.mark.parametrize("kw", [{}, {"num_fusion_layers": 0}, {"use_graph": False}, {"use_gnn": False}])
def test_one_seed_gives_every_head_the_same_base_weights(kw):
    base, mc, pre = (build(c, seed=4, **kw) for c in (KGFusedModel, KGFusedForMultipleChoice, KGFusedForPreTraining))
    sd = base.state_dict()
    for head in (mc, pre):
        other = head.state_dict()
        assert all(torch.equal(v, other[k]) for k, v in sd.items())
    # and the random stream after building is the same too (the next draws agree)
    draws = []
    for c in (KGFusedModel, KGFusedForMultipleChoice):
        build(c, seed=4, **kw)
        draws.append(torch.rand(4))
    assert torch.equal(*draws)


def test_base_output_and_the_multiple_choice_head_reads_its_summary():
    mc = build(KGFusedForMultipleChoice, fusion_zero_init=False).eval()
    base = KGFusedModel(mc.config).eval()
    base.load_state_dict({k: v for k, v in mc.state_dict().items() if not k.startswith("classifier.")})
    b = mc_batch()
    with torch.no_grad():
        out = base(**b)
        assert isinstance(out, FusedEncoderOutput)
        assert out.last_hidden_state.shape == (2, 8, 32) and out.pooler_output.shape == (2, base.summary_dim)
        assert base.summary_dim == 32 + 16 + 32 == mc.classifier.in_features
        logits = mc(**b).logits
        assert torch.allclose(logits.view(-1), mc.classifier(out.pooler_output).view(-1), atol=1e-6)
        assert out.to_tuple()[-1] is out.pooler_output  # pooler_output is part of the tuple form
    with pytest.raises(ValueError, match="needs node_concept_ids"):
        base(input_ids=b["input_ids"])


def test_folders_load_across_base_and_heads_and_auto_classes(tmp_path):
    mc = build(KGFusedForMultipleChoice)
    with torch.no_grad():
        mc.fusion_layers[0].entity_to_intermediate.weight.normal_()
    mc.save_pretrained(tmp_path / "mc")
    base, info = KGFusedModel.from_pretrained(tmp_path / "mc", output_loading_info=True)
    assert info["unexpected_keys"] == set() and info["missing_keys"] == set()
    auto = AutoModel.from_pretrained(tmp_path / "mc")
    assert type(auto) is KGFusedModel
    sd = mc.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in auto.state_dict().items())
    base.save_pretrained(tmp_path / "base")
    back, info = AutoModelForMultipleChoice.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert type(back) is KGFusedForMultipleChoice and info["missing_keys"] == {"classifier.weight", "classifier.bias"}
    pre = AutoModelForPreTraining.from_pretrained(tmp_path / "base")
    assert type(pre) is KGFusedForPreTraining
    assert torch.equal(pre.fusion_layers[0].entity_to_intermediate.weight, mc.fusion_layers[0].entity_to_intermediate.weight)


def test_from_pretrained_on_graph_keeps_graph_independent_weights(tmp_path):
    from kgfuse.kg import GraphBuilder

    b = GraphBuilder()
    for h, r, t in [("dog", "IsA", "animal"), ("cat", "IsA", "animal"), ("cat", "Desires", "milk")]:
        b.add(h, r, t)
    other = b.build()
    pre = build(KGFusedForPreTraining)
    with torch.no_grad():
        pre.mlm_head.bias.normal_()
        pre.fusion_layers[0].entity_to_intermediate.weight.normal_()
    pre.save_pretrained(tmp_path)
    same = KGFusedForPreTraining.from_pretrained_on_graph(tmp_path, None)
    assert torch.equal(same.node_embeddings.weight, pre.node_embeddings.weight)
    moved = KGFusedForPreTraining.from_pretrained_on_graph(tmp_path, other)
    assert moved.node_embeddings.weight.shape[0] == other.num_concepts and moved.config.graph_hash == other.hash
    for name in ("mlm_head.bias", "fusion_layers.0.entity_to_intermediate.weight", "entity_proj.weight",
                 "text_encoder.embeddings.word_embeddings.weight"):
        assert torch.equal(moved.state_dict()[name], pre.state_dict()[name]), name
    mc = KGFusedForMultipleChoice.from_pretrained_on_graph(tmp_path, other)
    assert torch.equal(mc.fusion_layers[0].entity_to_intermediate.weight, pre.fusion_layers[0].entity_to_intermediate.weight)
    assert mc.config.num_concepts == other.num_concepts
