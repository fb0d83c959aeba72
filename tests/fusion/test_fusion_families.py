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


@pytest.mark.parametrize("name", ["electra", "distilbert", "albert"])
def test_layer_fusion_families_forward_backward_save_load(tmp_path, name):
    cfg = albert_config() if name == "albert" else configs()[name]
    model = _model(cfg, num_fusion_layers=1, fusion_zero_init=False)
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


# ---------------------------------------------------------------------- ALBERT (shared layers)
def albert_config(**kw):
    from transformers import AlbertConfig

    return AlbertConfig(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64, **kw)


def _encode_batch(batch):
    keys = ("input_ids", "attention_mask", "entity_index")
    flat = {k: batch[k].reshape(6, -1) for k in keys}
    flat.update({k: batch[k] for k in ("node_concept_ids", "node_type", "node_batch", "edge_index", "edge_type")})
    return flat


def test_albert_fused_positions_get_their_own_layer_copies(tmp_path):
    model = _model(albert_config(), num_fusion_layers=2, fusion_zero_init=False)
    shared = model.text_encoder.encoder.albert_layer_groups[0].albert_layers[0]
    assert backbone.family(model.text_encoder) == "albert" and backbone.shares_layers(model.text_encoder)
    assert model.num_fused == 2 and len(model.text_layer_copies) == 2
    own = {p.data_ptr() for p in shared.parameters()}
    copies = [p for c in model.text_layer_copies for p in c.parameters()]
    # distinct parameters, starting from the shared layer's values
    assert not own & {p.data_ptr() for p in copies}
    assert len({p.data_ptr() for p in copies}) == len(copies)
    for c in model.text_layer_copies:
        assert all(torch.equal(a, b) for a, b in zip(c.parameters(), shared.parameters()))
    assert model.fused_text_layers() == list(model.text_layer_copies)
    lm_names = {n for n, _ in model.parameter_groups()["lm"]}
    assert "text_layer_copies.0.ffn.weight" in lm_names
    batch = make_batch()
    # fine-tuning only the copies and the fusion parameters leaves the lower shared layer (and
    # so the plain text encoder) as it was, while the fused model changes
    ids, mask = batch["input_ids"].view(6, -1), batch["attention_mask"].view(6, -1)
    model.eval()
    with torch.no_grad():
        plain_before = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        fused_before = model.encode(**_encode_batch(batch)).last_hidden_state
    shared_before = [p.detach().clone() for p in shared.parameters()]
    tuned = list(model.text_layer_copies.parameters()) + list(model.fusion_layers.parameters())
    opt = torch.optim.SGD(tuned, lr=0.1)
    model(**batch).loss.backward()
    assert shared.ffn.weight.grad.abs().sum() > 0  # the lower position's use of it
    assert model.text_layer_copies[0].ffn.weight.grad.abs().sum() > 0
    assert not torch.equal(shared.ffn.weight.grad, model.text_layer_copies[0].ffn.weight.grad)
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(shared.parameters(), shared_before))
    assert not torch.equal(model.text_layer_copies[1].ffn.weight, shared.ffn.weight)
    with torch.no_grad():
        assert torch.equal(model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state, plain_before)
        assert not torch.allclose(model.encode(**_encode_batch(batch)).last_hidden_state, fused_before)
        ref = model(**batch).logits
    # save / load keeps the (now different) copies
    model.save_pretrained(tmp_path)
    loaded = AutoModelForMultipleChoice.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded.text_layer_copies[1].ffn.weight, model.text_layer_copies[1].ffn.weight)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, ref)


def test_albert_all_positions_fused_leaves_the_shared_layer_without_gradient():
    model = _model(albert_config(), num_fusion_layers=3, fusion_zero_init=False)
    shared = model.text_encoder.encoder.albert_layer_groups[0].albert_layers[0]
    before = [p.detach().clone() for p in shared.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(**make_batch()).loss.backward()
    assert all(p.grad is None for p in shared.parameters())
    assert model.text_encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(shared.parameters(), before))
    assert not torch.equal(model.text_layer_copies[0].ffn.weight, shared.ffn.weight)


def test_albert_zero_init_starts_as_the_pretrained_checkpoint(tmp_path):
    """from_text_pretrained copies the checkpoint's shared layer into the fused positions: with
    the zero-initialised fusion matrix the fused model reproduces AlbertModel exactly."""
    from transformers import AlbertModel

    torch.manual_seed(3)
    AlbertModel(albert_config()).save_pretrained(tmp_path / "albert")
    ckpt = AlbertModel.from_pretrained(tmp_path / "albert").eval()
    torch.manual_seed(0)
    model = KGFusedForMultipleChoice.from_text_pretrained(
        tmp_path / "albert", num_concepts=NUM_CONCEPTS, num_relations=NUM_RELATIONS, node_dim=12, graph_hidden_dim=16,
        num_fusion_layers=2).eval()
    shared = ckpt.encoder.albert_layer_groups[0].albert_layers[0]
    assert all(torch.equal(a, b) for a, b in zip(model.text_layer_copies[1].parameters(), shared.parameters()))
    batch = make_batch()
    with torch.no_grad():
        fused = model.encode(**_encode_batch(batch))
        plain = ckpt(input_ids=batch["input_ids"].view(6, -1), attention_mask=batch["attention_mask"].view(6, -1))
    assert fused.entity_mask.any()  # entities were there, and changed nothing at zero init
    assert torch.allclose(fused.last_hidden_state, plain.last_hidden_state, atol=1e-5)
    assert torch.allclose(fused.pooled_text, plain.pooler_output, atol=1e-5)


def test_albert_pretraining_transfers_the_copies_to_another_graph(tmp_path):
    from kgfuse.fusion.pretraining import KGFusedForPreTraining, load_for_finetuning

    torch.manual_seed(0)
    pre = KGFusedForPreTraining.from_text_config(albert_config(), num_concepts=NUM_CONCEPTS, num_relations=NUM_RELATIONS,
                                                 node_dim=12, graph_hidden_dim=16, num_fusion_layers=1, graph_hash="g1")
    with torch.no_grad():
        pre.text_layer_copies[0].ffn.weight.normal_()
    b = make_batch()
    flat = _encode_batch(b)
    labels = torch.full_like(flat["input_ids"], -100)
    labels[:, 2] = flat["input_ids"][:, 2]
    out = pre(**flat, mlm_labels=labels)
    assert out.mlm_logits.shape == (6, 99) and torch.isfinite(out.loss)
    pre.save_pretrained(tmp_path)

    class G:
        num_concepts, num_relations, hash = 50, 7, "g2"

    ft = load_for_finetuning(tmp_path, G())
    assert torch.equal(ft.text_layer_copies[0].ffn.weight, pre.text_layer_copies[0].ffn.weight)
    assert ft.node_embeddings.weight.shape[0] == 50


def test_albert_groups_of_several_layers_fall_back_to_late_fusion(caplog):
    with caplog.at_level(logging.WARNING, logger="kgfuse.fusion.modeling"):
        model = _model(albert_config(inner_group_num=2), num_fusion_layers=1)
    assert model.num_fused == 0 and "late fusion" in caplog.text
    out = model(**make_batch())
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)


# ---------------------------------------------------------------------- TinyBERT shape
def test_tinybert_shaped_bert():
    """TinyBERT's general-distillation shape: 4 layers, 312 wide, 12 heads, FFN 1200."""
    from transformers import BertConfig

    cfg = BertConfig(vocab_size=99, hidden_size=312, num_hidden_layers=4, num_attention_heads=12,
                     intermediate_size=1200, max_position_embeddings=64)
    model = _model(cfg, num_fusion_layers=2, fusion_zero_init=True)
    assert model.num_fused == 2 and model.fusion_layers[0].entity_to_intermediate.weight.shape == (1200, 312)
    batch = make_batch()
    out = model(**batch)
    out.loss.backward()
    assert model.fusion_layers[0].entity_to_intermediate.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        fused = model.encode(**_encode_batch(batch)).last_hidden_state
        plain = model.text_encoder(input_ids=batch["input_ids"].view(6, -1),
                                   attention_mask=batch["attention_mask"].view(6, -1)).last_hidden_state
    assert fused.shape == (6, batch["input_ids"].shape[-1], 312) and torch.allclose(fused, plain, atol=1e-5)


# ---------------------------------------------------------------------- late fusion: XLNet, T5 encoder
def late_configs():
    from transformers import T5Config, XLNetConfig

    return {
        "xlnet": XLNetConfig(vocab_size=99, d_model=32, n_layer=2, n_head=4, d_inner=37),
        "t5": T5Config(vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4),
    }


@pytest.mark.parametrize("name", ["xlnet", "t5"])
def test_late_fusion_families_forward_backward_save_load(tmp_path, name, caplog):
    with caplog.at_level(logging.WARNING, logger="kgfuse.fusion.modeling"):
        model = _model(late_configs()[name], num_fusion_layers=1)
    assert model.num_fused == 0 and "late fusion" in caplog.text
    assert type(model.text_encoder).__name__ == {"xlnet": "XLNetModel", "t5": "T5EncoderModel"}[name]
    batch = make_batch()
    out = model(**batch)
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    groups = model.parameter_groups()
    for part in ("lm", "gnn", "fusion"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in groups[part]), part
    model.eval()
    with torch.no_grad():
        ref = model(**batch).logits
        # the text vector is the mean over real tokens: padding does not change it
        enc = model.encode(**_encode_batch(batch))
        m = batch["attention_mask"].view(6, -1, 1).float()
        assert torch.allclose(enc.pooled_text, (enc.last_hidden_state * m).sum(1) / m.sum(1), atol=1e-6)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForMultipleChoice.from_pretrained(tmp_path).eval()
    assert type(loaded.text_encoder) is type(model.text_encoder)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, ref)


def test_t5_checkpoint_loads_as_its_encoder(tmp_path):
    from transformers import T5Model

    torch.manual_seed(0)
    t5 = T5Model(late_configs()["t5"])
    t5.save_pretrained(tmp_path / "t5")
    model = KGFusedForMultipleChoice.from_text_pretrained(tmp_path / "t5", num_concepts=NUM_CONCEPTS,
                                                          num_relations=NUM_RELATIONS, node_dim=12, graph_hidden_dim=16,
                                                          num_fusion_layers=0)
    assert type(model.text_encoder).__name__ == "T5EncoderModel"
    assert torch.equal(model.text_encoder.encoder.block[1].layer[1].DenseReluDense.wi.weight,
                       t5.encoder.block[1].layer[1].DenseReluDense.wi.weight)
    assert not any(n.startswith("text_encoder.decoder") for n, _ in model.named_parameters())
