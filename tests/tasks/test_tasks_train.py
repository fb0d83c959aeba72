"""The training loop: parameter groups, learning, best/last checkpoints, exact resume."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import BertConfig, BertForMultipleChoice

from kgfuse.tasks.checkpoint import CheckpointError, resume_point, verify_checkpoint
from kgfuse.tasks.config import OptimConfig
from kgfuse.tasks.provenance import machine, source_commit
from kgfuse.tasks.train import LengthGroupedSampler, SeededShuffleSampler, build_param_groups, fit, item_lengths


def _model(seed=0, dropout=0.1):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                     max_position_embeddings=32, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForMultipleChoice(cfg)


class _Toy(torch.utils.data.Dataset):
    """Choice c holds token 5 + c; the answer is the choice that contains token 50 (learnable)."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(10, 40, (n, 3, 6), generator=g)
        self.labels = torch.randint(0, 3, (n,), generator=g)
        self.ids[torch.arange(n), self.labels, 2] = 50

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _collate(items):
    return {"input_ids": torch.stack([it["input_ids"] for it in items]), "labels": torch.stack([it["labels"] for it in items])}


def _opt(**kw):
    base = dict(epochs=3, batch_size=8, eval_batch_size=16, lr_lm=3e-3, lr_gnn=1e-3, lr_fusion=3e-3, warmup_ratio=0.1, seed=3,
                log_every=1, mixed_precision="no")
    base.update(kw)
    return OptimConfig(**base)


def test_sampler_is_a_function_of_seed_and_epoch():
    a, b = SeededShuffleSampler(20, seed=1), SeededShuffleSampler(20, seed=1)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(20))
    b.set_epoch(3)
    assert list(a) != list(b)


def test_param_groups_lrs_and_no_decay():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.text_encoder = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
            self.gnn = torch.nn.Linear(4, 4)
            self.head = torch.nn.Linear(4, 1)

    groups = {g["name"]: g for g in build_param_groups(M(), _opt(lr_lm=1e-5, lr_gnn=1e-3, lr_fusion=2e-3, weight_decay=0.1))}
    assert set(groups) == {"lm", "lm_no_decay", "gnn", "gnn_no_decay", "fusion", "fusion_no_decay"}
    assert groups["lm"]["lr"] == 1e-5 and groups["gnn"]["lr"] == 1e-3 and groups["fusion"]["lr"] == 2e-3
    assert len(groups["lm"]["params"]) == 1 and len(groups["lm_no_decay"]["params"]) == 3  # bias, LN weight+bias
    assert groups["lm_no_decay"]["weight_decay"] == 0.0 and groups["lm"]["weight_decay"] == 0.1

    class WithGroups(M):
        def parameter_groups(self):
            return {"lm": ["head.weight"], "gnn": [], "fusion": []}

    groups = {g["name"]: g for g in build_param_groups(WithGroups(), _opt())}
    assert [p.shape for p in groups["lm"]["params"]] == [torch.Size([1, 4])]


def test_fit_learns_keeps_best_and_logs(tmp_path):
    res = fit(_model(), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate, _opt(epochs=4), tmp_path, progress=False)
    accs = [h["dev_accuracy"] for h in res.history]
    assert len(accs) == 4 and max(accs) >= 0.9, accs
    assert res.best_metric == max(accs) and res.history[res.best_epoch - 1]["dev_accuracy"] == res.best_metric
    assert (tmp_path / "best" / "COMPLETE").is_file() and (tmp_path / "last" / "COMPLETE").is_file()
    assert not (tmp_path / "best" / "optimizer.safetensors").exists()
    # the best weights are written once, to model/; best/ only records their epoch
    assert res.model_dir == tmp_path / "model" and (tmp_path / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "best" / "model").exists()
    # the run is over: last/ keeps its weights but not the optimiser state, and still verifies
    assert not (tmp_path / "last" / "optimizer.safetensors").exists() and not (tmp_path / "last" / "scheduler.json").exists()
    verify_checkpoint(tmp_path / "last")
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any("dev_accuracy" in l for l in lines) and any("train/loss" in l for l in lines)


def test_optimizer_state_kept_on_request_and_finished_runs_resume(tmp_path):
    keep = fit(_model(), _Toy(16, 0), {"dev": _Toy(8, 1)}, _collate, _opt(epochs=1, keep_optimizer_state=True), tmp_path / "k",
               progress=False)
    assert (tmp_path / "k" / "last" / "optimizer.safetensors").is_file()
    fit(_model(), _Toy(16, 0), {"dev": _Toy(8, 1)}, _collate, _opt(epochs=1), tmp_path / "d", progress=False)
    # a finished run without optimiser state resumes as finished...
    again = fit(_model(5), _Toy(16, 0), {"dev": _Toy(8, 1)}, _collate, _opt(epochs=1), tmp_path / "d", resume_from="auto",
                progress=False)
    assert again.global_step == keep.global_step
    # ...but cannot be continued exactly: the error says so
    with pytest.raises(CheckpointError, match="no optimiser state"):
        fit(_model(), _Toy(16, 0), {"dev": _Toy(8, 1)}, _collate, _opt(epochs=2), tmp_path / "d", resume_from="auto",
            progress=False)


def test_lm_freeze_keeps_lm_weights(tmp_path):
    m = _model()
    class Wrap(torch.nn.Module):  # LM under "text_encoder.", head elsewhere
        def __init__(self, m):
            super().__init__()
            self.text_encoder = m.bert
            self.head = m.classifier

        def forward(self, input_ids, labels=None):
            flat = input_ids.view(-1, input_ids.shape[-1])
            logits = self.head(self.text_encoder(input_ids=flat).pooler_output).view(input_ids.shape[0], -1)
            loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return type("O", (), {"loss": loss, "logits": logits})()

    w = Wrap(m)
    before = {k: v.clone() for k, v in w.text_encoder.state_dict().items()}
    head_before = w.head.weight.clone()
    fit(w, _Toy(16, 0), {}, _collate, _opt(epochs=1, freeze_lm_epochs=1), None, progress=False)
    assert all(torch.equal(before[k], v) for k, v in w.text_encoder.state_dict().items())
    assert not torch.equal(head_before, w.head.weight)


def test_early_stopping_ends_the_run_once_dev_stops_rising(tmp_path):
    """The toy task is learnt within a few epochs; dev accuracy then cannot rise, and with
    patience 2 the run ends two epochs after its best, keeping the best epoch's model."""
    res = fit(_model(), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate, _opt(epochs=12, early_stopping_patience=2),
              tmp_path / "p", progress=False)
    accs = [h["dev_accuracy"] for h in res.history]
    assert res.stopped_early and len(accs) < 12, accs
    # stopped exactly when the last two epochs did not beat the best before them
    assert len(accs) == res.best_epoch + 2 and max(accs[-2:]) <= max(accs[:-2]) == res.best_metric, accs
    assert [h["epochs_without_improvement"] for h in res.history][-2:] == [1, 2]
    assert res.global_step == len(accs) * 8
    best = json.loads((tmp_path / "p" / "best" / "trainer_state.json").read_text())
    assert best["best_epoch"] == res.best_epoch
    # a finished run: last/ drops its optimiser state, and a resume finds nothing left to do
    assert not (tmp_path / "p" / "last" / "optimizer.safetensors").exists()
    again = fit(_model(5), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate, _opt(epochs=12, early_stopping_patience=2),
                tmp_path / "p", resume_from="auto", progress=False)
    assert again.stopped_early and again.global_step == res.global_step and len(again.history) == len(accs)

    # without patience the same run trains all its epochs
    full = fit(_model(), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate, _opt(epochs=len(accs) + 1), None, progress=False)
    assert not full.stopped_early and len(full.history) == len(accs) + 1
    # a run whose patience runs out in its last epoch was not stopped early
    last = fit(_model(), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate, _opt(epochs=len(accs), early_stopping_patience=2),
               None, progress=False)
    assert len(last.history) == len(accs) and not last.stopped_early


def test_early_stopping_threshold_and_its_need_for_dev_data(tmp_path):
    # a gain of at most the threshold is no improvement: stopped after 1 + patience epochs
    res = fit(_model(), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate,
              _opt(epochs=6, early_stopping_patience=1, early_stopping_threshold=1.0), None, progress=False)
    assert res.stopped_early and len(res.history) == 2
    # ...while the best model is still chosen among the epochs trained
    assert res.best_metric == max(h["dev_accuracy"] for h in res.history)
    with pytest.raises(ValueError, match=r"early_stopping_patience watches train.metric 'dev_accuracy'.*has: none"):
        fit(_model(), _Toy(16, 0), {}, _collate, _opt(epochs=2, early_stopping_patience=1), None, progress=False)


def test_an_early_stopping_run_resumed_mid_epoch_equals_uninterrupted(tmp_path):
    opt = _opt(epochs=12, batch_size=8, early_stopping_patience=1)
    ref = fit(_model(0), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate, opt, tmp_path / "a", progress=False)
    assert ref.stopped_early
    stop = ref.global_step - 3  # inside the last epoch
    fit(_model(0), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate, opt, tmp_path / "b", stop_after_steps=stop, progress=False)
    res = fit(_model(9), _Toy(64, 0), {"dev": _Toy(32, 1)}, _collate, opt, tmp_path / "b",
              resume_from=tmp_path / "b" / f"checkpoint-{stop}", progress=False)
    assert res.stopped_early and res.global_step == ref.global_step
    assert [h["dev_accuracy"] for h in res.history] == [h["dev_accuracy"] for h in ref.history]
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, ref.model.state_dict()[k]), k


@pytest.mark.parametrize("stop, accum", [(5, 1), (4, 2)])
def test_resume_mid_epoch_equals_uninterrupted(tmp_path, stop, accum):
    """A run interrupted mid-epoch and resumed from its checkpoint ends with identical weights."""
    opt = _opt(epochs=3, grad_accum=accum, batch_size=4)
    ref = fit(_model(0), _Toy(40, 0), {"dev": _Toy(8, 1)}, _collate, opt, tmp_path / "a", progress=False)
    ref_sd = {k: v.clone() for k, v in ref.model.state_dict().items()}

    part = fit(_model(0), _Toy(40, 0), {"dev": _Toy(8, 1)}, _collate, opt, tmp_path / "b", stop_after_steps=stop, progress=False)
    assert part.global_step == stop
    ck = tmp_path / "b" / f"checkpoint-{stop}"
    assert (ck / "COMPLETE").is_file()
    torch.manual_seed(123)
    res = fit(_model(9), _Toy(40, 0), {"dev": _Toy(8, 1)}, _collate, opt, tmp_path / "b", resume_from=ck, progress=False)
    assert res.global_step == ref.global_step
    assert [h["dev_accuracy"] for h in res.history] == [h["dev_accuracy"] for h in ref.history]
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, ref_sd[k]), k
    # the interrupted epoch's mean loss covers the whole epoch, not only the resumed part
    assert [h["train_loss"] for h in res.history] == pytest.approx([h["train_loss"] for h in ref.history], rel=1e-12, abs=0)
    # log.jsonl holds each step once, the same steps and losses as the uninterrupted run
    def steps(folder):
        recs = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        return [(r["step"], r.get("train/loss")) for r in recs if "train/loss" in r]
    assert steps(tmp_path / "b") == steps(tmp_path / "a")
    # the resumed run records both sittings: their steps, time and code
    assert not part.finished and res.finished and ref.finished
    assert [(x["from_step"], x["to_step"]) for x in ref.sittings] == [(0, ref.global_step)]
    assert [(x["from_step"], x["to_step"]) for x in part.sittings] == [(0, stop)]
    assert [(x["from_step"], x["to_step"]) for x in res.sittings] == [(0, stop), (stop, ref.global_step)]
    assert all(x["seconds"] >= 0 and x["source"] == source_commit() and x["started"].endswith("Z") for x in res.sittings)
    assert all(x["machine"] == machine("cpu") for x in res.sittings)
    import transformers

    assert all(x["software"]["transformers"] == transformers.__version__ and x["software"]["torch"] == torch.__version__
               for x in res.sittings)
    assert res.training_seconds == pytest.approx(sum(x["seconds"] for x in res.sittings), abs=0.11)
    # the checkpoint holds the sittings up to itself
    st = json.loads((ck / "trainer_state.json").read_text())
    assert [(x["from_step"], x["to_step"]) for x in st["sittings"]] == [(0, stop)]


def test_stop_after_hours_ends_the_sitting_with_a_checkpoint_and_resumes_exactly(tmp_path):
    """``stop_after_hours`` ends a sitting (not the run) after the step in progress, with a
    resumable checkpoint; the resumed run equals an uninterrupted one."""
    opt = _opt(epochs=2, batch_size=4)
    ref = fit(_model(0), _Toy(24, 0), {"dev": _Toy(8, 1)}, _collate, opt, tmp_path / "a", progress=False)
    short = _opt(epochs=2, batch_size=4, stop_after_hours=1e-9)  # over after the first step
    part = fit(_model(0), _Toy(24, 0), {"dev": _Toy(8, 1)}, _collate, short, tmp_path / "b", progress=False)
    assert not part.finished and part.global_step == 1 and part.history == []
    assert (tmp_path / "b" / "checkpoint-1" / "COMPLETE").is_file() and not (tmp_path / "b" / "model").exists()
    res = fit(_model(9), _Toy(24, 0), {"dev": _Toy(8, 1)}, _collate, opt, tmp_path / "b", resume_from="auto", progress=False)
    assert res.finished and res.global_step == ref.global_step
    assert [h["dev_accuracy"] for h in res.history] == [h["dev_accuracy"] for h in ref.history]
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, ref.model.state_dict()[k]), k
    assert [(x["from_step"], x["to_step"]) for x in res.sittings] == [(0, 1), (1, ref.global_step)]
    # a generous limit changes nothing
    full = fit(_model(0), _Toy(24, 0), {"dev": _Toy(8, 1)}, _collate, _opt(epochs=2, batch_size=4, stop_after_hours=5),
               tmp_path / "c", progress=False)
    assert full.finished and full.global_step == ref.global_step


def test_resume_auto_takes_the_newest_of_step_checkpoints_and_last(tmp_path):
    """A process killed after an epoch ended but before the next ``save_steps`` checkpoint
    resumes from the epoch-end ``last/``, not from the older step checkpoint, and still ends
    with the uninterrupted run's weights."""
    opt = _opt(epochs=3, batch_size=4, save_total_limit=3)  # 10 steps per epoch
    ref = fit(_model(0), _Toy(40, 0), {"dev": _Toy(8, 1)}, _collate, opt, tmp_path / "a", save_steps=8, progress=False)
    run = tmp_path / "b"
    fit(_model(0), _Toy(40, 0), {"dev": _Toy(8, 1)}, _collate, opt, run, save_steps=8, stop_after_steps=12, progress=False)
    assert {p.name for p in run.glob("checkpoint-*")} == {"checkpoint-8", "checkpoint-12"}
    shutil.rmtree(run / "checkpoint-12")  # killed at step 11: the newest resumable state is last/ (step 10)
    assert resume_point(run) == run / "last"
    res = fit(_model(9), _Toy(40, 0), {"dev": _Toy(8, 1)}, _collate, opt, run, save_steps=8, resume_from="auto",
              progress=False)
    assert [(x["from_step"], x["to_step"]) for x in res.sittings] == [(0, 10), (10, ref.global_step)]
    assert [h["dev_accuracy"] for h in res.history] == [h["dev_accuracy"] for h in ref.history]
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, ref.model.state_dict()[k]), k
    # a step checkpoint newer than last/ wins; a finished run's last/ (no optimiser state) never does
    assert resume_point(tmp_path / "a") == tmp_path / "a" / "checkpoint-24"


class _Regression(torch.utils.data.Dataset):
    def __init__(self, n):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def test_training_loop_step_cadence_accumulation_and_log(tmp_path):
    """The shared loop, step-bounded as pre-training uses it: accumulation across epoch
    boundaries, evaluation before, every N steps and after, log records per step."""
    from torch.utils.data import DataLoader

    from kgfuse.tasks.loop import LoopTask, TrainingLoop

    class Task(LoopTask):
        def __init__(self):
            self.epochs, self.observed = [], 0

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def loss(self, model, batch):
            pred = model(batch["x"]).squeeze(-1)
            return torch.nn.functional.mse_loss(pred, batch["y"]), pred

        def observe(self, outputs, batch):
            self.observed += 1

        def log_record(self, step, loss, lr):
            return {"train/mse": float(loss), "lr": lr}

        def evaluate(self, model, step):
            with torch.no_grad():
                ds = _Regression(12)
                return {"step": step, "mse": float(torch.nn.functional.mse_loss(model(ds.x).squeeze(-1), ds.y))}

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    w0 = model.weight.detach().clone()
    task = Task()
    loader = DataLoader(_Regression(12), batch_size=4)  # 3 micro-batches per epoch
    loop = TrainingLoop(model, loader, task, _opt(grad_accum=2, lr_fusion=0.1, warmup_ratio=0.0), total_steps=5,
                        output_dir=tmp_path, prepare_loader=False, epoch_records=False, eval_every=2, eval_at_start=True,
                        eval_at_end=True, progress=False)
    state = loop.run()
    # 5 optimiser steps of 2 micro-batches each = 10 micro-batches: epochs of 3, 3, 3 and 1
    assert state["global_step"] == 5 and task.observed == 10 and task.epochs == [0, 1, 2, 3] and state["epoch"] == 4
    assert [e["step"] for e in loop.evaluations] == [0, 2, 4, 5]
    assert loop.evaluations[-1]["mse"] < loop.evaluations[0]["mse"]
    assert not torch.equal(loop.unwrapped.weight, w0)
    assert loop.raw_scheduler.get_last_lr()[0] == 0.0  # linear decay to 0 over total_steps
    recs = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "train/mse" in r] == [1, 2, 3, 4, 5]
    assert [r["step"] for r in recs if "eval" in r] == [0, 2, 4, 5]
    assert state["history"] == [] and not (tmp_path / "last").exists()  # no epoch records, no checkpoints asked for
    # a new run in the same folder starts a new log
    TrainingLoop(torch.nn.Linear(4, 1), DataLoader(_Regression(12), batch_size=4), Task(), _opt(log_every=0),
                 total_steps=1, output_dir=tmp_path, epoch_records=False, progress=False).run()
    assert (tmp_path / "log.jsonl").read_text() == ""
    empty = TrainingLoop(torch.nn.Linear(4, 1), DataLoader(_Regression(0), batch_size=4), Task(), _opt(), total_steps=3,
                         prepare_loader=False, epoch_records=False, progress=False, empty_epoch_error="nothing to train on")
    with pytest.raises(ValueError, match="nothing to train on"):
        empty.run()


# --------------------------------------------------------------------------------------
# batches grouped by length (train.group_by_length)


def _padded(order, lengths, B):
    return sum(max(lengths[i] for i in order[j:j + B]) * len(order[j:j + B]) for j in range(0, len(order), B))


def test_length_grouped_sampler_pads_less_and_stays_seeded():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (103,), generator=g).tolist()
    a = LengthGroupedSampler(lengths, batch_size=4, seed=1, megabatch=5)
    b = LengthGroupedSampler(lengths, batch_size=4, seed=1, megabatch=5)
    a.set_epoch(2), b.set_epoch(2)
    order = list(a)
    assert order == list(b) and sorted(order) == list(range(103)) and len(a) == 103
    b.set_epoch(3)
    assert list(b) != order
    # each megabatch holds the items of the same stretch of the plain seeded permutation
    plain = SeededShuffleSampler(103, seed=1)
    plain.set_epoch(2)
    base = list(plain)
    for s in range(0, 103, 20):
        assert sorted(order[s:s + 20]) == sorted(base[s:s + 20])
    # batches are runs of like length: far less padding than the plain order
    assert _padded(order, lengths, 4) < 0.8 * _padded(base, lengths, 4)
    for s in range(0, 100, 4):  # full batches: within a megabatch no other batch's lengths interleave
        batch = order[s:s + 4]
        mega = order[(s // 20) * 20:(s // 20) * 20 + 20]
        lo, hi = min(lengths[i] for i in batch), max(lengths[i] for i in batch)
        assert sum(lo < lengths[i] < hi for i in mega if i not in batch) == 0
    assert order[100:] == sorted(base[100:], key=lambda i: -lengths[i])  # the short last batch stays last
    with pytest.raises(ValueError, match="batch_size and megabatch"):
        LengthGroupedSampler(lengths, batch_size=0)


def test_item_lengths_reads_the_longest_choice():
    assert item_lengths([{"input_ids": [[1, 2], [1, 2, 3]]}, {"input_ids": torch.zeros(3, 6)}, {"input_ids": [4, 5]}]) == [3, 6, 2]
    with pytest.raises(ValueError, match=r"group_by_length needs tokenised items with 'input_ids'; item 0 has none \(keys: \['question'\]\)"):
        item_lengths([{"question": "q"}])


class _VarToy(torch.utils.data.Dataset):
    """_Toy with choices cut to 3-6 tokens (token 50 stays at position 2): items of varying length."""

    def __init__(self, n, seed):
        self.base = _Toy(n, seed)

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        it = self.base[i]
        n = 3 + (i * 7) % 4
        return {"input_ids": [row[:n].tolist() for row in it["input_ids"]], "labels": it["labels"]}


def _collate_var(items):
    L = max(len(r) for it in items for r in it["input_ids"])
    ids = torch.zeros(len(items), len(items[0]["input_ids"]), L, dtype=torch.long)
    for b, it in enumerate(items):
        for c, r in enumerate(it["input_ids"]):
            ids[b, c, :len(r)] = torch.tensor(r)
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.stack([it["labels"] for it in items])}


def test_fit_grouped_by_length_learns_and_resumes_exactly(tmp_path):
    opt = _opt(epochs=3, batch_size=4, group_by_length=True)
    ref = fit(_model(0), _VarToy(40, 0), {"dev": _VarToy(12, 1)}, _collate_var, opt, tmp_path / "a", progress=False)
    plain = fit(_model(0), _VarToy(40, 0), {"dev": _VarToy(12, 1)}, _collate_var, _opt(epochs=3, batch_size=4),
                tmp_path / "p", progress=False)
    assert [h["train_loss"] for h in ref.history] != [h["train_loss"] for h in plain.history]  # other batches
    assert ref.best_metric >= 0.9, ref.history
    ref_sd = {k: v.clone() for k, v in ref.model.state_dict().items()}
    fit(_model(0), _VarToy(40, 0), {"dev": _VarToy(12, 1)}, _collate_var, opt, tmp_path / "b", stop_after_steps=13,
        progress=False)
    res = fit(_model(9), _VarToy(40, 0), {"dev": _VarToy(12, 1)}, _collate_var, opt, tmp_path / "b",
              resume_from=tmp_path / "b" / "checkpoint-13", progress=False)
    assert [h["dev_accuracy"] for h in res.history] == [h["dev_accuracy"] for h in ref.history]
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, ref_sd[k]), k


def test_fit_keeps_the_best_epochs_predictions_in_split_order(tmp_path):
    """``TrainResult.best_predictions``: each question's predicted choice at the best epoch,
    from fit's own evaluation, in the split's order, also when evaluation batches go longest
    first (``group_by_length``); a resumed run whose best epoch came before has none."""
    from torch.utils.data import DataLoader

    from kgfuse.tasks.train import accuracy, make_accelerator, predict_scores

    dev = _VarToy(12, 1)
    seen = []
    for grouped in (False, True):
        opt = _opt(epochs=1, batch_size=4, eval_batch_size=5, group_by_length=grouped)
        res = fit(_model(0), _VarToy(40, 0), {"dev": dev, "test": _VarToy(7, 2)}, _collate_var, opt, None,
                  on_best=lambda m, r: seen.append(r["epoch"]), progress=False)
        bp = res.best_predictions
        assert bp["epoch"] == res.best_epoch == 1 and len(bp["dev"]) == 12 and len(bp["test"]) == 7
        # one epoch: the model in hand is the best one; score it again in the split's order
        scores, labels = predict_scores(res.model, DataLoader(dev, batch_size=3, collate_fn=_collate_var),
                                        make_accelerator(opt))
        assert bp["dev"] == scores.argmax(-1).tolist()
        assert accuracy(scores, labels)["accuracy"] == res.history[0]["dev_accuracy"]
    assert seen == [1, 1]  # the caller's on_best still runs
    opt = _opt(epochs=3, batch_size=4)
    full = fit(_model(0), _VarToy(40, 0), {"dev": dev}, _collate_var, opt, tmp_path / "r", progress=False)
    assert full.best_predictions["epoch"] == full.best_epoch
    labels = [int(dev[i]["labels"]) for i in range(len(dev))]
    kept = sum(p == y for p, y in zip(full.best_predictions["dev"], labels)) / len(labels)
    assert kept == full.best_metric
    # resumed after the last epoch ended: no new best in this sitting, so no predictions
    again = fit(_model(0), _VarToy(40, 0), {"dev": dev}, _collate_var, opt, tmp_path / "r", resume_from="auto",
                progress=False)
    assert again.best_predictions is None and again.best_epoch == full.best_epoch
