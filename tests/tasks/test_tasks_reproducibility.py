"""The same config and seed give the same model in two separate processes.

Each process draws torch's per-process default seed before it trains, as an interactive session
would, so a model initialised before the run's seed is set differs between the two."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from kgfuse.tasks.cli import data_dir

SCRIPT = textwrap.dedent("""
    import json, sys, torch
    torch.seed()                      # a fresh, process-specific state, whatever came before
    torch.rand(7)
    from safetensors.torch import load_file
    from kgfuse.tasks.config import TrainConfig
    from kgfuse.tasks.train import train
    cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
    res = train(cfg, progress=False)
    state = load_file(str(res.output_dir / "model" / "model.safetensors"))
    metrics = json.loads((res.output_dir / "metrics.json").read_text())
    print(json.dumps({"params": {k: v.double().sum().item() for k, v in state.items()},
                      "abs": {k: v.double().abs().sum().item() for k, v in state.items()},
                      "history": metrics["history"], "dev": metrics["splits"]["dev"]}))
""")

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}


def _run(tmp_path, name, seed):
    d = data_dir()
    cfg = {
        "data": {"format": "csqa", "train": str(d / "sample_csqa/train.jsonl"), "dev": str(d / "sample_csqa/dev.jsonl"),
                 "max_train": 16},
        "graph": {"path": str(d / "sample_kg/assertions.csv")},
        "retriever": {"type": "path", "max_hops": 2, "max_paths": 10},
        "model": {"options": {"text_config": TINY, "num_fusion_layers": 1, "node_dim": 16, "graph_hidden_dim": 16}},
        "train": {"epochs": 1, "batch_size": 8, "max_length": 40, "lr_lm": 1e-3, "mixed_precision": "no", "seed": seed},
        "output_dir": str(tmp_path / name),
        "cache_dir": str(tmp_path / "cache"),
    }
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(cfg)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_same_seed_same_model_in_two_processes(tmp_path):
    a = _run(tmp_path, "a", 3)
    b = _run(tmp_path, "b", 3)
    assert a["params"].keys() == b["params"].keys()
    # the randomly built parts: text encoder from a config, node table, GNN, fusion, head
    assert any("node" in k for k in a["params"]) and any("classifier" in k or "score" in k for k in a["params"])
    assert a["params"] == b["params"] and a["abs"] == b["abs"]
    timing = ("time", "elapsed", "seconds")
    strip = lambda hist: [{k: v for k, v in h.items() if not any(t in k for t in timing)} for h in hist]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert a["dev"] == b["dev"]
    c = _run(tmp_path, "c", 4)
    assert c["abs"] != a["abs"], "another seed must give another model"
