"""kgfuse.tasks.api: one call per job (train, pretrain, evaluate, predict), each returning a
result with its metrics or predictions and a save(folder) method."""

from __future__ import annotations

import io
import json

import pytest

from kgfuse.tasks import api
from kgfuse.tasks.cli import data_dir

QUESTION = "Where would you put a plate after drying it?"
CHOICES = ["cupboard", "oven", "roof"]
DEV = data_dir() / "sample_csqa" / "dev.jsonl"


@pytest.fixture(scope="module")
def model_dir(trained_run):
    _, res = trained_run
    return res.output_dir / "model"


@pytest.fixture(scope="module")
def predictor(model_dir):
    return api.load_predictor(model_dir, warm_up=True)


def test_load_predictor_sets_torch_threads(predictor):
    import torch

    old = torch.get_num_threads()
    try:
        assert api.load_predictor(predictor, threads=1) is predictor and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)


def test_import_kgfuse_offers_the_api_lazily():
    import kgfuse

    assert kgfuse.api is api
    assert "api" in dir(kgfuse)


def test_predict_one_question_and_many_with_one_load(model_dir, predictor):
    from kgfuse.tasks.inference import KGFusePredictor

    one = api.predict(model_dir, QUESTION, CHOICES)
    (p,) = one.predictions
    assert p.choice in CHOICES and len(p.probs) == 3 and one.load_seconds > 0 and len(one.seconds) == 1
    assert one.records[0]["question"] == QUESTION and one.records[0]["choices"] == CHOICES
    assert isinstance(predictor, KGFusePredictor)

    many = api.predict(predictor, questions=[{"id": "a", "question": QUESTION, "choices": CHOICES},
                                             {"question": "Where do you keep milk cold?", "choices": ["fridge", "oven"]}])
    assert [r["id"] for r in many.records] == ["a", None] and many.load_seconds == 0 and len(many.seconds) == 2
    assert many.predictions[0].scores == pytest.approx(p.scores, abs=1e-5)  # same model, same answer

    with pytest.raises(ValueError, match="questions\\[0\\]: 'choices'"):
        api.predict(predictor, questions=[{"question": QUESTION, "choices": ["cupboard"]}])
    with pytest.raises(ValueError, match="give question and choices"):
        api.predict(predictor)
    with pytest.raises(ValueError, match="give question and choices"):
        api.predict(predictor, QUESTION, CHOICES, data=DEV)


def test_predict_a_data_file_and_save(predictor, tmp_path):
    res = api.predict(predictor, data=DEV, cache_dir=tmp_path / "cache")
    assert len(res.records) == 12 and res.metrics["count"] == 12 and res.predictions == []
    assert {"label", "predicted", "correct", "explanation"} <= set(res.records[0])
    out = res.save(tmp_path / "p")
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r["id"] for r in res.records]
    assert json.loads((out / "metrics.json").read_text()) == res.metrics


def test_a_stream_is_answered_line_by_line_and_bad_lines_are_reported(predictor):
    lines = io.StringIO(
        json.dumps({"id": "q1", "question": QUESTION, "choices": CHOICES}) + "\n"
        "not json\n"
        "\n"
        + json.dumps({"id": "q3", "question": QUESTION, "choices": ["cupboard"]}) + "\n"
        + json.dumps({"question": "Where do you keep milk cold?", "choices": ["fridge", "oven"]}) + "\n"
    )
    out = io.StringIO()
    summary = api.predict_stream(predictor, lines, out)
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    assert summary.answered == 2 and summary.errors == 2 and len(summary.seconds) == 2
    assert summary.median_ms > 0 and summary.max_ms >= summary.median_ms
    assert got[0]["id"] == "q1" and got[0]["choice"] in CHOICES and got[0]["explanation"] is not None
    assert got[1]["line"] == 2 and "not valid JSON" in got[1]["error"]
    assert got[2] == {"line": 4, "id": "q3", "error": "line 4: 'choices' must be a list of at least two non-empty strings"}
    assert got[3]["choices"] == ["fridge", "oven"]


def test_evaluate_a_model_and_a_comparison(trained_run, model_dir, tmp_path):
    _, res = trained_run
    ev = api.evaluate(model_dir, DEV, cache_dir=tmp_path / "cache", progress=False)
    assert ev.metrics["count"] == 12 and len(ev.records) == 12
    assert ev.accuracy == pytest.approx(res.metrics["splits"]["dev"]["accuracy"])
    out = ev.save(tmp_path / "ev")
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == str(model_dir.resolve()) and m["data"] == str(DEV.resolve()) and m["count"] == 12
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 12

    (tmp_path / "cmp.yaml").write_text(f"output_dir: t\nruns:\n  - {{name: a, model: {model_dir}, data: {DEV}}}\n")
    cmp = api.evaluate(config=tmp_path / "cmp.yaml", progress=False)
    assert [r["name"] for r in cmp.rows] == ["a"] and cmp.rows[0]["accuracy"] == pytest.approx(ev.accuracy)
    assert (tmp_path / "t" / "comparison.md").is_file()
    assert json.loads((cmp.save(tmp_path / "c") / "comparison.json").read_text())[0]["name"] == "a"
    with pytest.raises(ValueError, match="give config"):
        api.evaluate(model_dir)


def test_train_from_a_dict_with_overrides(tiny_config, tmp_path):
    cfg = tiny_config(tmp_path / "unused", tmp_path / "cache").to_dict()
    before = json.dumps(cfg, sort_keys=True, default=str)
    run = api.train(cfg, ["train.epochs=1", "data.max_train=8"], output_dir=tmp_path / "run", progress=False)
    assert json.dumps(cfg, sort_keys=True, default=str) == before  # the caller's dict is not changed
    assert run.output_dir == (tmp_path / "run").resolve() and (run.model_dir / "kgfuse_pipeline.json").is_file()
    assert len(run.history) == 1 and run.accuracy("dev") == run.metrics["splits"]["dev"]["accuracy"]
    assert run.metrics["data"]["train"]["used"] == 8
    out = run.save(tmp_path / "copy")
    assert json.loads((out / "metrics.json").read_text())["splits"] == run.metrics["splits"]
    assert json.loads((out / "train_result.json").read_text())["best_epoch"] == run.best_epoch == 1


def test_link_a_corpus_then_pretrain_from_it(tmp_path):
    sample = data_dir() / "sample_kg" / "assertions.csv"
    (tmp_path / "c.txt").write_text("\n".join(
        f"{s} ({i})" for i, s in enumerate(["You put a plate in the cupboard.", "Milk is kept in the fridge.",
                                            "A knife is used to cut bread.", "The oven is hot."] * 4)))
    cfg = {
        "corpus": [{"type": "text", "path": "c.txt"}],
        "graph": {"path": str(sample), "format": "conceptnet"},
        "model": {"options": {"text_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                                              "intermediate_size": 37, "max_position_embeddings": 64},
                              "num_fusion_layers": 1, "node_dim": 8, "graph_hidden_dim": 8}},
        "data": {"eval_fraction": 0.25, "eval_every": 0},
        "train": {"batch_size": 4, "max_steps": 2, "max_length": 24, "mixed_precision": "no"},
        "output_dir": "pre",
        "base_dir": str(tmp_path),
    }
    linked = api.link_corpus(cfg, output=tmp_path / "linked.jsonl.gz", progress=False)
    assert linked.path == tmp_path / "linked.jsonl.gz" and linked.path.is_file()
    assert linked.num_train > 0 and linked.num_eval > 0
    run = api.pretrain(cfg, [f"data.linked={linked.path}"], progress=False)
    assert run.output_dir == tmp_path / "pre" and (run.model_dir / "config.json").is_file()
    assert run.global_step == 2 and run.metrics["dea_count"] > 0
    saved = json.loads((run.save(tmp_path / "m") / "metrics.json").read_text())
    assert saved["global_step"] == 2 and saved["final"] == run.metrics
