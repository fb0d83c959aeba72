"""KGFusedForPreTraining: shared parameter names with the multiple-choice model, the MLM and dEA
heads, checkpoint round trips both ways, MLM heads of BERT checkpoints, cross-graph fine-tuning."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from kgfuse.fusion.modeling import KGFusedForMultipleChoice
from kgfuse.fusion.pretraining import KGFusedForPreTraining, load_for_finetuning, transfer_pretrained_weights

NUM_CONCEPTS, NUM_RELATIONS = 30, 4


def tiny_text_config():
    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                      max_position_embeddings=64)


def build(cls=KGFusedForPreTraining, seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("num_fusion_layers", 1)
    kw.setdefault("num_concepts", NUM_CONCEPTS)
    kw.setdefault("num_relations", NUM_RELATIONS)
    return cls.from_text_config(tiny_text_config(), node_dim=12, graph_hidden_dim=16, graph_hash="g1", **kw)


def batch(seed=0):
    """2 sequences of 8 tokens; sequence 0 mentions concepts 3 (tok 1) and 4 (tok 3), sequence 1
    concept 5 (tok 2); one edge 3 -> 4."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (2, 8), generator=g)
    ent = torch.full_like(ids, -1)
    ent[0, 1], ent[0, 3], ent[1, 2] = 0, 1, 2
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5] = ids[0, 2], ids[1, 5]
    return dict(
        input_ids=ids, attention_mask=torch.ones_like(ids), entity_index=ent,
        node_concept_ids=torch.tensor([3, 4, 5]), node_type=torch.zeros(3, dtype=torch.long),
        node_batch=torch.tensor([0, 0, 1]), edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([2]),
        mlm_labels=labels, dea_token=torch.tensor([1, 3, 8 + 2]), dea_candidates=torch.tensor([3, 4, 5]),
        dea_candidate_batch=torch.tensor([0, 0, 1]), dea_target=torch.tensor([0, 1, 2]),
    )


def test_same_parameter_names_as_multiple_choice_plus_heads():
    pre, mc = build(), build(KGFusedForMultipleChoice)
    p = {n: t.shape for n, t in pre.named_parameters()}
    m = {n: t.shape for n, t in mc.named_parameters()}
    assert {n for n in m if not n.startswith("classifier.")} == {n for n in p if not n.startswith(("mlm_head.", "dea_head."))}
    assert all(p[n] == m[n] for n in m if n in p)
    assert any(n.startswith("fusion_layers.") for n in p) and any(n.startswith("dea_head.") for n in p)
    assert pre.mlm_head.bias.shape == (99,) and torch.all(pre.mlm_head.bias == 0)


def test_losses_shapes_and_gradients():
    model = build()
    b = batch()
    out = model(**b)
    assert out.mlm_logits.shape == (2, 99) and out.dea_scores.shape == (3, 3)
    # a token only scores the candidates of its own sequence
    assert torch.isinf(out.dea_scores[0, 2]) and torch.isinf(out.dea_scores[2, :2]).all()
    assert torch.isfinite(out.dea_scores[:2, :2]).all()
    assert torch.allclose(out.loss, out.mlm_loss + out.dea_loss)
    manual = torch.nn.functional.cross_entropy(out.dea_scores, b["dea_target"])
    assert torch.allclose(out.dea_loss, manual)
    out2 = model(**b, mlm_weight=0.5, dea_weight=2.0)
    assert torch.allclose(out2.loss, 0.5 * out2.mlm_loss + 2.0 * out2.dea_loss)
    out.loss.backward()
    for name in ("mlm_head.transform.dense.weight", "dea_head.transform.dense.weight", "node_embeddings.weight",
                 "text_encoder.embeddings.word_embeddings.weight", "fusion_layers.0.entity_to_intermediate.weight"):
        assert model.get_parameter(name).grad is not None and model.get_parameter(name).grad.abs().sum() > 0, name
    # (entity_proj and the GNN get gradient once the zero-initialised fusion matrix moves; see the toy task)
    # the last fusion layer's entity output feeds nothing in pre-training (DDP needs find_unused_parameters)
    assert model.get_parameter("fusion_layers.0.intermediate_to_entity.weight").grad is None
    # a single-candidate sequence is always right: its dEA score row has one finite entry
    assert out.dea_scores[2].argmax() == 2


def test_dea_learns_on_a_toy_task():
    """The dEA head and fusion layers can learn to recover the aligned entity (loss falls, accuracy 1)."""
    model = build(seed=1)
    model.train()
    b = batch(seed=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        out = model(**b, mlm_weight=0.0)
        first = first if first is not None else float(out.dea_loss.detach())
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    out = model(**b, mlm_weight=0.0)
    assert float(out.dea_loss.detach()) < first / 5
    assert torch.equal(out.dea_scores.argmax(-1), b["dea_target"])
    assert model.entity_proj.weight.grad.abs().sum() > 0 and model.graph_encoder is not None


def test_checkpoints_load_both_ways(tmp_path):
    pre = build()
    with torch.no_grad():
        pre.fusion_layers[0].entity_to_intermediate.weight.normal_()  # not the zero init
        pre.mlm_head.bias.normal_()
    pre.save_pretrained(tmp_path / "pre")
    mc = KGFusedForMultipleChoice.from_pretrained(tmp_path / "pre")
    sd = pre.state_dict()
    for k, v in mc.state_dict().items():
        if not k.startswith("classifier."):
            assert torch.equal(v, sd[k]), k
    mc.save_pretrained(tmp_path / "mc")
    back = KGFusedForPreTraining.from_pretrained(tmp_path / "mc")
    assert torch.equal(back.fusion_layers[0].entity_to_intermediate.weight, pre.fusion_layers[0].entity_to_intermediate.weight)
    assert torch.all(back.mlm_head.bias == 0)  # fresh head: the MC checkpoint has none
    again = KGFusedForPreTraining.from_pretrained(tmp_path / "pre")
    assert torch.equal(again.mlm_head.bias, pre.mlm_head.bias)
    out = again(**batch())
    assert torch.isfinite(out.loss)


def test_loading_a_pretraining_checkpoint_reports_no_unexpected_keys(tmp_path):
    """The MLM and dEA heads of a pre-training checkpoint are dropped silently by the
    multiple-choice model; only its fresh scorer is reported missing (and vice versa)."""
    import kgfuse.fusion as fusion

    assert fusion.KGFusedForPreTraining is KGFusedForPreTraining
    build().save_pretrained(tmp_path / "pre")
    mc, info = KGFusedForMultipleChoice.from_pretrained(tmp_path / "pre", output_loading_info=True)
    assert info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    assert info["missing_keys"] == {"classifier.weight", "classifier.bias"}
    mc.save_pretrained(tmp_path / "mc")
    _, info = KGFusedForPreTraining.from_pretrained(tmp_path / "mc", output_loading_info=True)
    assert info["unexpected_keys"] == set() and info["missing_keys"] == set()


def test_pretraining_and_multiple_choice_share_one_encoder(tmp_path):
    """The pre-training forward runs the multiple-choice model's ``encode``: same weights, same
    token states; and ``forward`` scores from ``encode``'s pooled text, graph and entity vectors."""
    mc = build(KGFusedForMultipleChoice, fusion_zero_init=False).eval()
    mc.save_pretrained(tmp_path)
    pre = KGFusedForPreTraining.from_pretrained(tmp_path).eval()
    b = batch()
    graph = {k: b[k] for k in ("input_ids", "attention_mask", "entity_index", "node_concept_ids", "node_type",
                               "node_batch", "edge_index", "edge_type")}
    with torch.no_grad():
        enc = mc.encode(**graph)
        got = pre(**b).last_hidden_state
        assert enc.last_hidden_state.shape == (2, 8, 32) and torch.equal(got, enc.last_hidden_state)
        assert enc.entity_mask.tolist() == [[True, True], [True, False]]
        ent_vec = (enc.entity_states * enc.entity_mask.unsqueeze(-1)).sum(1) / enc.entity_mask.sum(1, keepdim=True)
        feats = torch.cat([enc.pooled_text, enc.graph_vector, ent_vec], -1)
        as_mc = {k: v.unsqueeze(0) if k in ("input_ids", "attention_mask", "entity_index") else v for k, v in graph.items()}
        logits = mc(**as_mc).logits
        assert torch.allclose(logits.view(-1), mc.classifier(feats).view(-1), atol=1e-6)
        text_only = mc.encode(b["input_ids"], b["attention_mask"], use_graph=False)
        assert text_only.graph_vector is None and not torch.allclose(text_only.last_hidden_state, got)
    with pytest.raises(ValueError, match="needs node_concept_ids"):
        mc.encode(b["input_ids"], b["attention_mask"])
    with pytest.raises(ValueError, match="no graph part"):
        build(KGFusedForMultipleChoice, use_graph=False).encode(b["input_ids"], use_graph=True)


def assert_same_mlm_logits_without_entities(model, masked_lm):
    """With no entities, the fused model's MLM logits at a masked position equal the checkpoint's."""
    ids = torch.randint(5, 99, (2, 7))
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), node_concept_ids=torch.zeros(0, dtype=torch.long),
                node_batch=torch.zeros(0, dtype=torch.long), mlm_labels=labels)
    ref = masked_lm(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[:, 3]
    assert torch.allclose(out.mlm_logits, ref, atol=1e-4)


def test_mlm_head_loaded_from_a_bert_checkpoint(tmp_path):
    torch.manual_seed(0)
    bert = BertForMaskedLM(tiny_text_config())
    with torch.no_grad():
        bert.cls.predictions.bias.normal_()
    bert.save_pretrained(tmp_path / "bert")
    model = KGFusedForPreTraining.from_text_pretrained(tmp_path / "bert", num_concepts=NUM_CONCEPTS,
                                                       num_relations=NUM_RELATIONS, node_dim=12, graph_hidden_dim=16,
                                                       num_fusion_layers=1)
    assert torch.equal(model.mlm_head.bias, bert.cls.predictions.bias)
    assert torch.equal(model.mlm_head.transform.dense.weight, bert.cls.predictions.transform.dense.weight)
    # with no graph input effect (no entities), the fused model's MLM logits equal BertForMaskedLM's
    model.eval()
    bert.eval()
    assert_same_mlm_logits_without_entities(model, bert)


def test_dea_without_fusion_layers_is_a_clear_error():
    model = build(num_fusion_layers=0)
    assert model.dea_head is None
    with pytest.raises(ValueError, match="dEA needs fusion layers"):
        model(**batch())
    b = batch()
    for k in ("dea_token", "dea_candidates", "dea_candidate_batch", "dea_target"):
        b.pop(k)
    assert torch.isfinite(model(**b).loss)  # MLM-only pre-training works


def test_load_for_finetuning_same_and_other_graph(tmp_path):
    pre = build()
    with torch.no_grad():
        pre.fusion_layers[0].entity_to_intermediate.weight.normal_()
    pre.save_pretrained(tmp_path / "pre")

    class G:  # the graph attributes load_for_finetuning reads
        def __init__(self, n, r, h):
            self.num_concepts, self.num_relations, self.hash = n, r, h

    same = load_for_finetuning(tmp_path / "pre", G(NUM_CONCEPTS, NUM_RELATIONS, "g1"))
    assert torch.equal(same.node_embeddings.weight, pre.node_embeddings.weight)
    other = load_for_finetuning(tmp_path / "pre", G(50, 7, "g2"))
    assert type(other) is KGFusedForMultipleChoice
    assert other.node_embeddings.weight.shape == (50, 12) and other.config.graph_hash == "g2"
    assert torch.equal(other.fusion_layers[0].entity_to_intermediate.weight, pre.fusion_layers[0].entity_to_intermediate.weight)
    assert torch.equal(other.text_encoder.embeddings.word_embeddings.weight, pre.text_encoder.embeddings.word_embeddings.weight)
    info = transfer_pretrained_weights(tmp_path / "pre", build(KGFusedForMultipleChoice, seed=5))
    assert not any(k.startswith(("node_embeddings", "graph_encoder", "mlm_head", "dea_head")) for k in info["loaded"])
    assert any(k.startswith("graph_encoder") for k in info["skipped"])


def test_albert_mlm_head_and_shared_layer_copies(tmp_path):
    """An ALBERT masked-LM checkpoint: its MLM head is loaded, the fused position runs its own
    copy of the shared layer, and with no entities the MLM logits equal AlbertForMaskedLM's."""
    from transformers import AlbertConfig, AlbertForMaskedLM

    torch.manual_seed(0)
    cfg = AlbertConfig(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, max_position_embeddings=64)
    albert = AlbertForMaskedLM(cfg)
    with torch.no_grad():
        albert.predictions.bias.normal_()
    albert.save_pretrained(tmp_path / "albert")
    albert = AlbertForMaskedLM.from_pretrained(tmp_path / "albert").eval()
    model = KGFusedForPreTraining.from_text_pretrained(tmp_path / "albert", num_concepts=NUM_CONCEPTS,
                                                       num_relations=NUM_RELATIONS, node_dim=12, graph_hidden_dim=16,
                                                       num_fusion_layers=1).eval()
    assert torch.equal(model.mlm_head.bias, albert.predictions.bias)
    assert torch.equal(model.mlm_head.transform.dense.weight, albert.predictions.dense.weight)
    assert len(model.text_layer_copies) == 1
    assert_same_mlm_logits_without_entities(model, albert)
