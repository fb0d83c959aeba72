"""The ERNIE knowledgeable layer against the pretrained layer it wraps."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, BertConfig, RobertaConfig

from kgfuse.fusion import backbone
from kgfuse.fusion.layers import KnowledgeableLayer


def _setup(family: str, zero_init: bool):
    torch.manual_seed(0)
    common = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg = BertConfig(**common) if family == "bert" else RobertaConfig(pad_token_id=1, **common)
    lm = AutoModel.from_config(cfg).eval()
    fl = KnowledgeableLayer(32, 37, 4, dropout=0.0, zero_init=zero_init).eval()
    if not zero_init:
        torch.nn.init.normal_(fl.entity_to_intermediate.weight, std=0.5)
    ids = torch.randint(5, 99, (3, 6))
    mask = torch.ones_like(ids)
    mask[2, 4:] = 0
    hidden, amask = backbone.embed(lm, ids, mask)
    ents = torch.randn(3, 2, 32)
    ent_mask = torch.tensor([[True, True], [True, False], [False, False]])
    token_entity = torch.full((3, 6), -1)
    token_entity[0, 1], token_entity[0, 4], token_entity[1, 2] = 0, 1, 0
    return lm, fl, hidden, amask, ents, ent_mask, token_entity


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_tokens_without_entity_take_exactly_the_token_only_path(family):
    lm, fl, hidden, amask, ents, ent_mask, token_entity = _setup(family, zero_init=False)
    layer = backbone.encoder_layers(lm)[1]
    with torch.no_grad():
        plain = layer(hidden, amask)
        fused, e_out = fl(layer, hidden, amask, ents, ent_mask, token_entity)
    none = token_entity < 0
    assert torch.equal(fused[none], plain[none])  # bit-identical, not just close
    assert not torch.allclose(fused[~none], plain[~none], atol=1e-3)  # aligned tokens do change
    assert e_out.shape == ents.shape and torch.isfinite(e_out).all()
    assert (e_out[~ent_mask] == 0).all()


def test_zero_init_gives_the_pretrained_layer_everywhere():
    lm, fl, hidden, amask, ents, ent_mask, token_entity = _setup("bert", zero_init=True)
    layer = backbone.encoder_layers(lm)[0]
    with torch.no_grad():
        assert torch.equal(fl(layer, hidden, amask, ents, ent_mask, token_entity)[0], layer(hidden, amask))


def test_entity_output_comes_from_its_aligned_tokens():
    lm, fl, hidden, amask, ents, ent_mask, token_entity = _setup("bert", zero_init=False)
    layer = backbone.encoder_layers(lm)[0]
    with torch.no_grad():
        _, e1 = fl(layer, hidden, amask, ents, ent_mask, token_entity)
        h2 = hidden.clone()
        h2[0, 4] += 1.0  # changes the token aligned to entity (0, 1) -- and through attention the rest
        _, e2 = fl(layer, h2, amask, ents, ent_mask, token_entity)
    assert not torch.allclose(e1[0, 1], e2[0, 1])


def test_no_entities_in_batch():
    lm, fl, hidden, amask, *_ = _setup("bert", zero_init=False)
    layer = backbone.encoder_layers(lm)[0]
    with torch.no_grad():
        out, e = fl(layer, hidden, amask, torch.zeros(3, 0, 32), torch.zeros(3, 0, dtype=torch.bool),
                    torch.full((3, 6), -1))
        assert torch.equal(out, layer(hidden, amask)) and e.shape == (3, 0, 32)


def _reference(fl, layer, hidden, amask, ents, ent_mask, token_entity):
    """The K-Encoder equations of the module docstring, token by token and entity by entity."""
    dense, act, output_block = backbone.feed_forward_parts(layer)
    w = backbone.token_attention(layer, hidden, amask)
    pad = ~ent_mask & ent_mask.any(dim=1, keepdim=True)
    att, _ = fl.entity_attention(ents, ents, ents, key_padding_mask=pad, need_weights=False)
    e_t = fl.entity_attention_norm(ents + att)
    S, L = token_entity.shape
    K = ents.shape[1]
    rows = []
    for s in range(S):
        row = []
        for j in range(L):
            z = dense(w[s, j])
            k = int(token_entity[s, j])
            if k >= 0:
                z = z + fl.entity_to_intermediate(e_t[s, k])
            row.append(act(z))
        rows.append(torch.stack(row))
    h = torch.stack(rows)
    tokens = output_block(h, w)
    e_out = []
    for s in range(S):
        es = []
        for k in range(K):
            js = [j for j in range(L) if int(token_entity[s, j]) == k]
            e = e_t[s, k]
            if js:
                e = fl.entity_output_norm(e_t[s, k] + act(fl.intermediate_to_entity(h[s, js].mean(0))))
            es.append(e * float(ent_mask[s, k]))
        e_out.append(torch.stack(es))
    return tokens, torch.stack(e_out)


def test_matches_the_equations_values_and_gradients():
    """The vectorised layer (entity projection added at aligned rows, entity output projected
    before the mean over mentions) computes the docstring's equations, gradients included."""
    lm, fl, hidden, amask, ents, ent_mask, token_entity = _setup("bert", zero_init=False)
    token_entity[0, 5] = 1  # entity (0, 1) mentioned twice: its output is the mean over both tokens
    ent_mask = torch.tensor([[True, True], [True, True], [False, False]])  # (1, 1): no token aligned
    layer = backbone.encoder_layers(lm)[1]
    hidden = hidden.detach().requires_grad_(True)
    ents = ents.detach().requires_grad_(True)
    params = [hidden, ents] + list(fl.parameters()) + list(layer.parameters())
    got_t, got_e = fl(layer, hidden, amask, ents, ent_mask, token_entity)
    ref_t, ref_e = _reference(fl, layer, hidden, amask, ents, ent_mask, token_entity)
    torch.testing.assert_close(got_t, ref_t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_e, ref_e, rtol=1e-5, atol=1e-5)
    probe_t, probe_e = torch.randn_like(got_t), torch.randn_like(got_e)
    g_got = torch.autograd.grad((got_t * probe_t).sum() + (got_e * probe_e).sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad((ref_t * probe_t).sum() + (ref_e * probe_e).sum(), params, allow_unused=True)
    for a, b in zip(g_got, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    w_idx = next(i for i, t in enumerate(params) if t is fl.entity_to_intermediate.weight)
    assert g_got[1].abs().sum() > 0 and g_got[w_idx].abs().sum() > 0  # entities and W~_e do get gradient
