"""The kgfuse command line: each command parses its arguments and calls the Python API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from kgfuse.tasks.cli import data_dir, main

@pytest.fixture(autouse=True)
def _kgfuse_home(tmp_path_factory, monkeypatch):
    """Keep the CLI's default cache and outputs away from the user's ~/.cache/kgfuse."""
    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path_factory.mktemp("kgfuse_home")))


TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "kgfuse.tasks.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("demo", "graph", "link", "prepare", "train", "evaluate", "predict", "explain"):
        assert cmd in out


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


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    cfg = {
        "data": {"format": "csqa", "train": "bundled:sample_csqa/train.jsonl", "dev": "bundled:sample_csqa/dev.jsonl"},
        "graph": {"path": "bundled:sample_kg/assertions.csv"},
        "retriever": {"type": "subgraph", "max_nodes": 32},
        "model": {"options": {"text_config": TINY, "num_fusion_layers": 1, "node_dim": 16, "graph_hidden_dim": 16, "graph_encoder": "qagnn"}},
        "train": {"epochs": 1, "batch_size": 8, "max_length": 40, "mixed_precision": "no"},
        "output_dir": "run",   # relative to the config file
        "cache_dir": "cache",
    }
    (root / "exp.yaml").write_text(yaml.safe_dump(cfg))
    return root


def test_prepare_train_predict_explain_evaluate(cli_run, capsys, monkeypatch, tmp_path):
    root = cli_run
    monkeypatch.chdir(tmp_path)  # config paths must not depend on the CWD
    assert main(["prepare", "--config", str(root / "exp.yaml")]) == 0
    out = capsys.readouterr().out
    assert "train: 26 questions" in out and "dev: 12 questions" in out
    assert main(["train", "--config", str(root / "exp.yaml"), "--quiet", "--set", "train.seed=3"]) == 0
    out = capsys.readouterr().out
    assert "dev accuracy:" in out and str(root / "run") in out
    assert (root / "run" / "model" / "kgfuse_pipeline.json").is_file()
    assert yaml.safe_load((root / "run" / "config.yaml").read_text())["train"]["seed"] == 3

    model = str(root / "run" / "model")
    assert main(["predict", "--model", model, "--question", "Where would you put a plate after drying it?",
                 "--choices", "cupboard", "oven", "roof", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert len(p["scores"]) == 3 and p["choice"] in ("cupboard", "oven", "roof")
    assert main(["explain", "--model", model, "--question", "Where would you put a plate after drying it?", "--choice", "cupboard"]) == 0
    out = capsys.readouterr().out
    assert "plate" in out and "cupboard" in out and "subgraph:" in out

    assert main(["evaluate", "--model", model, "--data", str(data_dir() / "sample_csqa/dev.jsonl"), "--output", str(tmp_path / "ev"), "--quiet"]) == 0
    assert "accuracy:" in capsys.readouterr().out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["count"] == 12
    run_m = json.loads((root / "run" / "metrics.json").read_text())
    assert m["accuracy"] == pytest.approx(run_m["splits"]["dev"]["accuracy"])

    (tmp_path / "cmp.yaml").write_text(f"output_dir: t\nruns:\n  - {{name: a, model: {model}, data: bundled:sample_csqa/dev.jsonl}}\n")
    assert main(["evaluate", "--config", str(tmp_path / "cmp.yaml"), "--quiet"]) == 0
    assert (tmp_path / "t" / "comparison.md").is_file() and (tmp_path / "t" / "comparison.csv").is_file()

    assert main(["predict", "--model", model, "--data", str(data_dir() / "sample_csqa/dev.jsonl"), "--output", str(tmp_path / "p.jsonl")]) == 0
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 12
