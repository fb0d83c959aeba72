"""Fine-tuning: :func:`train` (a whole run from a config) and :func:`fit` (the model on datasets).

:func:`train` builds the pipeline from a :class:`~kgfuse.tasks.config.TrainConfig`
(graph → linker → retriever → preprocessed cache → features → model,
:func:`kgfuse.tasks.pipeline.build_run`), calls :func:`fit`, then evaluates the best model
and writes the report (:mod:`kgfuse.tasks.evaluate`). :func:`fit` trains any ``nn.Module``
returning ``.loss``/``.logits`` on multiple-choice batches with the loop every kgfuse task
shares (:class:`kgfuse.tasks.loop.TrainingLoop`); what is fine-tuning's own is here:

- the data order: :class:`SeededShuffleSampler`, a pure function of (seed, epoch), so every
  process agrees on it and a resumed run sees the same order; with ``train.group_by_length``,
  :class:`LengthGroupedSampler` (the same, with batches of similar length: less padding);
- the loss (the model's cross-entropy over the choices) and the log record (``train/loss``,
  ``train/lr_lm``);
- evaluation on every eval split after every epoch (accuracy, ``gather_for_metrics``), the
  best model (by ``train.metric``) exported once to ``model/``;
- the output folder's rules: a folder holding a run is resumed or replaced, never mixed
  (:func:`resume_differences`, :func:`check_resume`, :class:`ResumeError`).

The optimisation follows QA-GNN (Yasunaga et al., 2021): AdamW with three parameter groups,
each with its own learning rate (the pretrained text encoder ``lr_lm`` 1e-5, the GNN
``lr_gnn`` 1e-3, the fusion layers + head ``lr_fusion`` 1e-3), linear warm-up over
``warmup_ratio`` of the optimiser steps then linear decay to 0, optionally the text encoder
frozen for the first ``freeze_lm_epochs`` epochs; gradient accumulation, clipping and
bf16/fp16 autocast on a GPU (see :mod:`kgfuse.tasks.loop`).

A run folder stays small: the optimiser state (twice the model's size with AdamW) is kept
only while it can serve a resume. Once a run has finished, ``last/`` drops it (unless
``train.keep_optimizer_state``); the ``checkpoint-<step>/`` folders of ``save_steps`` keep
theirs and are limited to the ``save_total_limit`` newest. Resuming
(``resume_from=<checkpoint folder>`` or ``"auto"``) restores weights, optimiser, scheduler,
RNG states and the position inside the epoch, so a resumed run ends with the same
parameters as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from .config import ConfigError, OptimConfig, TrainConfig, default_home  # noqa: F401  (default_home: re-export)
# the loop's pieces stay importable from here (kgfuse.tasks.train.make_accelerator, ...)
from .loop import (Checkpointing, LoopTask, TrainingLoop, _prune_step_checkpoints, _RunLog, _set_lm_frozen,  # noqa: F401
                   _truncate_log)
from .optim import (GNN_PREFIXES, LM_PREFIXES, _named_groups, build_param_groups, make_accelerator,  # noqa: F401
                    make_optimizer, optimizer_step, resolve_mixed_precision)

__all__ = [
    "TrainResult",
    "SeededShuffleSampler",
    "LengthGroupedSampler",
    "item_lengths",
    "build_param_groups",
    "make_accelerator",
    "make_optimizer",
    "optimizer_step",
    "fit",
    "train",
    "evaluate_accuracy",
    "format_sizes",
]

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
        wall_time: seconds of this call.
        stopped_early: the run ended by ``train.early_stopping_patience`` before its last epoch.
        finished: the run is over (False: this call stopped early, by ``stop_after_steps`` or
            ``train.stop_after_hours``, after saving a checkpoint to resume from; no final
            evaluation was made).
        sittings: one dict per call that trained this run (``from_step``, ``to_step``,
            ``seconds``, ``started``, ``source``: the code in use), resumed ones included; see
            :mod:`kgfuse.tasks.loop`.
        best_predictions: the predicted choice (index) of every question of each evaluation
            split at the best epoch, in the split's order, from the evaluation that selected it
            (``{"epoch": e, "dev": [...], ...}``); ``None`` when that epoch was reached in an
            earlier sitting of a resumed run, or with more than one process.
    """

    output_dir: Path
    best_metric: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    model_dir: Path | None = None
    wall_time: float = 0.0
    global_step: int = 0
    stopped_early: bool = False
    sittings: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = True
    model: Any = field(default=None, repr=False, compare=False)
    is_main_process: bool = True
    best_predictions: dict[str, Any] | None = None

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
            "stopped_early": self.stopped_early,
            "finished": self.finished,
            "sittings": self.sittings,
            "training_seconds": self.training_seconds,
        }

    @property
    def training_seconds(self) -> float:
        """Seconds in the training loop over all sittings (preprocessing and the final
        evaluation not included)."""
        return round(sum(float(x.get("seconds", 0.0)) for x in self.sittings), 1)


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


class LengthGroupedSampler(SeededShuffleSampler):
    """Batches of similar length in a random order that is a pure function of ``(seed, epoch)``.

    The batches of ``transformers.Trainer``'s ``group_by_length``, with fine-tuning's
    reproducibility: the permutation of :class:`SeededShuffleSampler` is cut into megabatches
    of ``batch_size * megabatch`` items; each megabatch is sorted by length (longest first,
    ties in permutation order) and cut into batches, and the batches of each megabatch are
    shuffled by a generator of the same ``(seed, epoch)``. Consecutive ``batch_size`` items
    then pad to nearly the same length; every item is still seen once per epoch, and only the
    very last batch of the epoch can be short.

    Args:
        lengths: the padded-to length of each item (:func:`item_lengths`).
        batch_size: the training loader's batch size.
        seed: as for :class:`SeededShuffleSampler`.
        megabatch: batches per megabatch (50, as in ``transformers``): larger groups pad less
            and mix less.
    """

    def __init__(self, lengths: Collection[int], batch_size: int, seed: int = 0, megabatch: int = 50) -> None:
        super().__init__(len(lengths), seed=seed)
        if batch_size < 1 or megabatch < 1:
            raise ValueError(f"batch_size and megabatch must be >= 1, got {batch_size} and {megabatch}")
        self.lengths = [int(n) for n in lengths]
        self.batch_size = int(batch_size)
        self.megabatch = int(megabatch)

    def __iter__(self) -> Iterator[int]:
        order = list(super().__iter__())
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch + 7_919)
        B, size = self.batch_size, self.batch_size * self.megabatch
        out: list[int] = []
        for start in range(0, len(order), size):
            group = sorted(order[start:start + size], key=lambda i: -self.lengths[i])
            batches = [group[j:j + B] for j in range(0, len(group), B)]
            tail = [batches.pop()] if len(batches[-1]) < B else []  # a short batch stays last
            for k in torch.randperm(len(batches), generator=g).tolist():
                out.extend(batches[k])
            for b in tail:
                out.extend(b)
        return iter(out)


def item_lengths(dataset: Dataset) -> list[int]:
    """The length each item of a multiple-choice feature dataset pads to: its longest choice's
    ``input_ids`` (the collator pads the whole batch to its longest sequence).

    Builds every item once (:class:`~kgfuse.tasks.pipeline.MCFeatureDataset` tokenises on
    access). Items must be tokenised features (``input_ids``: one list of token ids per choice).
    """
    out = []
    for i in range(len(dataset)):
        item = dataset[i]
        ids = item.get("input_ids") if isinstance(item, Mapping) else None
        if ids is None or len(ids) == 0:
            raise ValueError(f"train.group_by_length needs tokenised items with 'input_ids'; item {i} has none "
                             f"(keys: {sorted(item) if isinstance(item, Mapping) else type(item).__name__})")
        if isinstance(ids, torch.Tensor):  # already padded to one length: [C, L] or [L]
            out.append(int(ids.shape[-1]))
        else:
            out.append(max(len(x) for x in ids) if isinstance(ids[0], (list, tuple, torch.Tensor)) else len(ids))
    return out


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
# resuming a run folder


#: Settings that do not change a run's trajectory: they may differ when resuming.
RESUME_FREE = {"output_dir", "cache_dir", "base_dir", "train.eval_batch_size", "train.log_every", "train.num_workers",
               "train.save_steps", "train.save_total_limit", "train.save_best", "train.save_last", "train.metric",
               "train.keep_optimizer_state", "train.stop_after_hours", "train.eval_train_at_end",
               "data.preprocess_workers", "data.max_eval", "data.test"}


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resume_differences(recorded: Mapping[str, Any], given: Mapping[str, Any],
                       free: Collection[str] = (), defaults: Mapping[str, Any] | None = None) -> list[str]:
    """``key: recorded -> given`` for every setting that changes the trajectory of a run
    (everything but :data:`RESUME_FREE` and ``free``), between two resolved config dicts.

    ``defaults`` (a config dict of the same shape) fills the settings the recorded dict lacks:
    a run recorded before a setting existed ran with its default."""
    a, b = _flat(recorded), _flat(given)
    if defaults is not None:
        a = {**{k: v for k, v in _flat(defaults).items()
                if k not in a and not any(p.startswith(k + ".") or k.startswith(p + ".") for p in a)}, **a}
    out = []
    for k in sorted(set(a) | set(b)):
        if k in RESUME_FREE or k in free:
            continue
        if a.get(k) != b.get(k):
            out.append(f"{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return out


class ResumeError(ConfigError):
    """Resuming a run with settings that change its trajectory (see :func:`resume_differences`)."""


def check_resume(out: Path, given: Mapping[str, Any], allow_changes: bool, *, free: Collection[str] = (),
                 defaults: Mapping[str, Any] | None = None) -> list[str]:
    """Compare the settings recorded by the run in ``out`` (``config.yaml``) with ``given``
    (a resolved config dict) before resuming it: the differences that change the trajectory
    (:func:`resume_differences`), returned when ``allow_changes``, else a
    :class:`ResumeError` listing them. Used by fine-tuning and pre-training alike."""
    import yaml

    rec_path = out / "config.yaml"
    if not rec_path.is_file():
        return []
    recorded = yaml.safe_load(rec_path.read_text(encoding="utf-8")) or {}
    diffs = resume_differences(recorded, given, free, defaults)
    if diffs and not allow_changes:
        raise ResumeError(f"resuming {out} with settings that change the run ({len(diffs)}): " + "; ".join(diffs)
                          + ". Pass --allow-changes to continue with them (they are recorded), or give the recorded settings")
    return diffs


def write_run_config(out: Path, config: Mapping[str, Any], changes: list[str]) -> None:
    """Write a run's resolved settings to ``out/config.yaml`` and append the changes accepted
    on a resume (:func:`check_resume`) to ``out/config-changes.jsonl``."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
    if changes:
        with open(out / "config-changes.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.time(), "changes": changes}) + "\n")


# --------------------------------------------------------------------------------------
# the fine-tuning task on the shared loop


class _FineTuning(LoopTask):
    """Multiple-choice fine-tuning: cross-entropy over the choices; accuracy per eval split
    at every epoch end."""

    def __init__(self, sampler: SeededShuffleSampler, accelerator: Any) -> None:
        self.sampler = sampler
        self.acc = accelerator
        self.eval_loaders: dict[str, Any] = {}
        #: per split, the item order of its loader (``None``: the split's own order)
        self.eval_orders: dict[str, list[int] | None] = {}
        #: per split, the predicted choice of every item, in the split's order, at the last epoch end
        #: (single process only: gathered batches of several processes interleave)
        self.epoch_predictions: dict[str, list[int]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
        out = model(**batch)
        loss = out.loss if hasattr(out, "loss") else out["loss"]
        if loss is None:
            raise ValueError("a training batch has no labels: every training example needs one "
                             "(load the training file with labels='required')")
        return loss, out

    def log_record(self, step: int, loss: torch.Tensor, lr: float) -> dict[str, Any]:
        return {"train/loss": float(loss.detach()), "train/lr_lm": lr}

    def end_epoch(self, model: nn.Module, record: dict[str, Any]) -> None:
        single = self.acc.num_processes == 1
        preds: dict[str, list[int]] = {}
        for split, ld in self.eval_loaders.items():
            scores, labels = predict_scores(model, ld, self.acc)
            m = accuracy(scores, labels)
            record[f"{split}_accuracy"] = m["accuracy"]
            record[f"{split}_count"] = m["count"]
            if single:
                chosen = scores.argmax(-1).tolist() if scores.size else []
                order = self.eval_orders.get(split)
                if order is not None:  # loader order -> the split's order
                    in_order = [0] * len(chosen)
                    for pos, idx in enumerate(order):
                        in_order[idx] = chosen[pos]
                    chosen = in_order
                preds[split] = chosen
        self.epoch_predictions = preds if single else None


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
    """Train ``model`` and evaluate it every epoch (on :class:`~kgfuse.tasks.loop.TrainingLoop`).

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
            selection metric improves (that epoch's per-question predictions end up in
            :attr:`TrainResult.best_predictions`).
        progress: tqdm progress bars on the main process.
        export_extra: called with the exported model folder before it is moved into place
            as ``model/`` (main process), to add tokenizer and pipeline files.
    """
    t0 = time.time()
    acc = accelerator if accelerator is not None else make_accelerator(opt)
    out = Path(output_dir) if output_dir is not None else None
    from accelerate.utils import set_seed

    set_seed(opt.seed)

    eval_samplers: dict[str, Any] = {}
    if getattr(opt, "group_by_length", False):
        sampler: SeededShuffleSampler = LengthGroupedSampler(item_lengths(train_dataset), opt.batch_size, seed=opt.seed)
        # accuracy does not depend on the order: evaluate longest first, in batches of like length
        for k, ds in eval_datasets.items():
            n = item_lengths(ds)
            eval_samplers[k] = sorted(range(len(n)), key=lambda i: -n[i])
    else:
        sampler = SeededShuffleSampler(len(train_dataset), seed=opt.seed)
    # Each loader gets its own generator: starting an iterator draws a worker base seed, and
    # drawing it from the global RNG would shift the dropout masks of a resumed run.
    train_loader = DataLoader(train_dataset, batch_size=opt.batch_size, sampler=sampler, collate_fn=collate_fn,
                              num_workers=opt.num_workers, generator=torch.Generator().manual_seed(opt.seed))
    eval_loaders = {
        k: DataLoader(ds, batch_size=opt.eval_batch_size, sampler=eval_samplers.get(k), shuffle=False, collate_fn=collate_fn,
                      num_workers=opt.num_workers, generator=torch.Generator().manual_seed(opt.seed))
        for k, ds in eval_datasets.items()
        if len(ds) > 0
    }
    steps_per_epoch = math.ceil(len(train_loader) / max(1, opt.grad_accum))
    total_steps = steps_per_epoch * opt.epochs
    if opt.max_steps is not None:
        total_steps = min(total_steps, opt.max_steps)

    patience = getattr(opt, "early_stopping_patience", None)
    if patience is not None and opt.metric.removesuffix("_accuracy") not in eval_loaders:
        raise ValueError(f"train.early_stopping_patience watches train.metric {opt.metric!r}, but the run has no "
                         f"non-empty {opt.metric.removesuffix('_accuracy')!r} evaluation split "
                         f"(it has: {sorted(eval_loaders) or 'none'}): give that split (e.g. data.dev) or drop the patience")
    task = _FineTuning(sampler, acc)
    loop = TrainingLoop(model, train_loader, task, opt, total_steps=total_steps, max_epochs=opt.epochs, accelerator=acc,
                        output_dir=out, checkpointing=Checkpointing.from_optim(opt, save_steps), metric=opt.metric,
                        early_stopping_patience=patience,
                        early_stopping_threshold=getattr(opt, "early_stopping_threshold", 0.0),
                        log=logger, progress=progress)
    task.eval_loaders = {k: acc.prepare(v) for k, v in eval_loaders.items()}
    task.eval_orders = {k: eval_samplers.get(k) for k in eval_loaders}
    best_predictions: dict[str, Any] = {}

    def keep_best(best_model: nn.Module, record: dict[str, Any]) -> None:
        best_predictions.clear()
        if task.epoch_predictions:
            best_predictions.update({"epoch": record.get("epoch"), **task.epoch_predictions})
        if on_best is not None:
            on_best(best_model, record)

    loop.resume(resume_from)
    state = loop.run(stop_after_steps=stop_after_steps, export_extra=export_extra, on_best=keep_best)
    return TrainResult(
        output_dir=out if out is not None else Path("."),
        best_metric=state["best_metric"],
        best_epoch=state["best_epoch"],
        history=list(state["history"]),
        global_step=state["global_step"],
        stopped_early=bool(state.get("early_stopped")),
        sittings=[dict(x) for x in state.get("sittings", [])],
        best_predictions=best_predictions or None,
        finished=not loop.stopped,
        wall_time=time.time() - t0,
        model_dir=(out / "model") if (out is not None and opt.save_best and state["best_epoch"] is not None) else None,
        model=loop.unwrapped,
        is_main_process=acc.is_main_process,
    )


# --------------------------------------------------------------------------------------
# the whole pipeline from a config


def _check_output_folder(out: Path, config: TrainConfig, resume_from, allow_changes: bool, overwrite: bool) -> list[str]:
    """Refuse to mix two runs in one folder; returns the accepted resume changes."""
    import shutil

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
    return check_resume(out, config.resolved().to_dict(), allow_changes, defaults=TrainConfig().to_dict())


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
        write_run_config(out, run.config.resolved().to_dict(), changes)
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
    if not res.finished:  # train.stop_after_hours: this sitting is over, the run is not
        res.wall_time = time.time() - run.t0
        if acc.is_main_process:
            logger.info("run folder %s: not finished (step %d); continue it with --resume auto", out, res.global_step)
        return res
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
