"""Resume means the same run: an output folder holds one run, a resume with settings that change
the trajectory is refused with the differences listed (or accepted and recorded on request),
and log.jsonl holds each step once."""

from __future__ import annotations

import json

import pytest

from kgfuse.tasks.cli import data_dir
from kgfuse.tasks.config import TrainConfig
from kgfuse.tasks.train import ResumeError, _truncate_log, resume_differences, train

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}


def _cfg(out, cache, **train_kw):
    d = data_dir()
    return TrainConfig.from_dict({
        "data": {"format": "csqa", "train": str(d / "sample_csqa/train.jsonl"), "dev": str(d / "sample_csqa/dev.jsonl"),
                 "max_train": 16},
        "graph": {"path": str(d / "sample_kg/assertions.csv")},
        "retriever": {"type": "path", "max_hops": 2, "max_paths": 10},
        "model": {"options": {"text_config": TINY, "num_fusion_layers": 1, "node_dim": 16, "graph_hidden_dim": 16}},
        "train": {"epochs": 1, "batch_size": 8, "max_length": 40, "mixed_precision": "no", "log_every": 1, **train_kw},
        "output_dir": str(out), "cache_dir": str(cache),
    })


def test_one_run_per_folder_and_checked_resume(tmp_path, capsys):
    out, cache = tmp_path / "run", tmp_path / "cache"
    train(_cfg(out, cache), progress=False)
    # a second run into the same folder is refused...
    with pytest.raises(ResumeError, match="already holds a run: resume it"):
        train(_cfg(out, cache), progress=False)
    # ...a resume with other trajectory settings lists every difference...
    with pytest.raises(ResumeError) as ei:
        train(_cfg(out, cache, batch_size=4, seed=7), resume_from="auto", progress=False)
    msg = str(ei.value)
    assert "train.batch_size: 8 -> 4" in msg and "train.seed: 42 -> 7" in msg and "(2)" in msg
    # ...settings that do not change the trajectory may differ
    train(_cfg(out, cache, eval_batch_size=3), resume_from="auto", progress=False)
    # ...and --allow-changes accepts and records them
    train(_cfg(out, cache, batch_size=4), resume_from="auto", allow_changes=True, progress=False)
    rec = [json.loads(line) for line in (out / "config-changes.jsonl").read_text().splitlines()]
    assert rec[-1]["changes"] == ["train.batch_size: 8 -> 4"]
    assert "batch_size: 4" in (out / "config.yaml").read_text()
    # overwrite starts afresh: one run's steps in log.jsonl
    train(_cfg(out, cache), overwrite=True, progress=False)
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [s for s, line in zip(steps, (out / "log.jsonl").read_text().splitlines()) if "train/loss" in line]
    assert losses == [1, 2] and not (out / "config-changes.jsonl").exists()


def test_resume_auto_without_checkpoint_says_so(tmp_path, caplog):
    with caplog.at_level("INFO", logger="kgfuse"):
        train(_cfg(tmp_path / "fresh", tmp_path / "cache"), resume_from="auto", progress=True)
    assert any("no checkpoint in" in r.getMessage() and r.name == "kgfuse.tasks.train" for r in caplog.records)


def test_truncate_log_keeps_each_step_once(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text("".join(json.dumps({"step": s, "train/loss": 1.0}) + "\n" for s in (1, 2, 3, 4)) + '{"step": 5, "tr')
    _truncate_log(p, 2)
    assert [json.loads(line)["step"] for line in p.read_text().splitlines()] == [1, 2]


def test_resume_differences_ignores_bookkeeping():
    a = {"train": {"batch_size": 8, "eval_batch_size": 16, "lr_lm": 1e-5}, "output_dir": "/a", "model": {"options": {"node_dim": 16}}}
    b = {"train": {"batch_size": 8, "eval_batch_size": 64, "lr_lm": 2e-5}, "output_dir": "/b", "model": {"options": {"node_dim": 32}}}
    assert resume_differences(a, b) == ["model.options.node_dim: 16 -> 32", "train.lr_lm: 1e-05 -> 2e-05"]


def test_a_setting_the_recorded_run_lacks_counts_as_its_default():
    import copy

    from kgfuse.tasks.config import TrainConfig

    defaults = TrainConfig().to_dict()
    given = copy.deepcopy(defaults)
    given["model"]["options"] = {"node_dim": 16}
    recorded = copy.deepcopy(given)
    del recorded["train"]["group_by_length"]        # a run recorded before the setting existed
    assert resume_differences(recorded, given) == ["train.group_by_length: None -> False"]
    assert resume_differences(recorded, given, defaults=defaults) == []
    given["train"]["group_by_length"] = True
    assert resume_differences(recorded, given, defaults=defaults) == ["train.group_by_length: False -> True"]
    given["model"]["options"] = {"node_dim": 32}    # a nested section is compared key by key, not as its default {}
    assert resume_differences(recorded, given, defaults=defaults) == ["model.options.node_dim: 16 -> 32",
                                                                       "train.group_by_length: False -> True"]


def test_a_run_in_two_sittings_by_stop_after_hours(tmp_path, capsys):
    """``train.stop_after_hours`` ends a sitting with a checkpoint and no final evaluation;
    ``--resume auto`` finishes the run even without the limit (it is not a trajectory
    setting), and the finished run records both sittings."""
    from kgfuse.tasks.cli import main

    out, cache = tmp_path / "run", tmp_path / "cache"
    assert main(["train", "--config", str(_write(tmp_path, _cfg(out, cache))), "-q",
                 "--set", "train.stop_after_hours=1e-9"]) == 0
    printed = capsys.readouterr().out
    assert "not finished: this sitting stopped at step 1" in printed and "--resume auto" in printed
    assert (out / "checkpoint-1" / "COMPLETE").is_file()
    assert not (out / "metrics.json").exists() and not (out / "model").exists()
    res = train(_cfg(out, cache), resume_from="auto", progress=False)
    assert res.finished and res.global_step == 2
    m = json.loads((out / "metrics.json").read_text())
    assert [(x["from_step"], x["to_step"]) for x in m["sittings"]] == [(0, 1), (1, 2)]
    assert m["timings"]["train_all_sittings"] == pytest.approx(sum(x["seconds"] for x in m["sittings"]), abs=0.11)
    assert "Trained in 2 sittings" in (out / "report.md").read_text()
    assert json.loads((out / "train_result.json").read_text())["finished"] is True


def _write(folder, cfg):
    import yaml

    p = folder / "config.yaml"
    p.write_text(yaml.safe_dump(cfg.to_dict()))
    return p


def test_stop_after_hours_with_two_processes_stops_both_after_the_same_step(tmp_path):
    """Two CPU processes (``accelerate launch``, gloo) agree on the clock: both end the sitting
    after step 1 with one checkpoint holding each process's RNG state, and the resume with two
    processes finishes the run."""
    import os
    import socket
    import subprocess
    import sys

    out, cache = tmp_path / "run", tmp_path / "cache"
    cfg = _write(tmp_path, _cfg(out, cache, batch_size=4))  # 16 questions / (4 x 2 processes): 2 steps

    def launch(*extra):
        with socket.socket() as s:  # a free port for the processes' rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port), "-m", "kgfuse.tasks.cli", "train", "--config", str(cfg), "-q", *extra]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)

    first = launch("--set", "train.stop_after_hours=1e-9")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "not finished: this sitting stopped at step 1" in first.stdout
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-1"]
    assert {p.stem for p in (out / "checkpoint-1").glob("rng-*.json")} == {"rng-0", "rng-1"}
    second = launch("--resume", "auto")
    assert second.returncode == 0, second.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert [(x["from_step"], x["to_step"]) for x in m["sittings"]] == [(0, 1), (1, 2)]


def test_final_evaluation_without_the_training_split(tmp_path):
    """``train.eval_train_at_end: false`` skips scoring the training split at the end; dev is
    scored as in a run with it, to the same predictions."""
    cache = tmp_path / "cache"
    full = train(_cfg(tmp_path / "full", cache), progress=False)
    lean = train(_cfg(tmp_path / "lean", cache, eval_train_at_end=False), progress=False)
    assert set(full.metrics["splits"]) == {"train", "dev"} and set(lean.metrics["splits"]) == {"dev"}
    assert (tmp_path / "full" / "predictions-train.jsonl").is_file()
    assert not (tmp_path / "lean" / "predictions-train.jsonl").exists()
    assert lean.metrics["splits"]["dev"] == full.metrics["splits"]["dev"]
    assert ((tmp_path / "lean" / "predictions-dev.jsonl").read_text()
            == (tmp_path / "full" / "predictions-dev.jsonl").read_text())
    # not a trajectory setting: resuming the finished run with it changed is accepted
    train(_cfg(tmp_path / "lean", cache), resume_from="auto", progress=False)
