"""Pre-training checkpoints and resuming: a run stopped mid-pass and resumed with
``resume_from="auto"`` ends with the weights and the logged losses of an uninterrupted run; a
resume with settings that change the trajectory is refused; ``save_total_limit`` bounds the
step checkpoints kept.

Real components: the bundled sample graph, the spaCy entity linker (streamed corpus with a
shuffle buffer) or a linked corpus file, the shipped tokenizer, a tiny random BERT.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kgfuse.tasks.cli import data_dir
from kgfuse.tasks.pretrain import PretrainConfig, link_corpus, pretrain
from kgfuse.tasks.train import ResumeError

SENTENCES = ["You put a plate in the cupboard.", "Milk is kept in the fridge.", "A knife is used to cut bread.",
             "The oven is hot.", "A dog can bark at a cat.", "Water is in the glass on the table."]
TINY_TEXT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
             "max_position_embeddings": 64}
STEPS = 9


def _cfg(tmp_path: Path, out: str, **train) -> PretrainConfig:
    corpus = tmp_path / "c.txt"
    if not corpus.is_file():
        corpus.write_text("\n".join(f"{s} ({i})" for i, s in enumerate(SENTENCES * 4)))
    return PretrainConfig.from_dict({
        "corpus": [{"type": "text", "path": "c.txt"}],
        "graph": {"path": str(data_dir() / "sample_kg" / "assertions.csv"), "format": "conceptnet"},
        "model": {"options": {"text_config": TINY_TEXT, "num_fusion_layers": 1, "node_dim": 8, "graph_hidden_dim": 8}},
        # a shuffle buffer smaller than the corpus: the order of a pass is a stream, not a permutation
        "data": {"eval_fraction": 0.2, "eval_every": 4, "max_eval": 8, "shuffle_buffer": 5},
        "train": {"batch_size": 4, "max_steps": STEPS, "max_length": 24, "mixed_precision": "no", "log_every": 1,
                  "lr_lm": 1e-3, "lr_gnn": 3e-3, "lr_fusion": 3e-3, "save_steps": 2, "save_total_limit": 2, **train},
        "output_dir": out,
    }, base_dir=tmp_path)


def _train_records(out: Path) -> list[dict]:
    """log.jsonl's training records without their wall-clock fields."""
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "seconds")} for r in recs if "eval" not in r]


def _evals(out: Path) -> list[dict]:
    return [json.loads(x)["eval"] for x in (out / "log.jsonl").read_text().splitlines() if '"eval"' in x]


def _checkpoints(out: Path) -> list[str]:
    return sorted((p.name for p in out.glob("checkpoint-*")), key=lambda n: int(n.split("-")[1]))


def _assert_same_run(full: Path, resumed: Path, log_every: int = 1) -> None:
    a, b = load_file(str(full / "model" / "model.safetensors")), load_file(str(resumed / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra, rb = _train_records(full), _train_records(resumed)
    assert [r["step"] for r in ra] == list(range(log_every, STEPS + 1, log_every))
    assert ra == rb  # every step's losses and accuracies, before and after the interruption
    assert _evals(full) == _evals(resumed)
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (full, resumed))
    assert ma["final"] == mb["final"] and ma["initial"] == mb["initial"] and ma["global_step"] == mb["global_step"] == STEPS
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in ma["train_log"]] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in mb["train_log"]]
    assert ma["data"]["train_linking"] == mb["data"]["train_linking"]


@pytest.mark.parametrize("stop", [3, 6, 8])
def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path, stop):
    """Stopped in the first pass over the corpus (3), at its last batch (6: 22 training
    sequences, batches of 4) or in the second pass (8), then resumed: same weights, same
    logged losses, same held-out metrics."""
    full = pretrain(_cfg(tmp_path, "full"), progress=False)
    assert full.global_step == STEPS
    # the uninterrupted run kept only the 2 newest step checkpoints
    assert _checkpoints(tmp_path / "full") == ["checkpoint-6", "checkpoint-8"]

    part = pretrain(_cfg(tmp_path, "part"), progress=False, stop_after_steps=stop)
    out = tmp_path / "part"
    assert part.global_step == stop and not (out / "model").exists() and not (out / "metrics.json").exists()
    assert _checkpoints(out) == ([f"checkpoint-{stop - 1}", f"checkpoint-{stop}"] if stop % 2 else
                                 [f"checkpoint-{stop - 2}", f"checkpoint-{stop}"])
    st = json.loads((out / f"checkpoint-{stop}" / "trainer_state.json").read_text())
    task = st["task"]
    assert set(task) >= {"data", "collator", "meter", "linking"} and task["data"]["records"] > 0
    assert task["data"] == {3: {"epoch": 0, "records": 12, "sequences": 12},
                            6: {"epoch": 0, "records": 22, "sequences": 22},
                            8: {"epoch": 1, "records": 8, "sequences": 8}}[stop]

    res = pretrain(_cfg(tmp_path, "part"), progress=False, resume_from="auto")
    assert res.global_step == STEPS
    _assert_same_run(tmp_path / "full", out)
    assert _checkpoints(out) == ["checkpoint-6", "checkpoint-8"]


def test_resume_from_a_linked_corpus_with_accumulation_is_exact(tmp_path):
    """The same from a linked corpus file (a permutation per pass), with gradient accumulation,
    resumed from a named checkpoint folder in the middle of a log interval (the training meter
    of steps 4-6 spans the interruption)."""
    lc = link_corpus(_cfg(tmp_path, "x"), progress=False)
    linked = lc.save(tmp_path / "linked.jsonl.gz")
    kw = dict(grad_accum=2, batch_size=2, save_total_limit=None, log_every=3)
    pretrain(_cfg(tmp_path, "full", **kw), linked=linked, progress=False)
    pretrain(_cfg(tmp_path, "part", **kw), linked=linked, progress=False, stop_after_steps=5)
    out = tmp_path / "part"
    assert _checkpoints(out) == ["checkpoint-2", "checkpoint-4", "checkpoint-5"]  # no limit: all kept
    pretrain(_cfg(tmp_path, "part", **kw), linked=linked, progress=False, resume_from=out / "checkpoint-4")
    _assert_same_run(tmp_path / "full", out, log_every=3)


def test_resume_with_other_trajectory_settings_is_refused(tmp_path, capsys):
    pretrain(_cfg(tmp_path, "part"), progress=False, stop_after_steps=2)
    with pytest.raises(ResumeError) as ei:
        pretrain(_cfg(tmp_path, "part", lr_lm=5e-4, batch_size=2), progress=False, resume_from="auto")
    msg = str(ei.value)
    assert "train.lr_lm: 0.001 -> 0.0005" in msg and "train.batch_size: 4 -> 2" in msg and "--allow-changes" in msg
    # the same from the command line: one message, exit status 2
    from kgfuse.tasks.cli import main

    rc = main(["pretrain", "--config", str(tmp_path / "part" / "config.yaml"), "--output", str(tmp_path / "part"),
               "--resume", "auto", "--set", "train.lr_lm=0.0005", "--quiet"])
    assert rc == 2 and "train.lr_lm: 0.001 -> 0.0005" in capsys.readouterr().err
    # the refused resume left the run as it was
    assert _checkpoints(tmp_path / "part") == ["checkpoint-2"]
    # settings that change only logging, evaluation or checkpointing may differ
    res = pretrain(_cfg(tmp_path, "part", log_every=3, save_total_limit=1), progress=False, resume_from="auto",
                   stop_after_steps=4)
    assert res.global_step == 4 and _checkpoints(tmp_path / "part") == ["checkpoint-4"]
    # accepted changes are recorded
    pretrain(_cfg(tmp_path, "part", lr_lm=5e-4), progress=False, resume_from="auto", allow_changes=True,
             stop_after_steps=5)
    changes = [json.loads(x) for x in (tmp_path / "part" / "config-changes.jsonl").read_text().splitlines()]
    assert changes[-1]["changes"] == ["train.lr_lm: 0.001 -> 0.0005"]


def test_a_new_run_replaces_the_checkpoints_of_an_earlier_one(tmp_path):
    pretrain(_cfg(tmp_path, "part"), progress=False, stop_after_steps=4)
    assert _checkpoints(tmp_path / "part") == ["checkpoint-2", "checkpoint-4"]
    pretrain(_cfg(tmp_path, "part", save_steps=3), progress=False, stop_after_steps=3)
    assert _checkpoints(tmp_path / "part") == ["checkpoint-3"]


def test_stop_after_hours_ends_a_pretraining_sitting_and_the_resume_is_exact(tmp_path):
    """``train.stop_after_hours`` ends a pre-training sitting after its first step with a
    checkpoint and no model; a resume without the limit (not a trajectory setting) gives the
    uninterrupted run."""
    pretrain(_cfg(tmp_path, "full"), progress=False)
    part = pretrain(_cfg(tmp_path, "part", stop_after_hours=1e-9), progress=False)
    out = tmp_path / "part"
    assert not part.finished and part.global_step == 1
    assert "checkpoint-1" in _checkpoints(out) and not (out / "model").exists() and not (out / "metrics.json").exists()
    res = pretrain(_cfg(tmp_path, "part"), progress=False, resume_from="auto")
    assert res.finished and res.global_step == STEPS
    _assert_same_run(tmp_path / "full", out)
