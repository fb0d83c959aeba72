"""Test-time graph ablations: a trained fused model scored with another view of its subgraphs
(``predictor.graph_input``, ``api.evaluate(graph_input=)``, ``kgfuse evaluate --graph-input``,
a comparison file's ``graph_input``), on the session's tiny trained run."""

from __future__ import annotations

import csv
import json

import pytest

from kgfuse.tasks import api
from kgfuse.tasks.cli import data_dir, main
from kgfuse.tasks.datasets import load_examples
from kgfuse.tasks.inference import KGFusePredictor

DEV = data_dir() / "sample_csqa/dev.jsonl"


@pytest.fixture()
def model_dir(trained_run):
    _, res = trained_run
    return res.output_dir / "model"


def _scores(records):
    return [s for r in records for s in r["scores"]]


def test_each_view_scores_alike_in_batches_and_one_question_at_a_time(model_dir, tmp_path):
    pred = KGFusePredictor.from_pretrained(model_dir)
    assert pred.graph_input == "full"
    exs, _ = load_examples(DEV)
    full = api.evaluate(pred, DEV, progress=False, cache_dir=tmp_path / "cache")
    assert full.metrics["graph_input"] == "full"
    got = {}
    for mode in ("none", "no_edges", "qa_only"):
        ev = api.evaluate(pred, DEV, graph_input=mode, progress=False, cache_dir=tmp_path / "cache")
        assert ev.metrics["graph_input"] == mode and ev.metrics["count"] == 12
        assert pred.graph_input == "full"  # the predictor passed in is left as it came
        got[mode] = _scores(ev.records)
        # the batched evaluation and predict() on raw text build the same view
        pred.graph_input = mode
        for ex, rec in list(zip(exs, ev.records))[:3]:
            assert pred.predict(ex.question, ex.choices).scores == pytest.approx(rec["scores"], abs=1e-5)
        # explanations still come from the full retrieved subgraph of the chosen answer
        for rec, ref in zip(ev.records, full.records):
            if rec["predicted"] == ref["predicted"]:
                assert rec["explanation"] == ref["explanation"]
        pred.graph_input = None
    # the trained model reads its graph: taking the graph or its edges away changes the scores
    assert got["none"] != pytest.approx(_scores(full.records), abs=1e-4)
    assert got["no_edges"] != pytest.approx(_scores(full.records), abs=1e-4)
    assert got["none"] != pytest.approx(got["no_edges"], abs=1e-4)


def test_none_is_the_model_without_any_grounding(model_dir):
    """``none`` feeds exactly what a question with nothing linked feeds: no nodes, no alignments."""
    pred = KGFusePredictor.from_pretrained(model_dir)
    question, choices = "Where would you put a plate after drying it?", ["cupboard", "oven", "roof"]
    pred.graph_input = "none"
    ablated = pred.predict(question, choices)
    pred.graph_input = None
    assert pred.graph_input == "full"
    # the same question in words the graph does not know: nothing is linked, nothing retrieved
    unknown = pred.linker.ground("zzqx", "qqzx")
    assert not unknown.question_concepts and not unknown.answer_concepts
    plain = pred.predict_pairs(question, choices, [(unknown, pred.retriever(unknown))] * len(choices))
    assert ablated.scores == pytest.approx(plain.scores, abs=1e-5)
    assert ablated.scores != pytest.approx(pred.predict(question, choices).scores, abs=1e-4)


def test_views_are_checked(model_dir):
    pred = KGFusePredictor.from_pretrained(model_dir)
    with pytest.raises(ValueError, match="graph_input must be one of"):
        pred.graph_input = "edges_only"
    text_only = KGFusePredictor(pred.model, pred.tokenizer)  # no linker: the model reads no graph
    with pytest.raises(ValueError, match="reads no graph"):
        text_only.graph_input = "none"


def test_cli_and_comparison_file(model_dir, tmp_path, capsys):
    ref = api.evaluate(str(model_dir), DEV, graph_input="no_edges", progress=False)
    assert main(["evaluate", "--model", str(model_dir), "--data", str(DEV), "--graph-input", "no_edges",
                 "--output", str(tmp_path / "ev"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "graph input: no_edges (test-time ablation)" in out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["graph_input"] == "no_edges" and m["accuracy"] == pytest.approx(ref.accuracy)
    saved = [json.loads(line) for line in (tmp_path / "ev" / "predictions.jsonl").read_text().splitlines()]
    assert _scores(saved) == pytest.approx(_scores(ref.records), abs=1e-5)

    (tmp_path / "cmp.yaml").write_text(
        f"output_dir: t\nruns:\n"
        f"  - {{name: full, model: {model_dir}, data: {DEV}}}\n"
        f"  - {{name: nograph, model: {model_dir}, data: {DEV}, graph_input: none}}\n"
        f"  - {{name: again, model: {model_dir}, data: {DEV}}}\n")
    assert main(["evaluate", "--config", str(tmp_path / "cmp.yaml"), "--quiet"]) == 0
    rows = list(csv.DictReader((tmp_path / "t" / "comparison.csv").open()))
    assert [r["graph_input"] for r in rows] == ["full", "none", "full"]  # one shared predictor, reset per run
    preds = {r["name"]: [json.loads(x) for x in (tmp_path / "t" / r["predictions"]).read_text().splitlines()] for r in rows}
    assert _scores(preds["again"]) == pytest.approx(_scores(preds["full"]), abs=1e-6)
    nograph = api.evaluate(str(model_dir), DEV, graph_input="none", progress=False)
    assert _scores(preds["nograph"]) == pytest.approx(_scores(nograph.records), abs=1e-5)

    (tmp_path / "bad.yaml").write_text(f"runs:\n  - {{model: {model_dir}, data: {DEV}, graph_input: edges}}\n")
    with pytest.raises(ValueError, match=r"runs\[0\]: graph_input must be one of"):
        api.evaluate(config=tmp_path / "bad.yaml", progress=False)


def test_shipped_comparison_files_parse(repo_root):
    from kgfuse.tasks.config import read_config_file
    from kgfuse.tasks.graph_input import GRAPH_INPUTS, KNOWLEDGE_INPUTS

    files = [f for f in sorted((repo_root / "configs").glob("*.yaml")) if "runs" in read_config_file(f)]
    assert [f.name for f in files] == ["ablation-knowledge-text.yaml", "ablation-test-time.yaml", "comparison-example.yaml"]
    for f in files:
        runs = read_config_file(f)["runs"]
        assert runs and all(r.get("model") and r.get("data") for r in runs), f.name
        assert all(r.get("graph_input", "full") in GRAPH_INPUTS for r in runs), f.name
        assert all(r.get("knowledge_input", "full") in KNOWLEDGE_INPUTS for r in runs), f.name
        assert len({r["name"] for r in runs}) == len(runs), f.name
    views = [r.get("graph_input", "full") for r in read_config_file(files[1])["runs"]]
    assert views.count("none") == views.count("full") == 6  # every fused model and split, with and without its graph
    # every fused + text model: as trained, without its text, with each part, without its graph
    by_model: dict[str, list[tuple[str, str]]] = {}
    for r in read_config_file(files[0])["runs"]:
        by_model.setdefault(r["model"], []).append((r.get("knowledge_input", "full"), r.get("graph_input", "full")))
    assert len(by_model) == 3
    for views in by_model.values():
        assert sorted(views) == sorted([("full", "full"), ("none", "full"), ("triples", "full"),
                                        ("definitions", "full"), ("full", "none")])
