"""Checkpoints: atomic write, marker enforcement, bit-exact resume of a tiny transformers model."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import BertConfig, BertForMultipleChoice, get_linear_schedule_with_warmup

from kgfuse.tasks.checkpoint import (
    COMPLETE,
    CheckpointError,
    drop_optimizer_state,
    is_complete,
    latest_checkpoint,
    load_checkpoint,
    resume_point,
    save_checkpoint,
)


def _model(seed):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                     max_position_embeddings=64, hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3)
    return BertForMultipleChoice(cfg)


def _setup(seed):
    m = _model(seed)
    opt = torch.optim.AdamW(
        [{"params": [p for n, p in m.named_parameters() if "bias" not in n], "weight_decay": 0.01},
         {"params": [p for n, p in m.named_parameters() if "bias" in n], "weight_decay": 0.0, "lr": 5e-3}],
        lr=1e-2, betas=(0.9, 0.98),
    )
    sch = get_linear_schedule_with_warmup(opt, 2, 8)
    return m, opt, sch


def _step(m, opt, sch, i):
    g = torch.Generator().manual_seed(1000 + i)  # the data; dropout uses the global RNG
    ids = torch.randint(0, 99, (3, 4, 7), generator=g)
    labels = torch.randint(0, 4, (3,), generator=g)
    loss = m(input_ids=ids, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    sch.step()
    opt.zero_grad()
    # something that consumes the python/numpy RNGs too
    import random

    import numpy as np

    return loss.item() + 0 * random.random() + 0 * np.random.rand()


def test_resume_matches_uninterrupted(tmp_path):
    torch.manual_seed(0)
    m, opt, sch = _setup(1)
    m.train()
    for i in range(6):
        _step(m, opt, sch, i)
    ref = {k: v.clone() for k, v in m.state_dict().items()}

    torch.manual_seed(0)
    m, opt, sch = _setup(1)
    m.train()
    for i in range(3):
        _step(m, opt, sch, i)
    ck = save_checkpoint(tmp_path / "checkpoint-3", model=m, optimizer=opt, scheduler=sch, trainer_state={"epoch": 0, "global_step": 3})
    del m, opt, sch
    torch.manual_seed(12345)  # disturb every RNG
    import random

    random.random()
    m2, opt2, sch2 = _setup(7)  # other init: everything must come from the checkpoint
    state = load_checkpoint(ck, model=m2, optimizer=opt2, scheduler=sch2)
    assert state["global_step"] == 3
    m2.train()
    for i in range(3, 6):
        _step(m2, opt2, sch2, i)
    got = m2.state_dict()
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_resume_without_rng_differs(tmp_path):
    """The RNG restore is what makes the above exact (dropout): without it the runs diverge."""
    torch.manual_seed(0)
    m, opt, sch = _setup(1)
    m.train()
    for i in range(4):
        _step(m, opt, sch, i)
    ref = {k: v.clone() for k, v in m.state_dict().items()}
    torch.manual_seed(0)
    m, opt, sch = _setup(1)
    m.train()
    for i in range(2):
        _step(m, opt, sch, i)
    ck = save_checkpoint(tmp_path / "c", model=m, optimizer=opt, scheduler=sch)
    torch.manual_seed(999)
    m2, opt2, sch2 = _setup(7)
    load_checkpoint(ck, model=m2, optimizer=opt2, scheduler=sch2, restore_rng=False)
    m2.train()
    for i in range(2, 4):
        _step(m2, opt2, sch2, i)
    assert any(not torch.equal(ref[k], v) for k, v in m2.state_dict().items())


def test_layout_marker_and_refusal(tmp_path):
    m, opt, sch = _setup(0)
    ck = save_checkpoint(tmp_path / "run" / "checkpoint-5", model=m, optimizer=opt, scheduler=sch, trainer_state={"best_metric": 0.5})
    names = {p.name for p in ck.iterdir()}
    assert {COMPLETE, "model", "optimizer.safetensors", "optimizer.json", "scheduler.json", "trainer_state.json", "rng-0.json", "rng-0.safetensors"} <= names
    assert (ck / "model" / "model.safetensors").is_file() and (ck / "model" / "config.json").is_file()
    assert not any(p.name.startswith(".tmp") for p in ck.parent.iterdir())
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pkl"))
    assert json.loads((ck / "trainer_state.json").read_text())["best_metric"] == 0.5
    # overwrite in place keeps one complete folder
    save_checkpoint(ck, model=m, trainer_state={"best_metric": 0.7})
    assert json.loads((ck / "trainer_state.json").read_text())["best_metric"] == 0.7
    assert latest_checkpoint(tmp_path / "run") == ck
    # an interrupted write (no marker) is refused with a clear error and ignored by latest_checkpoint
    half = tmp_path / "run" / "checkpoint-9"
    half.mkdir()
    (half / "trainer_state.json").write_text("{}")
    assert not is_complete(half)
    with pytest.raises(CheckpointError, match="COMPLETE"):
        load_checkpoint(half, model=m)
    assert latest_checkpoint(tmp_path / "run") == ck
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")


def test_mismatched_model_is_refused(tmp_path):
    m, _, _ = _setup(0)
    ck = save_checkpoint(tmp_path / "c", model=m)
    cfg = BertConfig(vocab_size=99, hidden_size=48, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(ck, model=BertForMultipleChoice(cfg), restore_rng=False)


def test_resume_point_takes_the_step_checkpoint_or_last_whichever_is_further(tmp_path):
    m, opt, sch = _setup(0)
    run = tmp_path / "run"
    assert resume_point(run) is None
    last = save_checkpoint(run / "last", model=m, optimizer=opt, scheduler=sch, trainer_state={"global_step": 10})
    assert resume_point(run) == last  # no step checkpoint
    ck = save_checkpoint(run / "checkpoint-8", model=m, optimizer=opt, scheduler=sch, trainer_state={"global_step": 8})
    assert resume_point(run) == last  # last/ is further along
    ck12 = save_checkpoint(run / "checkpoint-12", model=m, optimizer=opt, scheduler=sch, trainer_state={"global_step": 12})
    assert resume_point(run) == ck12
    shutil.rmtree(ck12)
    # a damaged last/ is skipped with a warning naming the file, in favour of the step checkpoint
    state = last / "trainer_state.json"
    good = state.read_text()
    state.write_text(good.replace('"global_step": 10', '"global_step": 11'))
    with pytest.warns(UserWarning, match="trainer_state.json"):
        assert resume_point(run) == ck
    state.write_text(good)
    # a finished run's last/ (no optimiser state) never outranks a step checkpoint
    drop_optimizer_state(last)
    assert resume_point(run) == ck
