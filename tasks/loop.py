"""The training loop of every kgfuse task: fine-tuning (:func:`kgfuse.tasks.train.fit`) and
ERNIE pre-training (:func:`kgfuse.tasks.pretrain.pretrain`).

A task gives the loop a model, a training loader and a :class:`LoopTask` (the loss of a
batch, what to log, how to evaluate); the loop does everything else, once, for every task:

- the optimiser: AdamW with per-part learning rates (:func:`build_param_groups`: text encoder
  ``lr_lm``, graph encoder ``lr_gnn``, fusion layers and heads ``lr_fusion``; no weight decay
  on biases and LayerNorm weights) and the linear warm-up / decay schedule
  (:func:`make_optimizer`);
- each micro-batch under ``accelerator.accumulate``: backward, gradient clipping and the
  optimiser / schedule step on the micro-batch that completes an accumulation
  (:func:`optimizer_step`); the text encoder frozen for the first ``freeze_lm_epochs``
  epochs; bf16/fp16 autocast through ``Accelerator(mixed_precision=...)``
  (:func:`make_accelerator`);
- the cadence: a log record every ``log_every`` optimiser steps, an evaluation every
  ``eval_every`` steps and/or at the end of every epoch (:class:`TrainingLoop` arguments);
- ``log.jsonl`` (and TensorBoard when installed), one record per step at most, with ``step``
  and ``time``;
- early stopping: the run ends once the selection metric has not improved for
  ``early_stopping_patience`` epochs (``transformers.EarlyStoppingCallback``'s rule);
- checkpoints (:class:`Checkpointing`): resumable ``checkpoint-<step>/`` every ``save_steps``
  (the ``save_total_limit`` newest kept), ``last/`` at every epoch end, the best model by a
  metric exported to ``model/`` (``best/`` records which epoch it is), and resuming from any
  of them (weights, optimiser, scheduler, RNG states, the position inside the epoch and the
  task's own state, :meth:`LoopTask.state_dict`), so a resumed run ends with the same
  parameters as an uninterrupted one;
- ``stop_after_hours``: a sitting ends after that many hours with a resumable checkpoint
  (:attr:`TrainingLoop.out_of_time`), the run not over;
- the sittings: each call of :meth:`TrainingLoop.run` on a run not over yet appends to
  ``state["sittings"]`` the steps it trained, its seconds, its start time, the source
  code in use (:func:`kgfuse.tasks.provenance.source_commit`) and the versions of Python,
  torch, transformers and the rest (:func:`~kgfuse.tasks.provenance.software_versions`) and
  the machine (:func:`~kgfuse.tasks.provenance.machine`), kept up to date at every checkpoint. A run trained in several sittings thus records its
  whole training time and every code version it ran on; the work done after the checkpoint a
  sitting resumed from is not counted (the result does not build on it).

It runs unchanged under ``accelerate launch --num_processes N``: model, optimiser, scheduler
(and the training loader, when the task lets the loop prepare it) go through
``accelerator.prepare``; only the main process writes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from .checkpoint import (CheckpointError, drop_optimizer_state, has_optimizer_state, load_checkpoint, resume_point,
                         save_checkpoint, save_model_folder)
from .config import OptimConfig
from .optim import (build_param_groups, make_accelerator, make_optimizer, optimizer_step,  # noqa: F401  (re-exports)
                    resolve_mixed_precision)

__all__ = [
    "LoopTask",
    "Checkpointing",
    "TrainingLoop",
    "build_param_groups",
    "make_accelerator",
    "make_optimizer",
    "optimizer_step",
    "resolve_mixed_precision",
]

logger = logging.getLogger(__name__)

#: with several processes, how often (seconds of training, about) they agree whether
#: ``train.stop_after_hours`` has passed; a single process reads its clock after every step
CLOCK_SYNC_SECONDS = 5.0


# --------------------------------------------------------------------------------------
# log.jsonl


def _log_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(line, record)`` of every record of a ``log.jsonl`` (a line cut by a crash is skipped)."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            yield line, rec


def _truncate_log(path: Path, last_step: int) -> None:
    """Keep only the records of ``log.jsonl`` up to ``last_step`` (atomically)."""
    if not path.is_file():
        return
    keep = [line for line, rec in _log_lines(path) if int(rec.get("step", 0)) <= last_step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(k + "\n" for k in keep), encoding="utf-8")
    os.replace(tmp, path)


def _read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a ``log.jsonl`` (a line cut by a crash is skipped)."""
    return [rec for _, rec in _log_lines(path)]


def _read_evaluations(path: Path) -> list[dict[str, Any]]:
    """The ``eval`` records of a ``log.jsonl``, as :attr:`TrainingLoop.evaluations` holds them."""
    return [rec["eval"] for rec in _read_log(path) if isinstance(rec.get("eval"), dict)]


class _RunLog:
    """JSON-lines log (always) and TensorBoard (when installed), main process only."""

    def __init__(self, output_dir: Path | None, enabled: bool, tensorboard: bool = True) -> None:
        self.enabled = enabled and output_dir is not None
        self.file = None
        self.tb = None
        if not self.enabled:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        self.file = (output_dir / "log.jsonl").open("a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(output_dir / "tensorboard"))
            except Exception:  # tensorboard not installed
                self.tb = None

    def log(self, record: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        rec = {"step": step, "time": time.time(), **record}
        self.file.write(json.dumps(rec) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None:
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()



# --------------------------------------------------------------------------------------
# the loop


def _set_lm_frozen(model: nn.Module, lm_params: Sequence[nn.Parameter], frozen: bool, distributed: bool) -> None:
    # In a DDP run requires_grad must not change after wrapping; gradients are dropped
    # after backward instead (see TrainingLoop). In one process, freezing also saves the backward.
    if not distributed:
        for p in lm_params:
            p.requires_grad_(not frozen)


def _prune_step_checkpoints(out: Path | None, keep: int | None) -> None:
    """Delete all but the ``keep`` newest ``checkpoint-<step>/`` folders of a run."""
    if out is None or keep is None:
        return
    import shutil

    steps = sorted((int(p.name.split("-", 1)[1]), p) for p in out.glob("checkpoint-*")
                   if p.is_dir() and p.name.split("-", 1)[1].isdigit())
    for _, p in steps[: max(0, len(steps) - max(1, keep))]:
        shutil.rmtree(p, ignore_errors=True)


class LoopTask:
    """What a task gives :class:`TrainingLoop`: override :meth:`loss`, and what else applies.

    The hooks run on every process; the loop writes what they return on the main one.
    """

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch (0-based): reshuffle the data of that epoch."""

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
        """``(loss, outputs)`` of one micro-batch (training mode)."""
        raise NotImplementedError

    def observe(self, outputs: Any, batch: Mapping[str, Any]) -> None:
        """Called after each micro-batch's step (training metrics)."""

    def log_record(self, step: int, loss: torch.Tensor, lr: float) -> dict[str, Any] | None:
        """The ``log.jsonl`` record of optimiser step ``step`` (every ``log_every`` steps);
        ``loss`` is the last micro-batch's, ``lr`` the first parameter group's."""
        return None

    def evaluate(self, model: nn.Module, step: int) -> dict[str, Any]:
        """An evaluation at optimiser step ``step`` (the ``eval_every`` / start / end cadence
        of :class:`TrainingLoop`); an empty dict when there is nothing to evaluate."""
        return {}

    def end_epoch(self, model: nn.Module, record: dict[str, Any]) -> None:
        """Add this epoch's evaluation to its record (``epoch_records`` loops)."""

    #: True when :meth:`load_state_dict` puts the training data at the checkpoint's position
    #: itself (a streamed corpus that skips consumed records without reading them into
    #: batches): the loop then iterates the loader as it is on a resume mid-epoch, instead of
    #: drawing and discarding the batches already trained on.
    resumes_data_position: bool = False

    def state_dict(self) -> dict[str, Any]:
        """The task's own state at a checkpoint (JSON-able: random generators of its data,
        the position in a streamed corpus, running meters); saved under ``"task"`` in the
        checkpoint's trainer state when not empty."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (``{}`` for a checkpoint without task state);
        called by :meth:`TrainingLoop.resume` after weights, optimiser and RNG states."""


@dataclass
class Checkpointing:
    """What :class:`TrainingLoop` writes into the output folder besides ``log.jsonl``.

    Args:
        save_steps: a resumable ``checkpoint-<step>/`` every this many optimiser steps.
        save_total_limit: keep only this many ``checkpoint-<step>/`` (newest); None: all.
        save_last: ``last/`` (resumable) at the end of every epoch.
        save_best: the best model by the loop's ``metric`` into ``model/`` (``best/`` records
            its epoch and metric, without a second copy of the weights).
        keep_optimizer_state: keep the optimiser state in ``last/`` once the run is over
            (dropped by default: it only serves a resume).
    """

    save_steps: int | None = None
    save_total_limit: int | None = 1
    save_last: bool = False
    save_best: bool = False
    keep_optimizer_state: bool = False

    @classmethod
    def from_optim(cls, opt: OptimConfig, save_steps: int | None = None) -> "Checkpointing":
        """The settings of a ``train`` section (``save_steps`` given separately)."""
        return cls(save_steps=save_steps, save_total_limit=opt.save_total_limit, save_last=opt.save_last,
                   save_best=opt.save_best, keep_optimizer_state=opt.keep_optimizer_state)


class TrainingLoop:
    """The training loop: optimiser, schedule, accumulation, clipping, cadence, log and
    checkpoints (see the module docstring); the task's part is a :class:`LoopTask`.

    Args:
        model: the model (any ``nn.Module``; ``parameter_groups()`` is used when it has one).
        train_loader: a ``DataLoader`` of training batches.
        task: the task's hooks.
        opt: optimisation settings (learning rates, warm-up, accumulation, clipping,
            ``freeze_lm_epochs``, ``log_every``).
        total_steps: optimiser steps of the run (the schedule's length; the loop stops there).
        max_epochs: stop after this many epochs (None: only ``total_steps`` ends the run).
        accelerator: an ``accelerate.Accelerator`` (made from ``opt`` when None).
        output_dir: where ``log.jsonl`` and the checkpoints go; None writes nothing.
        prepare_loader: pass ``train_loader`` through ``accelerator.prepare`` (sharding across
            processes, device placement, the exact end-of-epoch accumulation step). Without
            it, batches are moved to the device here.
        checkpointing: what to save (nothing by default).
        epoch_records: one record per epoch (mean training loss, learning rates, the task's
            :meth:`LoopTask.end_epoch` metrics) into ``state["history"]`` and ``log.jsonl``;
            the best model is chosen among them by ``metric``.
        metric: the epoch record key that selects the best model (higher is better; an epoch
            without that key, e.g. no evaluation data, counts as an improvement).
        early_stopping_patience: end the run after this many epochs in a row whose ``metric``
            is not more than ``early_stopping_threshold`` above the best before them (None:
            never). The trainer state records it (``early_stopped``), so a resume of such a
            run finds it over.
        eval_every: :meth:`LoopTask.evaluate` every this many optimiser steps (0: never),
            except at the last step; ``eval_at_start`` / ``eval_at_end``: also before the first
            step and after the last one. Evaluations go into :attr:`evaluations` and ``log.jsonl``.
        log: the task's logger (resume and epoch lines).
        progress: tqdm progress bars on the main process.
        desc: progress-bar label of a step-bounded loop.
        empty_epoch_error: the message of a ``ValueError`` raised when an epoch (not resumed
            mid-way) yields no batch; None: such an epoch is recorded like any other.
    """

    def __init__(self, model: nn.Module, train_loader: Any, task: LoopTask, opt: OptimConfig, *, total_steps: int,
                 max_epochs: int | None = None, accelerator: Any | None = None,
                 output_dir: str | os.PathLike | None = None, prepare_loader: bool = True,
                 checkpointing: Checkpointing | None = None, epoch_records: bool = True,
                 metric: str | None = None, early_stopping_patience: int | None = None,
                 early_stopping_threshold: float = 0.0, eval_every: int = 0, eval_at_start: bool = False, eval_at_end: bool = False,
                 log: logging.Logger | None = None, progress: bool = True, desc: str = "train",
                 empty_epoch_error: str | None = None) -> None:
        self.task = task
        self.opt = opt
        self.total_steps = int(total_steps)
        self.max_epochs = max_epochs
        self.acc = accelerator if accelerator is not None else make_accelerator(opt)
        self.out = Path(output_dir) if output_dir is not None else None
        self.prepare_loader = prepare_loader
        self.ckpt = checkpointing if checkpointing is not None else Checkpointing()
        self.epoch_records = epoch_records
        self.metric = metric
        self.patience = early_stopping_patience
        self.threshold = float(early_stopping_threshold)
        self.eval_every = int(eval_every or 0)
        self.eval_at_start = eval_at_start
        self.eval_at_end = eval_at_end
        self.log = log if log is not None else logger
        self.progress = progress
        self.desc = desc
        self.empty_epoch_error = empty_epoch_error
        self.is_main = self.acc.is_main_process
        self.distributed = self.acc.num_processes > 1
        self.accum = max(1, opt.grad_accum)
        #: the evaluations of the step cadence (``eval_every``, start, end), in order (on a
        #: resume, those before the checkpoint are read back from ``log.jsonl``, main process)
        self.evaluations: list[dict[str, Any]] = []

        optimizer, scheduler = make_optimizer(model, opt, self.total_steps)
        self.lm_params = [p for g in optimizer.param_groups if g["name"].startswith("lm") for p in g["params"]]
        if prepare_loader:
            model, optimizer, train_loader, scheduler = self.acc.prepare(model, optimizer, train_loader, scheduler)
        else:
            model, optimizer, scheduler = self.acc.prepare(model, optimizer, scheduler)
        self.model, self.optimizer, self.train_loader, self.scheduler = model, optimizer, train_loader, scheduler
        self.raw_optimizer = optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
        self.raw_scheduler = scheduler.scheduler if hasattr(scheduler, "scheduler") else scheduler
        #: the trainer state (saved in every checkpoint, restored by :meth:`resume`)
        self.state: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_metric": None,
                                      "best_epoch": None, "history": []}
        self.resumed = False
        self.stopped = False
        self._sitting_t0: float | None = None
        #: this sitting ended by ``opt.stop_after_hours`` (the run is not over)
        self.out_of_time = False

    # ------------------------------------------------------------------ helpers
    @property
    def unwrapped(self) -> nn.Module:
        """The model without its Accelerate / DDP wrapping."""
        return self.acc.unwrap_model(self.model)

    @property
    def step_limit(self) -> int:
        """``total_steps``, or ``opt.max_steps`` when that is lower. Read after every optimiser
        step and before every epoch, so a hook that lowers ``opt.max_steps`` during the run (a
        wall-clock guard) ends it after the current step; the schedule keeps its length."""
        m = self.opt.max_steps
        return self.total_steps if m is None else min(self.total_steps, int(m))

    def finished(self, state: Mapping[str, Any]) -> bool:
        """Whether a trainer state is the end of this run."""
        return ((self.max_epochs is not None and int(state.get("epoch", 0)) >= self.max_epochs)
                or int(state.get("global_step", 0)) >= self.step_limit or bool(state.get("early_stopped")))

    def save(self, name: str, with_optim: bool = True, with_model: bool = True) -> None:
        """Write checkpoint ``name`` (``last``, ``best``, ``checkpoint-<step>``) into the output folder."""
        if self.out is None:
            return
        self._close_sitting()
        task_state = self.task.state_dict()
        if task_state:
            self.state["task"] = task_state
        save_checkpoint(self.out / name, model=self.unwrapped if with_model else None,
                        optimizer=self.raw_optimizer if with_optim else None,
                        scheduler=self.raw_scheduler if with_optim else None, trainer_state=self.state,
                        accelerator=self.acc, extra_json=None if with_model else {"model.json": {"folder": "../model"}})

    def _open_sitting(self) -> None:
        """Start this process's record in ``state["sittings"]`` (a run not over yet only)."""
        if self.finished(self.state):
            return
        from .provenance import machine, software_versions, source_commit

        gs = int(self.state["global_step"])
        self.state.setdefault("sittings", []).append(
            {"from_step": gs, "to_step": gs, "seconds": 0.0,
             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "source": source_commit(),
             "software": software_versions(), "machine": machine(self.acc.device)})
        self._sitting_t0 = time.time()

    def _close_sitting(self) -> None:
        """Bring the current sitting's record up to now (its last step and seconds)."""
        if self._sitting_t0 is None:
            return
        cur = self.state["sittings"][-1]
        cur["to_step"] = int(self.state["global_step"])
        cur["seconds"] = round(time.time() - self._sitting_t0, 1)

    def _out_of_time(self, stop_at: float, step: int) -> bool:
        """Whether this sitting's time is up after optimiser step ``step``. With several
        processes, as soon as it is for one it is for all, so that every process stops after the
        same step; they agree by an all-reduce, which is held only every
        ``CLOCK_SYNC_SECONDS`` or so of training, not on every step: at each one they also agree
        (from their mean step time) on the step of the next, so that all of them join it."""
        late = time.time() >= stop_at
        if not self.distributed:
            return late
        if step < self._clock_sync_step:
            return False
        now = time.time()
        last_time, last_step = self._clock_sync_last
        per_step = (now - last_time) / max(1, step - last_step)
        agreed = self.acc.reduce(torch.tensor([1.0 if late else 0.0, per_step], dtype=torch.float64,
                                              device=self.acc.device), reduction="mean").tolist()
        self._clock_sync_last = (now, step)
        self._clock_sync_step = step + max(1, int(CLOCK_SYNC_SECONDS / max(agreed[1], 1e-6)))
        return agreed[0] > 0

    def export(self, extra: Callable[[Path], None] | None = None, name: str = "model") -> Path | None:
        """Write the model (``save_pretrained``) to ``<output>/<name>`` atomically, with
        ``extra(folder)`` adding files (tokenizer, pipeline description); main process."""
        if self.out is None or not self.is_main:
            return None
        return save_model_folder(self.unwrapped, self.out / name, extra)

    def resume(self, resume_from: str | os.PathLike | None) -> None:
        """Restore a checkpoint folder (``last/`` or ``checkpoint-<step>/``), or with ``"auto"``
        the latest complete one of the output folder (none: a new run)."""
        out = self.out
        if resume_from is None:
            return
        if resume_from == "auto":
            ck = resume_point(out) if out is not None else None
        else:
            ck = Path(resume_from)
        if ck is None:
            if self.is_main:
                self.log.info("--resume auto: no checkpoint in %s: starting a new run", out)
            return
        with_optim = has_optimizer_state(ck)
        state = load_checkpoint(ck, model=self.unwrapped, optimizer=self.raw_optimizer if with_optim else None,
                                scheduler=self.raw_scheduler if with_optim else None, process_index=self.acc.process_index)
        if not with_optim and not self.finished(state):
            raise CheckpointError(
                f"{ck} holds no optimiser state (a finished run drops it) and the run is not over with these "
                f"settings (epoch {state['epoch']} of {self.max_epochs}): start a new run, or keep the state with "
                "train.keep_optimizer_state: true")
        self.state = state
        self.task.load_state_dict(state.get("task") or {})
        self.resumed = True
        if self.is_main:
            self.log.info("resumed from %s: epoch %s, step %s", ck, state["epoch"], state["global_step"])

    def _evaluate(self, run_log: "_RunLog", step: int) -> dict[str, Any]:
        r = self.task.evaluate(self.unwrapped, step)
        if r:
            self.evaluations.append(r)
            run_log.log({"eval": r}, step)
        return r

    # ------------------------------------------------------------------ the loop
    def run(self, *, stop_after_steps: int | None = None, export_extra: Callable[[Path], None] | None = None,
            on_best: Callable[[nn.Module, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train until ``total_steps`` / ``max_epochs``; returns the trainer state.

        Args:
            stop_after_steps: stop (after saving a ``checkpoint-<step>/``) once this many
                optimiser steps are done: an interruption, for tests of resuming.
            export_extra: adds files to the exported best model's folder (main process).
            on_best: called (main process) with the unwrapped model and the epoch record
                when the selection metric improves.
        """
        from tqdm.auto import tqdm

        acc, opt, state, out, task = self.acc, self.opt, self.state, self.out, self.task
        is_main, accum = self.is_main, self.accum
        hours = getattr(opt, "stop_after_hours", None)
        stop_at = time.time() + 3600.0 * float(hours) if hours else None
        self.out_of_time = False
        # several processes agree on the clock at the first step, then about every CLOCK_SYNC_SECONDS
        self._clock_sync_step, self._clock_sync_last = 0, (time.time(), self.state["global_step"])
        if is_main and out is not None:
            # log.jsonl holds each step once: a resumed run drops the records written after
            # its checkpoint, a new run those of an earlier run in the same folder
            if self.resumed:
                _truncate_log(out / "log.jsonl", state["global_step"])
                # the step-cadence evaluations before the checkpoint, as an uninterrupted run has them
                self.evaluations = _read_evaluations(out / "log.jsonl")
            else:
                (out / "log.jsonl").unlink(missing_ok=True)
        run_log = _RunLog(out, is_main)
        self._open_sitting()
        step_bar = None
        if not self.epoch_records:
            step_bar = tqdm(total=self.total_steps, initial=state["global_step"], desc=self.desc,
                            disable=not (self.progress and is_main))
        ckpt, save_steps = self.ckpt, self.ckpt.save_steps
        stopped = False
        try:
            if self.eval_at_start and state["global_step"] == 0:
                self._evaluate(run_log, 0)
            epoch = state["epoch"]
            while self.max_epochs is None or epoch < self.max_epochs:
                if state["global_step"] >= self.step_limit or state.get("early_stopped"):
                    break
                ep_t0 = time.time()
                task.set_epoch(epoch)
                frozen = epoch < opt.freeze_lm_epochs
                _set_lm_frozen(self.model, self.lm_params, frozen, self.distributed)
                self.model.train()
                loader = self.train_loader
                # Accelerate's loaders call sampler.set_epoch(<their own iteration counter>) when
                # iterated: set that counter, so the order depends only on (seed, epoch).
                if hasattr(loader, "set_epoch"):
                    loader.set_epoch(epoch)
                skip = state.get("step_in_epoch", 0) * accum
                if skip and not task.resumes_data_position:
                    loader = acc.skip_first_batches(self.train_loader, skip)
                    if hasattr(loader, "set_epoch"):
                        loader.set_epoch(epoch)
                # the epoch's mean training loss covers the whole epoch, across a resume
                loss_sum = torch.tensor(float(state.get("epoch_loss_sum", 0.0)) if skip else 0.0, dtype=torch.float64)
                n_batches = int(state.get("epoch_batches", 0)) if skip else 0
                micro = skip
                seen = 0
                pbar = loader
                if step_bar is None:
                    pbar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.max_epochs}", disable=not (self.progress and is_main),
                                leave=False)
                for batch in pbar:
                    seen += 1
                    if not self.prepare_loader:
                        batch = {k: v.to(acc.device) for k, v in batch.items()}
                    with acc.accumulate(self.model):
                        loss, outputs = task.loss(self.model, batch)
                        optimizer_step(acc, self.model, self.optimizer, self.scheduler, loss, opt,
                                       drop_grads=self.lm_params if (frozen and self.distributed) else ())
                    task.observe(outputs, batch)
                    micro += 1
                    loss_sum += loss.detach().double().cpu()
                    n_batches += 1
                    if not acc.sync_gradients:
                        continue
                    state["global_step"] += 1
                    step = state["global_step"]
                    state["step_in_epoch"] = math.ceil(micro / accum)
                    state["epoch_loss_sum"] = float(loss_sum.item())
                    state["epoch_batches"] = n_batches
                    if self.progress and is_main:
                        if step_bar is not None:
                            step_bar.update(1)
                        (step_bar if step_bar is not None else pbar).set_postfix(loss=f"{loss_sum.item() / n_batches:.4f}")
                    if opt.log_every and step % opt.log_every == 0:
                        rec = task.log_record(step, loss, self.raw_scheduler.get_last_lr()[0])
                        if rec:
                            run_log.log(rec, step)
                    if self.eval_every and step % self.eval_every == 0 and step < self.total_steps:
                        self._evaluate(run_log, step)
                    if save_steps and step % save_steps == 0:
                        self.save(f"checkpoint-{step}")
                        if is_main:
                            _prune_step_checkpoints(out, keep=ckpt.save_total_limit)
                    if stop_after_steps is not None and step >= stop_after_steps:
                        stopped = True
                        break
                    if stop_at is not None and step < self.step_limit and self._out_of_time(stop_at, step):
                        stopped = self.out_of_time = True
                        break
                    if step >= self.step_limit:
                        break
                if stopped:
                    break
                if seen == 0 and not skip and self.empty_epoch_error:
                    raise ValueError(self.empty_epoch_error)
                self._end_epoch(epoch, frozen, loss_sum, n_batches, ep_t0, run_log, export_extra, on_best)
                epoch += 1
            if stopped and not (save_steps and state["global_step"] % save_steps == 0):
                self.save(f"checkpoint-{state['global_step']}")
                if is_main:
                    _prune_step_checkpoints(out, keep=ckpt.save_total_limit)
            if self.out_of_time and is_main:
                self.log.info("train.stop_after_hours: %g h passed; this sitting stops at step %d of %d "
                              "(checkpoint-%d); resume the run to continue it", float(hours), state["global_step"],
                              self.step_limit, state["global_step"])
            if not stopped and self.eval_at_end:
                self._evaluate(run_log, state["global_step"])
            if not stopped and is_main and out is not None and not ckpt.keep_optimizer_state and (out / "last").is_dir():
                # the run is over: last/ no longer needs what only a resume uses
                drop_optimizer_state(out / "last")
        finally:
            self._close_sitting()
            self._sitting_t0 = None
            if step_bar is not None:
                step_bar.close()
            run_log.close()
        self.stopped = stopped
        acc.wait_for_everyone()
        return state

    def _end_epoch(self, epoch: int, frozen: bool, loss_sum: torch.Tensor, n_batches: int, ep_t0: float,
                   run_log: "_RunLog", export_extra, on_best) -> None:
        """Close epoch ``epoch``: its record (evaluation, best model) and ``last/``."""
        acc, state, out = self.acc, self.state, self.out
        state["epoch"] = epoch + 1
        state["step_in_epoch"] = 0
        state["epoch_loss_sum"], state["epoch_batches"] = 0.0, 0
        if not self.epoch_records:
            if self.ckpt.save_last:
                self.save("last")
            return
        train_loss = acc.reduce(loss_sum.to(acc.device) / max(n_batches, 1), reduction="mean").item() if n_batches else float("nan")
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss, "global_step": state["global_step"],
                                  "lr": {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.raw_optimizer.param_groups)},
                                  "lm_frozen": frozen}
        self.task.end_epoch(self.model, record)
        record["seconds"] = time.time() - ep_t0
        state["history"].append(record)
        value = record.get(self.metric) if self.metric else None
        previous_best = state["best_metric"]
        improved = False
        if value is None and self.metric not in record:
            improved = True  # no eval data: keep the last epoch
        elif value is not None and (previous_best is None or value > previous_best):
            improved = True
        if self.patience is not None and value is not None:
            # transformers.EarlyStoppingCallback: a new best counts only when it clears the threshold
            if previous_best is None or value - previous_best > self.threshold:
                state["epochs_without_improvement"] = 0
            else:
                state["epochs_without_improvement"] = int(state.get("epochs_without_improvement", 0)) + 1
            record["epochs_without_improvement"] = state["epochs_without_improvement"]
            if state["epochs_without_improvement"] >= self.patience and not self.finished(state):
                state["early_stopped"] = True  # only a run cut short: its last epoch ends it anyway
        run_log.log({k: v for k, v in record.items() if k != "epoch"} | {"epoch": epoch + 1}, state["global_step"])
        if improved:
            state["best_metric"] = value
            state["best_epoch"] = epoch + 1
            if self.ckpt.save_best and out is not None:
                # the weights go once into model/; best/ records which epoch they are
                self.export(export_extra)
                self.save("best", with_optim=False, with_model=False)
            if on_best is not None and self.is_main:
                on_best(self.unwrapped, record)
        if self.ckpt.save_last:
            self.save("last")
        if self.is_main and self.progress:
            accs = ", ".join(f"{k}={v:.4f}" for k, v in record.items() if k.endswith("_accuracy") and v is not None)
            self.log.info("epoch %d/%d: train_loss=%.4f%s (%.1fs)", epoch + 1, self.max_epochs or 0, train_loss,
                          ", " + accs if accs else "", record["seconds"])
        if state.get("early_stopped") and self.is_main:
            self.log.info("early stopping after epoch %d: %s has not improved by more than %g for %d epoch(s); "
                          "best %.4f at epoch %s", epoch + 1, self.metric, self.threshold, self.patience,
                          state["best_metric"], state["best_epoch"])
