"""ERNIE fusion across encoder families (tiny random configs built in code); late-fusion fallback."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import AutoModelForMultipleChoice, DistilBertConfig, ElectraConfig, GPT2Config

from kgfuse.fusion import backbone
from kgfuse.fusion.modeling import KGFusedForMultipleChoice

from test_fusion_model import NUM_CONCEPTS, NUM_RELATIONS, make_batch


def configs():
    return {
        "electra": ElectraConfig(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=37, max_position_embeddings=64),
        "distilbert": DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                                       max_position_embeddings=64),
    }


def _model(text_config, **kw):
    torch.manual_seed(0)
    return KGFusedForMultipleChoice.from_text_config(text_config, num_concepts=NUM_CONCEPTS, num_relations=NUM_RELATIONS,
                                                     node_dim=12, graph_hidden_dim=16, **kw)


@pytest.mark.parametrize("name", ["electra", "distilbert"])
def test_layer_fusion_families_forward_backward_save_load(tmp_path, name):
    model = _model(configs()[name], num_fusion_layers=1, fusion_zero_init=False)
    assert model.num_fused == 1 and backbone.supports_layer_fusion(model.text_encoder)
    batch = make_batch()
    out = model(**batch)
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.fusion_layers[0].entity_to_intermediate.weight.grad.abs().sum() > 0
    layer0 = backbone.encoder_layers(model.text_encoder)[0]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in layer0.parameters())
    model.eval()
    with torch.no_grad():
        ref = model(**batch).logits
    model.save_pretrained(tmp_path)
    loaded = AutoModelForMultipleChoice.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, ref)


@pytest.mark.parametrize("name", ["electra", "distilbert"])
def test_zero_init_equals_plain_encoder(name):
    model = _model(configs()[name], num_fusion_layers=2, fusion_zero_init=True).eval()
    batch = make_batch()
    ids, mask = batch["input_ids"].view(6, -1), batch["attention_mask"].view(6, -1)
    with torch.no_grad():
        hidden, amask = backbone.embed(model.text_encoder, ids, mask)
        plain = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        for layer in backbone.encoder_layers(model.text_encoder):
            hidden = layer(hidden, amask)
    assert torch.allclose(hidden, plain, atol=1e-5)
    # layer-by-layer run through the fusion layers with no entities equals the plain encoder
    with torch.no_grad():
        h, amask = backbone.embed(model.text_encoder, ids, mask)
        ents = torch.randn(6, 2, 32)
        for layer, fl in zip(backbone.encoder_layers(model.text_encoder), model.fusion_layers):
            h, ents = fl(layer, h, amask, ents, torch.ones(6, 2, dtype=torch.bool), torch.full((6, ids.shape[1]), -1))
    assert torch.allclose(h, plain, atol=1e-5)


def test_other_architectures_fall_back_to_late_fusion(caplog):
    cfg = GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    with caplog.at_level(logging.WARNING, logger="kgfuse.fusion.modeling"):
        model = _model(cfg, num_fusion_layers=1)
    assert model.num_fused == 0 and not hasattr(model, "fusion_layers")
    assert "late fusion" in caplog.text
    out = model(**make_batch())
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
