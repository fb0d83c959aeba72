"""Training on Hugging Face Accelerate: one loop for every kgfuse model.

:func:`train` builds the whole pipeline from a :class:`~kgfuse.tasks.config.TrainConfig`
(graph → linker → retriever → preprocessed cache → features → model) and calls :func:`fit`,
the training loop itself, which any ``nn.Module`` returning ``.loss``/``.logits`` can use.

The loop follows QA-GNN (Yasunaga et al., 2021):

- AdamW with three parameter groups, each with its own learning rate: the pretrained text
  encoder (``lr_lm``, 1e-5), the GNN (``lr_gnn``, 1e-3) and the fusion layers + head
  (``lr_fusion``, 1e-3); no weight decay on biases and LayerNorm weights;
- linear warm-up over ``warmup_ratio`` of the optimiser steps, then linear decay to 0
  (:func:`transformers.get_linear_schedule_with_warmup`);
- optionally the text encoder frozen for the first ``freeze_lm_epochs`` epochs;
- gradient accumulation (``accelerator.accumulate``), gradient clipping, bf16/fp16 autocast
  on a GPU (``Accelerator(mixed_precision=...)``);
- evaluation on every eval split after every epoch (``gather_for_metrics``), the best
  model (by ``metric``) exported once to ``model/`` (``best/`` records its epoch and metric,
  without a second copy of the weights), the last full state kept in ``last/`` for resuming.

A run folder stays small: the optimiser state (twice the model's size with AdamW) is kept
only while it can serve a resume. Once a run has finished, ``last/`` drops it (unless
``train.keep_optimizer_state``); the ``checkpoint-<step>/`` folders of ``save_steps`` keep
theirs and are limited to the ``save_total_limit`` newest.

It runs unchanged under ``accelerate launch --num_processes N``: data loaders, model and
optimiser go through ``accelerator.prepare``, the shuffling order is a pure function of
(seed, epoch) so every process agrees on it, and only the main process writes.

Resuming (``resume_from=<checkpoint folder>``) restores weights, optimiser, scheduler, RNG
states and the position inside the epoch, so a resumed run ends with the same parameters as
an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from .checkpoint import (CheckpointError, drop_optimizer_state, has_optimizer_state, latest_checkpoint, load_checkpoint,
                         save_checkpoint, save_model_folder)
from .config import ConfigError, OptimConfig, TrainConfig, default_home

__all__ = [
    "TrainResult",
    "SeededShuffleSampler",
    "build_param_groups",
    "make_accelerator",
    "make_optimizer",
    "optimizer_step",
    "fit",
    "train",
    "evaluate_accuracy",
    "format_sizes",
]

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias", "norm.weight", "ln.weight")
LM_PREFIXES = ("text_encoder.", "lm.", "bert.", "roberta.", "electra.", "encoder.", "embeddings.")
GNN_PREFIXES = ("gnn.", "graph_encoder.", "concept_emb", "node_emb", "kg_emb")

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`fit` / :func:`train` return.

    Attributes:
        output_dir: the run folder.
        best_metric, best_epoch: best value of the selection metric and its (1-based) epoch.
        history: one dict per epoch (train loss, eval accuracies, learning rates, seconds).
        metrics: final metrics of the best model per split (``{"dev": {"accuracy": ..}}``).
        model_dir: folder of the exported best model (``from_pretrained``-able), if written.
        wall_time: seconds.
    """

    output_dir: Path
    best_metric: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    model_dir: Path | None = None
    wall_time: float = 0.0
    global_step: int = 0
    model: Any = field(default=None, repr=False, compare=False)
    is_main_process: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "metrics": self.metrics,
            "model_dir": None if self.model_dir is None else str(self.model_dir),
            "wall_time": self.wall_time,
            "global_step": self.global_step,
        }


class SeededShuffleSampler(Sampler[int]):
    """A random permutation that is a pure function of ``(seed, epoch)``.

    Every process computes the same order (Accelerate then shards the batches), and a resumed
    run sees the same order as the interrupted one. Call :meth:`set_epoch` before each epoch.
    """

    def __init__(self, num_items: int, seed: int = 0, shuffle: bool = True) -> None:
        self.num_items = int(num_items)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_items))
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.num_items, generator=g).tolist())

    def __len__(self) -> int:
        return self.num_items


# --------------------------------------------------------------------------------------
# parameter groups


def _named_groups(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Split parameters into ``lm`` / ``gnn`` / ``fusion``.

    Uses ``model.parameter_groups()`` when the model provides it (a mapping from group name
    to parameter names or ``(name, param)`` pairs; unknown group names count as ``fusion``);
    otherwise name prefixes (:data:`LM_PREFIXES`, :data:`GNN_PREFIXES`; the rest is fusion + head).
    """
    named = dict(model.named_parameters())
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {"lm": [], "gnn": [], "fusion": []}
    if hasattr(model, "parameter_groups"):
        seen: set[str] = set()
        for gname, items in model.parameter_groups().items():
            key = gname if gname in groups else ("lm" if gname in ("text", "text_encoder") else "gnn" if gname in ("graph", "graph_encoder") else "fusion")
            for it in items:
                if isinstance(it, str):
                    n, p = it, named[it]
                elif isinstance(it, tuple):
                    n, p = it
                else:  # a bare parameter
                    n = next(k for k, v in named.items() if v is it)
                    p = it
                if n in seen:
                    continue
                seen.add(n)
                groups[key].append((n, p))
        for n, p in named.items():  # anything the model forgot goes with the head
            if n not in seen:
                groups["fusion"].append((n, p))
        return groups
    for n, p in named.items():
        if n.startswith(GNN_PREFIXES) or ".gnn." in n or ".graph_encoder." in n:
            groups["gnn"].append((n, p))
        elif n.startswith(LM_PREFIXES):
            groups["lm"].append((n, p))
        else:
            groups["fusion"].append((n, p))
    return groups


def build_param_groups(model: nn.Module, opt: OptimConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups: {lm, gnn, fusion} × {decay, no decay}.

    Each group carries a ``name`` (``"lm"``, ``"lm_no_decay"``, ...) and its own ``lr``.
    Empty groups are dropped.
    """
    lrs = {"lm": opt.lr_lm, "gnn": opt.lr_gnn, "fusion": opt.lr_fusion}
    out = []
    for gname, items in _named_groups(model).items():
        decay = [p for n, p in items if not any(nd in n for nd in _NO_DECAY) and p.ndim > 1]
        no_decay = [p for n, p in items if any(nd in n for nd in _NO_DECAY) or p.ndim <= 1]
        if decay:
            out.append({"name": gname, "params": decay, "lr": lrs[gname], "weight_decay": opt.weight_decay})
        if no_decay:
            out.append({"name": f"{gname}_no_decay", "params": no_decay, "lr": lrs[gname], "weight_decay": 0.0})
    return out


# --------------------------------------------------------------------------------------
# accelerator


def resolve_mixed_precision(value: str) -> str:
    """``auto`` → ``bf16`` on a GPU that supports it, ``fp16`` on other GPUs, ``no`` on CPU."""
    if value != "auto":
        if value not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be auto, no, fp16 or bf16, not {value!r}")
        return value
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def make_accelerator(opt: OptimConfig, *, cpu: bool | None = None, find_unused_parameters: bool = False):
    """An ``accelerate.Accelerator`` for this optimiser config (fine-tuning and pre-training).

    Args:
        opt: gradient accumulation and mixed precision come from it.
        cpu: force the CPU (default: when no GPU is present).
        find_unused_parameters: DDP's option, for a model with parameters that feed no loss
            (pre-training: the entity output of the last fusion layer).
    """
    from accelerate import Accelerator

    mp = resolve_mixed_precision(opt.mixed_precision)
    kwargs: dict[str, Any] = {"gradient_accumulation_steps": max(1, opt.grad_accum), "mixed_precision": mp}
    if find_unused_parameters:
        from accelerate.utils import DistributedDataParallelKwargs

        kwargs["kwargs_handlers"] = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    if cpu is None:
        # Without a GPU, cpu=True is what makes Accelerate join the processes of
        # `accelerate launch --multi_gpu --num_processes N` (MULTI_CPU, gloo); without it each
        # process would think it is alone.
        cpu = not torch.cuda.is_available()
    if cpu:
        kwargs["cpu"] = True
    return Accelerator(**kwargs)


# --------------------------------------------------------------------------------------
# optimiser, schedule and one step: shared by fit and kgfuse.tasks.pretrain


def make_optimizer(model: nn.Module, opt: OptimConfig, total_steps: int):
    """AdamW over :func:`build_param_groups` and the linear warm-up / decay schedule over
    ``total_steps`` optimiser steps (``warmup_ratio`` of them warming up); returns
    ``(optimizer, scheduler)``."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(build_param_groups(model, opt), lr=opt.lr_fusion)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(round(opt.warmup_ratio * total_steps)), max(total_steps, 1))
    return optimizer, scheduler


def optimizer_step(acc, model: nn.Module, optimizer, scheduler, loss: torch.Tensor, opt: OptimConfig, *,
                   drop_grads: Sequence[nn.Parameter] = ()) -> None:
    """Backward of one micro-batch inside ``acc.accumulate(model)``; on the micro-batch that
    completes an accumulation, gradients are clipped to ``opt.max_grad_norm`` and the
    optimiser and schedule step (Accelerate skips the steps in between).

    ``drop_grads``: parameters whose gradients are discarded after backward (a frozen text
    encoder under DDP, where ``requires_grad`` may not change).
    """
    acc.backward(loss)
    for p in drop_grads:
        p.grad = None
    if acc.sync_gradients and opt.max_grad_norm:
        acc.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], opt.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


# --------------------------------------------------------------------------------------
# evaluation helper (used every epoch; full reports live in kgfuse.tasks.evaluate)


@torch.no_grad()
def predict_scores(model: nn.Module, loader: DataLoader, accelerator, *, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``[n, C]`` and labels ``[n]`` (-1 when unlabeled) over a prepared loader, gathered."""
    from tqdm.auto import tqdm

    model.eval()
    all_logits, all_labels = [], []
    for batch in tqdm(loader, desc="eval", disable=not (progress and accelerator.is_main_process), leave=False):
        labels = batch.get("labels")
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        out = model(**inputs)
        logits = out.logits if hasattr(out, "logits") else out["logits"]
        if labels is None:
            labels = torch.full((logits.shape[0],), -1, dtype=torch.long, device=logits.device)
        logits, labels = accelerator.gather_for_metrics((logits.float().contiguous(), labels.contiguous()))
        all_logits.append(logits.cpu())
        all_labels.append(labels.cpu())
    if not all_logits:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0,), dtype=np.int64)
    return torch.cat(all_logits).numpy(), torch.cat(all_labels).numpy()


def accuracy(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy over labelled rows (label >= 0)."""
    mask = labels >= 0
    n = int(mask.sum())
    correct = int((scores[mask].argmax(-1) == labels[mask]).sum()) if n else 0
    return {"accuracy": (correct / n) if n else None, "correct": correct, "count": n, "total": int(labels.shape[0])}


def evaluate_accuracy(model: nn.Module, loader: DataLoader, accelerator) -> dict[str, Any]:
    scores, labels = predict_scores(model, loader, accelerator)
    return accuracy(scores, labels)


# --------------------------------------------------------------------------------------
# logging


def _truncate_log(path: Path, last_step: int) -> None:
    """Keep only the records of ``log.jsonl`` up to ``last_step`` (atomically)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if isinstance(rec, dict) and int(rec.get("step", 0)) <= last_step:
            keep.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(k + "\n" for k in keep), encoding="utf-8")
    os.replace(tmp, path)


#: Settings that do not change a run's trajectory: they may differ when resuming.
RESUME_FREE = {"output_dir", "cache_dir", "base_dir", "train.eval_batch_size", "train.log_every", "train.num_workers",
               "train.save_steps", "train.save_total_limit", "train.save_best", "train.save_last", "train.metric",
               "train.keep_optimizer_state",
               "data.preprocess_workers", "data.max_eval", "data.test"}


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resume_differences(recorded: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """``key: recorded -> given`` for every setting that changes the trajectory of a run
    (everything but :data:`RESUME_FREE`), between two resolved config dicts."""
    a, b = _flat(recorded), _flat(given)
    out = []
    for k in sorted(set(a) | set(b)):
        if k in RESUME_FREE:
            continue
        if a.get(k) != b.get(k):
            out.append(f"{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return out


class ResumeError(ConfigError):
    """Resuming a run with settings that change its trajectory (see :func:`resume_differences`)."""


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
    # after backward instead (see fit). In one process, freezing also saves the backward.
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


def _finished(state: Mapping[str, Any], opt: OptimConfig) -> bool:
    """Whether a trainer state is the end of a run with these settings."""
    return int(state.get("epoch", 0)) >= opt.epochs or (opt.max_steps is not None and int(state.get("global_step", 0)) >= opt.max_steps)


def fit(
    model: nn.Module,
    train_dataset: Dataset,
    eval_datasets: Mapping[str, Dataset],
    collate_fn: Callable[[list[Any]], dict[str, torch.Tensor]],
    opt: OptimConfig,
    output_dir: str | os.PathLike | None = None,
    *,
    accelerator: Any | None = None,
    resume_from: str | os.PathLike | None = None,
    save_steps: int | None = None,
    stop_after_steps: int | None = None,
    on_best: Callable[[nn.Module, dict[str, Any]], None] | None = None,
    progress: bool = True,
    export_extra: Callable[[Path], None] | None = None,
) -> TrainResult:
    """Train ``model`` and evaluate it every epoch.

    Args:
        model: returns an object with ``.loss`` (when ``labels`` is in the batch) and ``.logits``.
        train_dataset: items for ``collate_fn``; the collated batch holds ``labels``.
        eval_datasets: ``{split name: dataset}``; accuracy on each after every epoch. The
            selection metric ``opt.metric`` is ``"<split>_accuracy"`` (default ``dev_accuracy``;
            with no eval data the last epoch is kept).
        collate_fn: list of items → dict of tensors.
        opt: optimisation settings.
        output_dir: where ``model/`` (the best model), ``best/`` (its epoch and metric),
            ``last/``, ``log.jsonl`` and ``tensorboard/`` go; ``None`` writes nothing.
        accelerator: an ``accelerate.Accelerator`` (made from ``opt`` when None).
        resume_from: a checkpoint folder (``last/`` or ``checkpoint-<step>/``), or ``"auto"``
            for the latest complete one in ``output_dir``.
        save_steps: also write a resumable ``checkpoint-<step>/`` every this many optimiser
            steps.
        stop_after_steps: stop (after saving) once this many optimiser steps are done: used to
            simulate an interruption.
        on_best: called (main process) with the unwrapped model and the epoch record when the
            selection metric improves.
        progress: tqdm progress bars on the main process.
        export_extra: called with the exported model folder before it is moved into place
            as ``model/`` (main process), to add tokenizer and pipeline files.
    """
    from tqdm.auto import tqdm

    t0 = time.time()
    acc = accelerator if accelerator is not None else make_accelerator(opt)
    out = Path(output_dir) if output_dir is not None else None
    is_main = acc.is_main_process
    distributed = acc.num_processes > 1
    from accelerate.utils import set_seed

    set_seed(opt.seed)

    sampler = SeededShuffleSampler(len(train_dataset), seed=opt.seed)
    # Each loader gets its own generator: starting an iterator draws a worker base seed, and
    # drawing it from the global RNG would shift the dropout masks of a resumed run.
    train_loader = DataLoader(train_dataset, batch_size=opt.batch_size, sampler=sampler, collate_fn=collate_fn,
                              num_workers=opt.num_workers, generator=torch.Generator().manual_seed(opt.seed))
    eval_loaders = {
        k: DataLoader(ds, batch_size=opt.eval_batch_size, shuffle=False, collate_fn=collate_fn, num_workers=opt.num_workers,
                      generator=torch.Generator().manual_seed(opt.seed))
        for k, ds in eval_datasets.items()
        if len(ds) > 0
    }
    accum = max(1, opt.grad_accum)
    steps_per_epoch = math.ceil(len(train_loader) / accum)
    total_steps = steps_per_epoch * opt.epochs
    if opt.max_steps is not None:
        total_steps = min(total_steps, opt.max_steps)

    optimizer, scheduler = make_optimizer(model, opt, total_steps)
    lm_params = [p for g in optimizer.param_groups if g["name"].startswith("lm") for p in g["params"]]

    model, optimizer, train_loader, scheduler = acc.prepare(model, optimizer, train_loader, scheduler)
    eval_loaders = {k: acc.prepare(v) for k, v in eval_loaders.items()}
    raw_optimizer = optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
    raw_scheduler = scheduler.scheduler if hasattr(scheduler, "scheduler") else scheduler

    state: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_metric": None, "best_epoch": None, "history": []}
    if resume_from is not None:
        ck = latest_checkpoint(out) if (resume_from == "auto" and out is not None) else (None if resume_from == "auto" else Path(resume_from))
        if ck is None and out is not None and resume_from == "auto" and (out / "last").is_dir():
            ck = out / "last"
        if ck is not None:
            with_optim = has_optimizer_state(ck)
            state = load_checkpoint(ck, model=acc.unwrap_model(model), optimizer=raw_optimizer if with_optim else None,
                                    scheduler=raw_scheduler if with_optim else None, process_index=acc.process_index)
            if not with_optim and not _finished(state, opt):
                raise CheckpointError(
                    f"{ck} holds no optimiser state (a finished run drops it) and the run is not over with these "
                    f"settings (epoch {state['epoch']} of {opt.epochs}): start a new run, or keep the state with "
                    "train.keep_optimizer_state: true")
            if is_main:
                logger.info("resumed from %s: epoch %s, step %s", ck, state["epoch"], state["global_step"])
        elif is_main:
            logger.info("--resume auto: no checkpoint in %s: starting a new run", out)

    if is_main and out is not None:
        # log.jsonl holds each step once: records written after the checkpoint we resume from
        # (or by an earlier run, when starting afresh) are dropped
        _truncate_log(out / "log.jsonl", state["global_step"])
    run_log = _RunLog(out, is_main)
    metric_name = opt.metric
    result = TrainResult(output_dir=out if out is not None else Path("."))

    def _save(name: str, with_optim: bool = True, with_model: bool = True) -> None:  # noqa: E306
        if out is None:
            return
        save_checkpoint(out / name, model=acc.unwrap_model(model) if with_model else None,
                        optimizer=raw_optimizer if with_optim else None, scheduler=raw_scheduler if with_optim else None,
                        trainer_state=state, accelerator=acc, extra_json=None if with_model else {"model.json": {"folder": "../model"}})

    stopped = False
    try:
        for epoch in range(state["epoch"], opt.epochs):
            if opt.max_steps is not None and state["global_step"] >= opt.max_steps:
                break
            ep_t0 = time.time()
            sampler.set_epoch(epoch)
            frozen = epoch < opt.freeze_lm_epochs
            _set_lm_frozen(model, lm_params, frozen, distributed)
            model.train()
            # Accelerate's loaders call sampler.set_epoch(<their own iteration counter>) when
            # iterated: set that counter, so the order depends only on (seed, epoch).
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)
            loader = train_loader
            skip = state.get("step_in_epoch", 0) * accum
            if skip:
                loader = acc.skip_first_batches(train_loader, skip)
                if hasattr(loader, "set_epoch"):
                    loader.set_epoch(epoch)
            # the epoch's mean training loss covers the whole epoch, across a resume
            loss_sum = torch.tensor(float(state.get("epoch_loss_sum", 0.0)) if skip else 0.0, dtype=torch.float64)
            n_batches = int(state.get("epoch_batches", 0)) if skip else 0
            micro = skip
            pbar = tqdm(loader, desc=f"epoch {epoch + 1}/{opt.epochs}", disable=not (progress and is_main), leave=False)
            for batch in pbar:
                with acc.accumulate(model):
                    out_ = model(**batch)
                    loss = out_.loss if hasattr(out_, "loss") else out_["loss"]
                    if loss is None:
                        raise ValueError("a training batch has no labels: every training example needs one "
                                         "(load the training file with labels='required')")
                    optimizer_step(acc, model, optimizer, scheduler, loss, opt,
                                   drop_grads=lm_params if (frozen and distributed) else ())
                micro += 1
                loss_sum += loss.detach().double().cpu()
                n_batches += 1
                if acc.sync_gradients:
                    state["global_step"] += 1
                    state["step_in_epoch"] = math.ceil(micro / accum)
                    state["epoch_loss_sum"] = float(loss_sum.item())
                    state["epoch_batches"] = n_batches
                    if progress and is_main:
                        pbar.set_postfix(loss=f"{loss_sum.item() / n_batches:.4f}")
                    if opt.log_every and state["global_step"] % opt.log_every == 0:
                        run_log.log({"train/loss": float(loss.detach()), "train/lr_lm": raw_scheduler.get_last_lr()[0]}, state["global_step"])
                    if save_steps and state["global_step"] % save_steps == 0:
                        _save(f"checkpoint-{state['global_step']}")
                        if is_main:
                            _prune_step_checkpoints(out, keep=opt.save_total_limit)
                    if stop_after_steps is not None and state["global_step"] >= stop_after_steps:
                        stopped = True
                        break
                    if opt.max_steps is not None and state["global_step"] >= opt.max_steps:
                        break
            if stopped:
                break
            # ---- end of epoch: evaluate, keep best, save last
            train_loss = acc.reduce(loss_sum.to(acc.device) / max(n_batches, 1), reduction="mean").item() if n_batches else float("nan")
            record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss, "global_step": state["global_step"],
                                      "lr": {g.get("name", str(i)): g["lr"] for i, g in enumerate(raw_optimizer.param_groups)},
                                      "lm_frozen": frozen}
            for split, ld in eval_loaders.items():
                m = evaluate_accuracy(model, ld, acc)
                record[f"{split}_accuracy"] = m["accuracy"]
                record[f"{split}_count"] = m["count"]
            record["seconds"] = time.time() - ep_t0
            state["history"].append(record)
            state["epoch"] = epoch + 1
            state["step_in_epoch"] = 0
            state["epoch_loss_sum"], state["epoch_batches"] = 0.0, 0
            run_log.log({k: v for k, v in record.items() if k != "epoch"} | {"epoch": epoch + 1}, state["global_step"])
            value = record.get(metric_name)
            improved = False
            if value is None and metric_name not in record:
                improved = True  # no eval data: keep the last epoch
            elif value is not None and (state["best_metric"] is None or value > state["best_metric"]):
                improved = True
            if improved:
                state["best_metric"] = value
                state["best_epoch"] = epoch + 1
                if opt.save_best and out is not None:
                    # the weights go once into model/; best/ records which epoch they are
                    if is_main:
                        save_model_folder(acc.unwrap_model(model), out / "model", export_extra)
                    _save("best", with_optim=False, with_model=False)
                if on_best is not None and is_main:
                    on_best(acc.unwrap_model(model), record)
            if opt.save_last:
                _save("last")
            if is_main and progress:
                accs = ", ".join(f"{k}={v:.4f}" for k, v in record.items() if k.endswith("_accuracy") and v is not None)
                logger.info("epoch %d/%d: train_loss=%.4f%s (%.1fs)", epoch + 1, opt.epochs, train_loss,
                            ", " + accs if accs else "", record["seconds"])
        if stopped and not (save_steps and state["global_step"] % save_steps == 0):
            _save(f"checkpoint-{state['global_step']}")
            if is_main:
                _prune_step_checkpoints(out, keep=opt.save_total_limit)
        if not stopped and is_main and out is not None and not opt.keep_optimizer_state and (out / "last").is_dir():
            # the run is over: last/ no longer needs what only a resume uses
            drop_optimizer_state(out / "last")
    finally:
        run_log.close()
    acc.wait_for_everyone()
    result.best_metric = state["best_metric"]
    result.best_epoch = state["best_epoch"]
    result.history = list(state["history"])
    result.global_step = state["global_step"]
    result.wall_time = time.time() - t0
    result.model_dir = (out / "model") if (out is not None and opt.save_best and state["best_epoch"] is not None) else None
    result.model = acc.unwrap_model(model)
    result.is_main_process = is_main
    return result


# --------------------------------------------------------------------------------------
# the whole pipeline from a config


def _check_output_folder(out: Path, config: TrainConfig, resume_from, allow_changes: bool, overwrite: bool) -> list[str]:
    """Refuse to mix two runs in one folder; returns the accepted resume changes."""
    import shutil

    import yaml

    has_run = out.is_dir() and any((out / n).exists() for n in ("log.jsonl", "last", "best", "metrics.json")) or \
        (out.is_dir() and any(out.glob("checkpoint-*")))
    if not has_run:
        return []
    if resume_from is None:
        if not overwrite:
            raise ResumeError(f"output folder {out} already holds a run: resume it (--resume auto), replace it "
                              "(--overwrite) or choose another --output")
        for n in ("last", "best", "model", "tensorboard"):
            shutil.rmtree(out / n, ignore_errors=True)
        for p in out.glob("checkpoint-*"):
            shutil.rmtree(p, ignore_errors=True)
        for n in ("log.jsonl", "metrics.json", "config-changes.jsonl", "train_result.json"):
            (out / n).unlink(missing_ok=True)
        return []
    rec_path = out / "config.yaml"
    if not rec_path.is_file():
        return []
    recorded = yaml.safe_load(rec_path.read_text(encoding="utf-8")) or {}
    diffs = resume_differences(recorded, config.resolved().to_dict())
    if diffs and not allow_changes:
        raise ResumeError(f"resuming {out} with settings that change the run ({len(diffs)}): " + "; ".join(diffs)
                          + ". Pass --allow-changes to continue with them (they are recorded), or give the recorded settings")
    return diffs


def train(config: TrainConfig, *, resume_from: str | os.PathLike | None = None, progress: bool = True,
          accelerator: Any | None = None, allow_changes: bool = False, overwrite: bool = False) -> TrainResult:
    """Train and evaluate the model described by ``config``; see :mod:`kgfuse.tasks.pipeline`.

    Writes into ``config.output_dir`` (default ``$KGFUSE_HOME/runs/<name>``): ``config.yaml``
    (resolved), ``model/`` (the best model with its tokenizer and pipeline description,
    loadable by :class:`kgfuse.tasks.inference.KGFusePredictor`; the only copy of its
    weights), ``best/`` (its epoch and metric), ``last/`` (the last epoch, for resuming;
    without optimiser state once the run is over unless ``train.keep_optimizer_state``),
    ``log.jsonl``, ``tensorboard/``, ``metrics.json`` (with ``disk``: bytes per part of the
    folder), ``predictions-<split>.jsonl`` and ``report.md``.

    An output folder that already holds a run is refused unless the run is resumed
    (``resume_from``) or ``overwrite`` is set (its checkpoints and logs are then removed).
    Resuming compares the run's recorded ``config.yaml`` with ``config``: a difference in a
    setting that changes the trajectory (:func:`resume_differences`) raises
    :class:`ResumeError` listing them, unless ``allow_changes``; the accepted changes are then
    appended to ``config-changes.jsonl`` with the step they apply from, and ``config.yaml``
    holds the new settings.
    """
    from .pipeline import build_run, default_output_dir

    out0 = config.path(config.output_dir) if config.output_dir else default_output_dir(config)
    changes = _check_output_folder(out0, config, resume_from, allow_changes, overwrite)
    acc = accelerator if accelerator is not None else make_accelerator(config.train)
    # the main process fills the preprocessing cache first; the others then read it
    with acc.main_process_first():
        run = build_run(config, progress=progress and acc.is_main_process)
    out = run.output_dir
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump(run.config.resolved().to_dict(), sort_keys=False))
        if changes:
            with open(out / "config-changes.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"time": time.time(), "changes": changes}) + "\n")
    res = fit(
        run.model,
        run.datasets["train"],
        {k: v for k, v in run.datasets.items() if k != "train"},
        run.collator,
        config.train,
        out,
        accelerator=acc,
        resume_from=resume_from,
        save_steps=config.train.save_steps,
        progress=progress,
        export_extra=run.export_extra,
    )
    # final: reload the best weights, export, evaluate with full predictions and the report
    from .evaluate import evaluate_run

    res.metrics = evaluate_run(run, res, accelerator=acc, progress=progress)
    res.wall_time = time.time() - run.t0
    if acc.is_main_process:
        (out / "train_result.json").write_text(json.dumps(res.to_dict(), indent=1))
        logger.info("run folder %s: %s", out, format_sizes(res.metrics.get("disk", {})))
    return res


def format_sizes(sizes: Mapping[str, int]) -> str:
    """``"212.0 MB (model 90.1 MB, last 90.2 MB, ...)"`` from :func:`~kgfuse.tasks.checkpoint.folder_sizes`."""
    def mb(n: int) -> str:
        return f"{n / 1e6:.1f} MB"

    parts = ", ".join(f"{k} {mb(v)}" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]) if k != "total")
    return f"{mb(sizes.get('total', 0))} ({parts})" if parts else mb(sizes.get("total", 0))
