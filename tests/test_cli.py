"""The kgfuse command line: each command parses its arguments and calls the Python API."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from kgfuse.tasks.cli import data_dir, main


@pytest.fixture(autouse=True)
def _kgfuse_home(tmp_path_factory, monkeypatch):
    """Keep the CLI's default cache and outputs away from the user's ~/.cache/kgfuse."""
    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path_factory.mktemp("kgfuse_home")))


COMMANDS = ["demo", "graph", "link", "prepare", "train", "pretrain", "evaluate", "predict", "serve", "explain"]


def test_help_lists_every_command():
    """`python -m kgfuse.tasks.cli --help` lists exactly these commands, each with its summary."""
    from kgfuse.tasks.cli import build_parser

    out = subprocess.run([sys.executable, "-m", "kgfuse.tasks.cli", "--help"], capture_output=True, text=True, check=True).stdout
    listed = out.split("commands:", 1)[1].split("Run `kgfuse COMMAND --help`", 1)[0]
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("    ") and not line.startswith("     ")]
    assert names == COMMANDS
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    flat = "".join(listed.split())  # argparse wraps lines, also at hyphens
    for c in sub._choices_actions:
        assert c.dest + "".join(c.help.split()) in flat, c.dest


def test_graph_build_info_and_link(tmp_path, capsys):
    src = data_dir() / "sample_kg" / "assertions.csv"
    assert main(["graph", "build", str(src), str(tmp_path / "g")]) == 0
    out = capsys.readouterr().out
    assert "hash" in out and (tmp_path / "g").is_dir()
    assert main(["graph", "info", str(tmp_path / "g")]) == 0
    info = capsys.readouterr().out
    assert "concepts:  286" in info and "atlocation" in info
    assert main(["link", "Where would you put a plate after drying it?", "--graph", str(tmp_path / "g")]) == 0
    assert "-> plate" in capsys.readouterr().out
    assert main(["link", "Where would you put a plate?", "--choice", "cupboard", "--graph", str(src)]) == 0
    out = capsys.readouterr().out
    assert "answer concepts:   cupboard" in out and "question concepts: plate" in out


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: many}\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "train.epochs must be an integer" in capsys.readouterr().err
    assert main(["graph", "info", str(tmp_path / "missing")]) == 2
    with pytest.raises(SystemExit):
        main(["train"])  # --config is required


def _as_user_config(cfg) -> dict:
    """The settings of a run written as a user's config file: bundled data, the run folder
    relative to the file; the run's own preprocessing cache (content-keyed: read, not written)."""
    d = cfg.to_dict()
    d["data"].update(train="bundled:sample_csqa/train.jsonl", dev="bundled:sample_csqa/dev.jsonl")
    d["graph"]["path"] = "bundled:sample_kg/assertions.csv"
    d["output_dir"] = "run"
    return d


def test_prepare_train_predict_explain_evaluate(trained_run, capsys, monkeypatch, tmp_path):
    """The commands on the session's tiny run (tests/conftest.py). `kgfuse train` writes into its
    run folder, so it works on a copy: the run is finished, and resuming it trains no more."""
    from kgfuse.tasks.inference import KGFusePredictor

    cfg, res = trained_run
    root = tmp_path / "exp"
    root.mkdir()
    (root / "exp.yaml").write_text(yaml.safe_dump(_as_user_config(cfg)))
    shutil.copytree(res.output_dir, root / "run")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # config paths must not depend on the CWD
    assert main(["prepare", "--config", str(root / "exp.yaml")]) == 0
    out = capsys.readouterr().out
    # the same questions, graph, linker and retriever as the run: its cache answers
    assert "train: 26 questions" in out and "dev: 12 questions" in out and out.count(", cache hit: ") == 2
    # a second run into a folder that holds one is refused with a message
    assert main(["train", "--config", str(root / "exp.yaml"), "--quiet"]) == 2
    assert "already holds a run: resume it" in capsys.readouterr().err
    # resuming the finished run trains no more steps; --set changes the recorded config (--allow-changes)
    assert main(["train", "--config", str(root / "exp.yaml"), "--quiet", "--resume", "auto", "--allow-changes",
                 "--set", "train.seed=3"]) == 0
    out = capsys.readouterr().out
    dev = res.metrics["splits"]["dev"]
    assert f"dev accuracy: {dev['accuracy']:.4f} ({dev['correct']}/12)" in out
    assert f"run folder: {root / 'run'}" in out and f"model: {root / 'run' / 'model'}" in out
    assert yaml.safe_load((root / "run" / "config.yaml").read_text())["train"]["seed"] == 3
    changes = [json.loads(line)["changes"] for line in (root / "run" / "config-changes.jsonl").read_text().splitlines()]
    assert changes == [["train.seed: 42 -> 3"]]
    after = json.loads((root / "run" / "train_result.json").read_text())
    assert after["global_step"] == res.global_step == 8 and after["history"] == json.loads(json.dumps(res.history))

    model = str(root / "run" / "model")
    question, choices = "Where would you put a plate after drying it?", ["cupboard", "oven", "roof"]
    ref = KGFusePredictor.from_pretrained(res.output_dir / "model")
    assert main(["predict", "--model", model, "--question", question, "--choices", *choices, "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    want = ref.predict(question, choices)
    assert p["scores"] == pytest.approx(want.scores, abs=1e-5) and p["choice"] == want.choice
    assert main(["explain", "--model", model, "--question", question, "--choice", "cupboard"]) == 0
    out = capsys.readouterr().out
    g = ref.linker.ground(question, "cupboard")
    data = ref.retriever(g)
    lines = ref.retriever.explain(data, ref.graph, limit=10)
    assert "question concepts: " in out and "answer concepts:   cupboard" in out
    assert f"subgraph: {int(data.num_nodes)} nodes, {int(data.edge_index.shape[1])} edges" in out
    assert lines and "reasoning paths:" in out and all(f"  {line}" in out for line in lines)

    assert main(["evaluate", "--model", model, "--data", str(data_dir() / "sample_csqa/dev.jsonl"), "--output", str(tmp_path / "ev"), "--quiet"]) == 0
    assert f"accuracy: {dev['accuracy']:.4f} ({dev['correct']}/12)" in capsys.readouterr().out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["count"] == 12 and m["accuracy"] == pytest.approx(dev["accuracy"])

    (tmp_path / "cmp.yaml").write_text(f"output_dir: t\nruns:\n  - {{name: a, model: {model}, data: bundled:sample_csqa/dev.jsonl}}\n")
    assert main(["evaluate", "--config", str(tmp_path / "cmp.yaml"), "--quiet"]) == 0
    assert (tmp_path / "t" / "comparison.md").is_file()
    rows = list(csv.DictReader((tmp_path / "t" / "comparison.csv").open()))
    assert [r["name"] for r in rows] == ["a"] and float(rows[0]["accuracy"]) == pytest.approx(dev["accuracy"], abs=1e-4)

    assert main(["predict", "--model", model, "--data", str(data_dir() / "sample_csqa/dev.jsonl"), "--output", str(tmp_path / "p.jsonl")]) == 0
    got = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    saved = [json.loads(line) for line in (res.output_dir / "predictions-dev.jsonl").read_text().splitlines()]
    assert len(got) == 12 and [r["id"] for r in got] == [r["id"] for r in saved]
    for a, b in zip(got, saved):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)
