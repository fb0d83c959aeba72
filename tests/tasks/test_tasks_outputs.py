"""What people read after a run: prediction records, the report and its plots, the model card,
and comparison tables whose run names become file names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from kgfuse.tasks.cli import main
from kgfuse.tasks.evaluate import (accuracy_by_linked_concepts, explain_answer, learning_curve_figure, prediction_record,
                                   safe_file_name, select_examples, write_report)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def run(trained_run):
    """``(run folder, TrainResult)`` of the session's tiny run (tests/conftest.py), read only."""
    _, res = trained_run
    return res.output_dir, res


# ------------------------------------------------------------------ prediction records


def test_predictions_carry_question_answers_and_an_explanation_for_every_answer(run):
    _, res = run
    recs = [json.loads(line) for split in ("train", "dev")
            for line in (res.output_dir / f"predictions-{split}.jsonl").read_text().splitlines()]
    assert len(recs) == 38
    for r in recs:
        assert r["question"] and len(r["choices"]) == 5
        assert r["predicted_text"] == r["choices"][r["predicted"]] and r["label_text"] == r["choices"][r["label"]]
        assert r["correct"] == (r["predicted"] == r["label"])
        assert r["explanation"] and all(isinstance(e, str) and e for e in r["explanation"])
        if r["correct"]:
            assert "gold_explanation" not in r
        else:
            assert r["gold_explanation"]


def test_explanations_are_never_empty_for_a_graph_model():
    from kgfuse.kg import KnowledgeGraph
    from kgfuse.kg.linking import Grounding

    kg = KnowledgeGraph(["plate", "cupboard", "roof"], ["atlocation"], [0], [0], [1])
    no_path = SimpleNamespace(explain=lambda data, graph, limit=None: [])
    g = Grounding(question_concepts=[0], answer_concepts=[2])
    assert explain_answer((g, None), no_path, kg) == [
        "no path in the retrieved subgraph; linked: question ['plate'] / answer ['roof']"]
    assert "no concept" in explain_answer((Grounding(), None), no_path, kg)[0]
    assert explain_answer((g, None), None, None) == []  # an LM-only model uses no graph


def test_prediction_record_explains_the_gold_answer_of_a_mistake():
    ex = SimpleNamespace(id="q1", question="Where?", choices=["a", "b", "c"], label=2)
    r = prediction_record(ex, [0.1, 2.0, 0.3], num_linked_concepts=4, explain=lambda j: [f"why {j}"])
    assert (r["predicted"], r["predicted_text"], r["label_text"], r["correct"]) == (1, "b", "c", False)
    assert r["explanation"] == ["why 1"] and r["gold_explanation"] == ["why 2"]
    unlabelled = prediction_record(SimpleNamespace(id="q2", question="?", choices=["a", "b"], label=None), [0.0, 1.0],
                                   explain=lambda j: ["x"])
    assert unlabelled["correct"] is None and unlabelled["label_text"] is None and "gold_explanation" not in unlabelled


# ------------------------------------------------------------------ report and plots


def _records(n_right: int, n_wrong: int) -> list[dict]:
    recs = []
    for i in range(n_right + n_wrong):
        ok = i < n_right
        recs.append({"id": f"q{i:03d}", "question": f"question {i}?", "choices": ["x", "y"], "label": 0, "label_text": "x",
                     "predicted": 0 if ok else 1, "predicted_text": "x" if ok else "y", "correct": ok,
                     "explanation": [f"path {i}"], **({} if ok else {"gold_explanation": [f"gold path {i}"]})})
    return recs


def test_report_shows_right_and_wrong_examples_from_a_fixed_sample(tmp_path):
    recs = _records(30, 8)
    chosen = select_examples(recs)
    assert len(chosen["right"]) == 5 and len(chosen["wrong"]) == 5
    assert chosen == select_examples(list(reversed(recs)))  # order of the file does not matter
    assert [r["id"] for r in chosen["right"]] != [f"q{i:03d}" for i in range(5)]  # not the head of the file
    report = write_report(tmp_path, {"splits": {"dev": {"accuracy": 30 / 38}}}, samples={"dev": recs}).read_text()
    assert "## Examples: right answers (dev, 5 of 30)" in report
    assert "## Examples: wrong answers (dev, 5 of 8)" in report
    wrong = chosen["wrong"][0]
    assert "→ *y* (gold: *x*)" in report and f"`{wrong['gold_explanation'][0]}`" in report
    all_right = write_report(tmp_path / "b", {"splits": {}}, samples={"dev": _records(3, 0)}).read_text()
    assert "## Examples: wrong answers (dev, 0 of 0)\n\nNone." in all_right


def test_report_says_when_a_run_stopped_early(tmp_path):
    hist = [{"epoch": e, "train_loss": 1.0 / e, "dev_accuracy": a, "seconds": 1.0} for e, a in ((1, 0.5), (2, 0.6), (3, 0.55))]
    m = {"splits": {"dev": {"accuracy": 0.6}}, "history": hist, "best_epoch": 2, "best_metric": 0.6,
         "selection_metric": "dev_accuracy"}
    assert "stopped early" not in write_report(tmp_path / "a", m).read_text()
    text = write_report(tmp_path / "b", dict(m, stopped_early=True)).read_text()
    assert "The run stopped early, after epoch 3: dev_accuracy had stopped rising" in text


def test_learning_curve_marks_the_chosen_epoch():
    import matplotlib.pyplot as plt

    history = [{"epoch": e, "train_loss": 1.0 / e, "dev_accuracy": a} for e, a in ((1, 0.5), (2, 0.8), (3, 0.7))]
    fig = learning_curve_figure(history, best_epoch=2)
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "best epoch (2): exported" in labels
    vlines = [ln for ax in fig.axes for ln in ax.get_lines() if list(ln.get_xdata()) == [2, 2]]
    assert len(vlines) == 1
    plt.close(fig)


def test_accuracy_buckets_adapt_to_the_data():
    right = [True, True, False, True, False, False, True, True, True, False, False, False]
    small = accuracy_by_linked_concepts([3, 5, 5, 6, 7, 7, 8, 9, 10, 12, 12, 14], right)
    # ordered buckets of about equal size, no value split between two of them, accuracy per bucket
    assert [(r["bucket"], r["lo"], r["hi"], r["count"], r["correct"]) for r in small] == [
        ("3-5", 3, 5, 3, 2), ("6-7", 6, 7, 3, 1), ("8-10", 8, 10, 3, 3), ("12-14", 12, 14, 3, 0)]
    assert [r["accuracy"] for r in small] == pytest.approx([2 / 3, 1 / 3, 1.0, 0.0])
    big = accuracy_by_linked_concepts(list(range(1000)), [i % 2 == 0 for i in range(1000)])
    assert [r["count"] for r in big] == [200] * 5
    assert accuracy_by_linked_concepts([4] * 12, [True] * 12)[0]["bucket"] == "4"


def test_edge_pattern_and_accuracy_per_pattern():
    from kgfuse.tasks.evaluate import EDGE_PATTERNS, accuracy_by_edge_pattern, edge_pattern

    assert edge_pattern([True, False, True], 0) == "correct and wrong"
    assert edge_pattern([True, False, False], 0) == "correct only"
    assert edge_pattern([False, False, True], 1) == "wrong only"
    assert edge_pattern([False, False, False], 2) == "none"
    with pytest.raises(ValueError, match="label 3"):
        edge_pattern([True, False], 3)
    rows = accuracy_by_edge_pattern(["none", "wrong only", "none", "correct only"], [True, False, False, True])
    assert [r["pattern"] for r in rows] == [p for p in EDGE_PATTERNS if p != "correct and wrong"]
    assert {r["pattern"]: (r["count"], r["correct"]) for r in rows} == {
        "correct only": (1, 1), "wrong only": (1, 0), "none": (2, 1)}
    with pytest.raises(ValueError, match="unknown edge patterns"):
        accuracy_by_edge_pattern(["sometimes"], [True])


def test_run_report_and_plots(run):
    _, res = run
    report = (res.output_dir / "report.md").read_text()
    assert "## Examples: right answers (dev" in report and "## Examples: wrong answers (dev" in report
    m = json.loads((res.output_dir / "metrics.json").read_text())
    assert len(m["by_linked_concepts"]["dev"]) >= 2  # 12 questions: several buckets, not one
    # every labelled dev question has the pattern of its retrieved subgraphs, counted once per pattern
    preds = [json.loads(l) for l in (res.output_dir / "predictions-dev.jsonl").read_text().splitlines()]
    by_pattern = {r["pattern"]: r for r in m["by_edge_pattern"]["dev"]}
    assert sum(r["count"] for r in by_pattern.values()) == len(preds) == 12
    for p, r in by_pattern.items():
        mine = [x for x in preds if x["edge_pattern"] == p]
        assert (r["count"], r["correct"]) == (len(mine), sum(x["correct"] for x in mine))
    assert "## Accuracy by what the graph joins" in report
    assert (res.output_dir / "accuracy_by_concepts.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------ model card


def test_model_card_in_the_exported_model_folder(run, tmp_path):
    _, res = run
    card = (res.output_dir / "model" / "README.md").read_text()
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "kgfuse" and "knowledge-graph" in meta["tags"]
    dev = res.metrics["splits"]["dev"]["accuracy"]
    accs = {r["dataset"]["split"]: r["metrics"][0]["value"] for r in meta["model-index"][0]["results"]}
    assert accs["dev"] == pytest.approx(dev, abs=1e-4)
    info = json.loads((res.output_dir / "model" / "kgfuse_pipeline.json").read_text())
    for text in ("kgfuse fused", "graph encoder `rgcn`", "1 ERNIE fusion layer", info["graph"]["hash"],
                 f"{info['graph']['num_concepts']} concepts", "sample_csqa/train.jsonl", "| lr_lm | 0.0010 |",
                 f"| dev | {dev:.4f} |", "AutoModelForMultipleChoice.from_pretrained"):
        assert text in card, text
    assert "early_stopping_patience" not in card  # a setting left off is not listed
    # the card of a run that stopped early says so, with its patience
    from kgfuse.fusion import KGFusedConfig
    from kgfuse.tasks.report import write_model_card

    config = yaml.safe_load((res.output_dir / "config.yaml").read_text())
    config["train"]["early_stopping_patience"] = 1
    metrics = dict(res.metrics, stopped_early=True)
    (tmp_path / "card").mkdir()
    out = write_model_card(tmp_path / "card", metrics=metrics, pipeline=info, config=config,
                           model_config=KGFusedConfig.from_pretrained(str(res.output_dir / "model"))).read_text()
    assert "| early_stopping_patience | 1 |" in out
    assert f"| epochs trained | {len(res.metrics['history'])} (stopped early) |" in out


# ------------------------------------------------------------------ comparisons


def test_shipped_comparison_example_runs(run, monkeypatch, tmp_path):
    """configs/comparison-example.yaml names its runs demo-model/sample-dev, ...: each becomes
    one file in the output folder, no sub-folders."""
    _, res = run
    root = tmp_path / "home"  # a $KGFUSE_HOME whose demo/ holds the model, as `kgfuse demo` leaves it
    shutil.copytree(res.output_dir / "model", root / "demo" / "model")
    monkeypatch.setenv("KGFUSE_HOME", str(root))
    assert main(["evaluate", "--config", str(REPO / "configs" / "comparison-example.yaml"), "-q"]) == 0
    out = root / "comparison"
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.csv", "comparison.md", "predictions-demo-model_sample-dev.jsonl", "predictions-demo-model_sample-train.jsonl"]
    table = (out / "comparison.md").read_text()
    assert "| demo-model/sample-dev |" in table and "predictions-demo-model_sample-dev.jsonl" in table
    assert len((out / "predictions-demo-model_sample-train.jsonl").read_text().splitlines()) == 26
    # a comparison's prediction lines say what the graph offers each question, as a run's do
    recs = [json.loads(l) for l in (out / "predictions-demo-model_sample-dev.jsonl").read_text().splitlines()]
    from kgfuse.tasks.evaluate import EDGE_PATTERNS

    assert {r["edge_pattern"] for r in recs} <= set(EDGE_PATTERNS)
    assert len(recs) == 12


def test_run_names_never_leave_the_output_folder(run, tmp_path):
    from kgfuse.tasks.evaluate import run_evaluations

    _, res = run
    model = res.output_dir / "model"
    runs = "".join(f"  - {{name: {json.dumps(n)}, model: {model}, data: {{path: bundled:sample_csqa/dev.jsonl, max_examples: 2}}}}\n"
                   for n in ("../../x", "a/b", "a_b", "/abs", ".."))
    (tmp_path / "cfg" / "deep").mkdir(parents=True)
    (tmp_path / "cfg" / "deep" / "cmp.yaml").write_text(f"output_dir: out\ncache_dir: {tmp_path / 'cache'}\nruns:\n{runs}")
    rows = run_evaluations(tmp_path / "cfg" / "deep" / "cmp.yaml", progress=False)
    out = tmp_path / "cfg" / "deep" / "out"
    files = sorted(p.name for p in out.iterdir())
    assert all(p.is_file() for p in out.iterdir())
    assert files == sorted(["comparison.csv", "comparison.md", "predictions-x.jsonl", "predictions-a_b.jsonl",
                            "predictions-a_b-2.jsonl", "predictions-abs.jsonl", "predictions-run.jsonl"])
    assert [r["predictions"] for r in rows] == ["predictions-x.jsonl", "predictions-a_b.jsonl", "predictions-a_b-2.jsonl",
                                               "predictions-abs.jsonl", "predictions-run.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "cfg"]  # nothing written above the output folder


def test_safe_file_name():
    used: set[str] = set()
    assert [safe_file_name(n, used) for n in ("demo/dev", "demo_dev", "../../etc/passwd", "ok-1.v2", "")] == [
        "demo_dev", "demo_dev-2", "etc_passwd", "ok-1.v2", "run"]
