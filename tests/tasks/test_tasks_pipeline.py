"""train() from a config end to end on the bundled sample (tiny random BERT + the real
linker, retriever, cache, collator and fused model): run folder contents, metrics,
predictions with explanations, report and plots, the exported predictor, comparisons."""

from __future__ import annotations

import csv
import json

import pytest

from kgfuse.tasks.cli import data_dir


@pytest.fixture()
def trained(trained_run):
    """The session's tiny run (tests/conftest.py): read it, never write into it."""
    return trained_run


def test_run_folder(trained):
    cfg, res = trained
    out = res.output_dir
    for name in ("config.yaml", "metrics.json", "predictions-train.jsonl", "predictions-dev.jsonl", "report.md",
                 "learning_curves.png", "accuracy_by_concepts.png", "log.jsonl", "train_result.json",
                 "best/COMPLETE", "last/COMPLETE", "model/config.json", "model/model.safetensors",
                 "model/kgfuse_pipeline.json", "model/tokenizer.json"):
        assert (out / name).is_file(), name
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    m = json.loads((out / "metrics.json").read_text())
    assert m["splits"]["dev"]["count"] == 12 and m["splits"]["train"]["count"] == 26
    # the reported accuracy is the share of correct dev predictions written next to it
    preds = [json.loads(l) for l in (out / "predictions-dev.jsonl").read_text().splitlines()]
    correct = sum(r["correct"] for r in preds)
    assert (m["splits"]["dev"]["correct"], m["splits"]["dev"]["accuracy"]) == (correct, pytest.approx(correct / 12))
    # the exported model is the epoch with the best dev accuracy
    assert len(m["history"]) == 2
    best = m["history"][m["best_epoch"] - 1]["dev_accuracy"]
    assert best == max(h["dev_accuracy"] for h in m["history"]) == pytest.approx(m["splits"]["dev"]["accuracy"])
    assert sum(r["count"] for r in m["by_linked_concepts"]["dev"]) == 12
    report = (out / "report.md").read_text()
    assert "| dev |" in report and "![learning curves](learning_curves.png)" in report
    info = json.loads((out / "model/kgfuse_pipeline.json").read_text())
    assert info["graph"]["hash"] == res.model.config.graph_hash and info["retriever"]["options"]["type"] == "path"
    # the model is written once; the finished run keeps no optimiser state; sizes per part are recorded
    assert not (out / "best" / "model").exists() and not (out / "last" / "optimizer.safetensors").exists()
    disk = m["disk"]
    assert disk["model"] > disk["best"] and disk["total"] == sum(v for k, v in disk.items() if k != "total")
    assert disk["model"] >= (out / "model" / "model.safetensors").stat().st_size


def test_predictions_have_scores_and_paths(trained):
    _, res = trained
    recs = [json.loads(l) for l in (res.output_dir / "predictions-dev.jsonl").read_text().splitlines()]
    assert len(recs) == 12
    for r in recs:
        assert len(r["scores"]) == 5 and r["predicted"] == max(range(5), key=lambda j: r["scores"][j])
        assert r["correct"] == (r["predicted"] == r["label"])
        assert r["num_linked_concepts"] > 0
    # the sample graph connects every question concept with its answer: explanations are paths
    assert sum(1 for r in recs if r["explanation"] and "--" in r["explanation"][0]) >= 6


def test_predictor_reproduces_run_scores(trained):
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.evaluate import evaluate_predictor
    from kgfuse.tasks.inference import GraphMismatchError, KGFusePredictor

    _, res = trained
    p = KGFusePredictor.from_pretrained(res.output_dir / "model")
    exs, _ = load_examples(data_dir() / "sample_csqa/dev.jsonl")
    m, recs = evaluate_predictor(p, exs)
    assert m["accuracy"] == pytest.approx(res.metrics["splits"]["dev"]["accuracy"])
    saved = [json.loads(l) for l in (res.output_dir / "predictions-dev.jsonl").read_text().splitlines()]
    for a, b in zip(recs, saved):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)
    ex = exs[0]
    out = p.predict(ex.question, ex.choices)
    assert out.scores == pytest.approx(saved[0]["scores"], abs=1e-4)
    assert abs(sum(out.probs) - 1) < 1e-5 and out.choice == ex.choices[out.predicted]
    # "Where do you keep a toothbrush?": the concepts linked in the question and in the chosen answer
    assert out.concepts == {"question": ["toothbrush"], "answer": [out.choice]}
    with pytest.raises(ValueError, match="at least two"):
        p.predict("Where?", ["only one"])
    from kgfuse.kg import KnowledgeGraph

    other = KnowledgeGraph(["a", "b"], ["r"], [0], [0], [1])
    with pytest.raises(GraphMismatchError):
        KGFusePredictor.from_pretrained(res.output_dir / "model", graph=other)


def test_comparison_table(trained, tmp_path):
    from kgfuse.tasks.evaluate import run_evaluations

    _, res = trained
    d = data_dir()
    (tmp_path / "cmp.yaml").write_text(
        f"output_dir: table\ncache_dir: cache\nruns:\n"
        f"  - {{name: tiny-dev, model: {res.output_dir / 'model'}, data: {{path: bundled:sample_csqa/dev.jsonl}}}}\n"
        f"  - {{name: tiny-train, model: {res.output_dir / 'model'}, data: {{path: {d / 'sample_csqa/train.jsonl'}, format: csqa}},"
        f" graph: {d / 'sample_kg/assertions.csv'}}}\n"
    )
    rows = run_evaluations(tmp_path / "cmp.yaml", progress=False)
    assert [r["name"] for r in rows] == ["tiny-dev", "tiny-train"]
    assert rows[0]["accuracy"] == pytest.approx(res.metrics["splits"]["dev"]["accuracy"])
    assert rows[1]["accuracy"] == pytest.approx(res.metrics["splits"]["train"]["accuracy"])
    table = list(csv.DictReader((tmp_path / "table" / "comparison.csv").open()))
    assert len(table) == 2 and table[1]["examples"] == "26"
    assert "| tiny-dev |" in (tmp_path / "table" / "comparison.md").read_text()
    assert (tmp_path / "table" / "predictions-tiny-train.jsonl").is_file()


def test_lm_only_run(tmp_path, tiny_config):
    """An LM-only run: no graph in the model, no explanations in its predictions. (Resuming a
    finished run is checked through ``kgfuse train --resume auto`` in tests/test_cli.py.)"""
    from kgfuse.tasks.train import train

    cfg = tiny_config(tmp_path / "lm", tmp_path / "cache", epochs=1)
    cfg.model.lm_only = True
    res = train(cfg, progress=False)
    assert res.model.config.use_graph is False
    recs = [json.loads(l) for l in (tmp_path / "lm" / "predictions-dev.jsonl").read_text().splitlines()]
    assert len(recs) == 12 and all(r["explanation"] == [] for r in recs)
    assert res.global_step == 4 and len(res.history) == 1  # 26 questions, batches of 8


def test_fused_model_resume_mid_epoch_is_exact(tmp_path, tiny_config):
    """The real fused model (linker, retriever, RGCN, ERNIE layer) interrupted after 3
    optimiser steps (the first of epoch 2: 16 questions, batches of 8) and resumed ends with
    the same parameters as an uninterrupted run."""
    import torch

    from kgfuse.tasks.pipeline import build_run
    from kgfuse.tasks.train import fit

    cfg = tiny_config(tmp_path / "x", tmp_path / "cache", epochs=2, batch_size=8, save_best=False)
    cfg.data.max_train, cfg.data.max_eval = 16, 4

    def run_fit(out, **kw):
        torch.manual_seed(0)
        run = build_run(cfg, progress=False)
        return fit(run.model, run.datasets["train"], {"dev": run.datasets["dev"]}, run.collator, cfg.train, out,
                   progress=False, **kw)

    ref = run_fit(tmp_path / "a")
    part = run_fit(tmp_path / "b", stop_after_steps=3)
    assert part.global_step == 3 and (tmp_path / "b" / "checkpoint-3" / "COMPLETE").is_file()
    res = run_fit(tmp_path / "b", resume_from=tmp_path / "b" / "checkpoint-3")
    assert res.global_step == ref.global_step == 4 and [h["epoch"] for h in res.history] == [1, 2]
    ref_sd = ref.model.state_dict()
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, ref_sd[k]), k


def test_init_from_checkpoint_of_another_graph(tmp_path, tiny_bert):
    """A model saved for graph A and fine-tuned on graph B must get a node table sized
    for B (fresh), while the graph-independent weights (text encoder) are kept."""
    import torch
    from transformers import BertConfig

    from kgfuse.fusion import KGFusedForMultipleChoice
    from kgfuse.kg import GraphBuilder
    from kgfuse.tasks.config import ModelConfig
    from kgfuse.tasks.pipeline import build_model

    def graph(names):
        b = GraphBuilder()
        for h, t in zip(names, names[1:]):
            b.add(h, "relatedto", t)
        return b.build()

    ga, gb = graph(["plate", "cupboard", "kitchen"]), graph(["dog", "bone", "yard", "house", "cat"])
    src = KGFusedForMultipleChoice.from_text_config(
        BertConfig(vocab_size=99, **tiny_bert), num_concepts=ga.num_concepts, num_relations=ga.num_relations,
        graph_hash=ga.hash, text_encoder_name="all-MiniLM-L6-v2", num_fusion_layers=1, node_dim=16, graph_hidden_dim=16)
    src.save_pretrained(tmp_path / "a")
    same, _ = build_model(ModelConfig(init_from=str(tmp_path / "a")), ga)
    other, _ = build_model(ModelConfig(init_from=str(tmp_path / "a")), gb)
    assert same.node_embeddings.weight.shape[0] == ga.num_concepts
    assert torch.equal(same.node_embeddings.weight, src.node_embeddings.weight)
    assert other.node_embeddings.weight.shape[0] == gb.num_concepts
    assert other.config.graph_hash == gb.hash
    w = "text_encoder.embeddings.word_embeddings.weight"
    assert torch.equal(dict(other.named_parameters())[w], dict(src.named_parameters())[w])


def test_node_vocab_train_restricts_the_table_and_the_predictor_loads_it(tmp_path, tiny_config):
    """model.node_vocab: train gives the node table one row per concept of the training
    subgraphs (plus the shared row), trains, exports, and the predictor scores raw text with it."""
    import torch

    from kgfuse.fusion.modeling import ConceptTable
    from kgfuse.tasks.inference import KGFusePredictor
    from kgfuse.tasks.pipeline import build_run
    from kgfuse.tasks.train import train

    cfg = tiny_config(tmp_path / "v", tmp_path / "cache", epochs=1)
    cfg.model.node_vocab = "train"
    run = build_run(cfg, progress=False)
    want = run.datasets["train"].pre.concepts()
    nodes = {int(c) for i in range(len(run.datasets["train"])) for g, d in run.datasets["train"].pairs(i)
             for c in d.concept_ids.tolist()}
    assert set(want.tolist()) == nodes and 0 < len(nodes) < run.graph.num_concepts
    tab = run.model.node_embeddings
    assert isinstance(tab, ConceptTable) and tab.weight.shape[0] == len(nodes) + 1
    res = train(cfg, progress=False)
    assert res.model.config.node_vocab_size == len(nodes)
    pred = KGFusePredictor.from_pretrained(tmp_path / "v" / "model")
    assert isinstance(pred.model.node_embeddings, ConceptTable)
    assert torch.equal(pred.model.node_embeddings.weight, res.model.node_embeddings.weight.detach().cpu())
    out = pred.predict("Where would you put a plate after washing it?", ["cupboard", "oven", "table"])
    assert out.choice in ("cupboard", "oven", "table") and len(out.scores) == 3
    bad = tiny_config(tmp_path / "w", tmp_path / "cache", epochs=1)
    bad.model.node_vocab = "dev"
    with pytest.raises(ValueError, match="node_vocab must be null or 'train'"):
        build_run(bad, progress=False)
