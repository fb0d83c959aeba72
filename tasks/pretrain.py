r"""ERNIE knowledgeable pre-training: ``kgfuse pretrain`` and :func:`pretrain`.

Continued pre-training of the fused model's text encoder, graph encoder and fusion layers
on any text corpus (:mod:`kgfuse.kg.corpora`: plain text, jsonl, WordNet glosses,
OpenBookQA facts), linked to a knowledge graph with the project's
:class:`~kgfuse.kg.linking.EntityLinker`. Objectives (Zhang et al., ERNIE, ACL 2019):

- **MLM** (Devlin et al., 2019): ``mlm_probability`` (15%) of the non-special tokens are
  selected; of those 80% become ``[MASK]``, 10% a random token, 10% stay; the model
  predicts the original token at every selected position.
- **dEA** (denoising entity auto-encoder): each token-entity alignment (the first sub-token
  of a mention and the mention's concept) is, independently, replaced by a random entity of
  the graph with probability ``dea_replace`` (5%), removed (the token gets no entity; the
  entity is dropped from the input when no other token mentions it) with probability
  ``dea_mask`` (15%), and kept otherwise (80%). From the final state of each aligned token
  the model predicts its original entity among the sequence's entities (softmax over the
  candidates; see :mod:`kgfuse.fusion.pretraining`). With ``dea_predict="all"`` (ERNIE)
  every alignment is supervised, with ``"corrupted"`` only the replaced and removed ones.

Loss: ``mlm_weight * L_mlm + dea_weight * L_dEA``. A slice of the corpus, chosen by a hash
of each record id (``data.eval_fraction``, at most ``data.max_eval`` records), is held out;
MLM loss and dEA accuracy on it (overall, and separately on kept / removed / replaced
alignments, next to the chance level ``mean(1 / #candidates)``) are measured every
``data.eval_every`` steps and at the end.

Output folder: ``model/`` (the pre-trained model with its tokenizer: give it to
``kgfuse train`` as ``model.init_from``), ``metrics.json``, ``report.md``, ``curves.png``
(MLM loss and dEA accuracy), ``log.jsonl``, ``config.yaml``, and with ``train.save_steps``
the resumable ``checkpoint-<step>/`` folders (the ``train.save_total_limit`` newest).

Checkpoints and resuming: a ``checkpoint-<step>/`` holds what an exact continuation needs:
weights, optimiser and schedule, the step, the python / numpy / torch RNG states, the
masking collator's generator, the position in the streamed corpus (the pass and the records
read in it; a resume skips those records without linking them again) and the training
meter of the current log interval. ``pretrain(config, resume_from="auto")`` (``kgfuse
pretrain --resume auto``) continues from the newest one and ends with the same weights and
the same logged losses as an uninterrupted run (single process; the corpus is read by the
training process itself, ``num_workers=0``). Resuming compares the run's recorded
``config.yaml`` with the given settings like fine-tuning
(:func:`kgfuse.tasks.train.check_resume`, plus ``data.eval_every`` and ``data.max_eval``,
which change only the evaluation): a difference that changes the trajectory raises
:class:`~kgfuse.tasks.train.ResumeError` unless ``allow_changes``. A run started without
``resume_from`` in a folder holding one replaces it (its checkpoints are removed).

The run is fine-tuning's loop (:class:`kgfuse.tasks.loop.TrainingLoop`: optimiser and
schedule, accumulation, clipping, the log and evaluation cadence, ``log.jsonl``, the model
export) with pre-training's objective, data and held-out metrics as its
:class:`~kgfuse.tasks.loop.LoopTask`. The model comes from the one builder
(:func:`kgfuse.tasks.pipeline.build_model` with ``head="pretraining"``), the configuration
from the one loader (:mod:`kgfuse.tasks.pretrain_config`). The data (linking, held-out
split, masking and corruption) is in :mod:`kgfuse.tasks.pretrain_data`; its names are
re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch.utils.data import DataLoader

from .checkpoint import CheckpointError
from .config import ConfigError, default_home
from .loop import Checkpointing, LoopTask, TrainingLoop, _read_log, make_accelerator
from .pretrain_config import ObjectiveConfig, PretrainConfig, PretrainDataConfig, load_pretrain_config
from .pretrain_data import (KIND_KEPT, KIND_MASKED, KIND_NAMES, KIND_REPLACED, LinkedCorpus,  # noqa: F401  (re-exports)
                            LinkedFeatureDataset, LinkedTextDataset, LinkingStats, PretrainingCollator, _linked_text_datasets,
                            held_out, link_and_tokenise, link_corpus, load_pretrain_graph, tokenizer_fingerprint)

__all__ = [
    "ObjectiveConfig",
    "PretrainDataConfig",
    "PretrainConfig",
    "load_pretrain_config",
    "LinkedTextDataset",
    "PretrainingCollator",
    "load_pretrain_graph",
    "PretrainResult",
    "pretrain",
    "evaluate_pretraining",
    "LinkedCorpus",
    "LinkedFeatureDataset",
    "link_corpus",
    "tokenizer_fingerprint",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# metrics


class _Meter:
    """Sums for MLM loss/accuracy and dEA loss/accuracy (overall and by alignment kind)."""

    def __init__(self) -> None:
        self.s: dict[str, float] = {}

    def add(self, k: str, v: float) -> None:
        self.s[k] = self.s.get(k, 0.0) + float(v)

    def update(self, out, batch: Mapping[str, torch.Tensor]) -> None:
        self.add("batches", 1)
        if out.mlm_loss is not None and out.mlm_logits is not None and out.mlm_logits.shape[0]:
            m = out.mlm_logits.shape[0]
            lab = batch["mlm_labels"].reshape(-1)
            lab = lab[lab != -100]
            self.add("mlm_loss_sum", float(out.mlm_loss.detach()) * m)
            self.add("mlm_count", m)
            self.add("mlm_correct", int((out.mlm_logits.argmax(-1) == lab).sum()))
        if out.dea_scores is not None and out.dea_scores.shape[0]:
            a = out.dea_scores.shape[0]
            pred = out.dea_scores.argmax(-1)
            ok = pred == batch["dea_target"]
            self.add("dea_loss_sum", float(out.dea_loss.detach()) * a)
            self.add("dea_count", a)
            self.add("dea_correct", int(ok.sum()))
            n_cand = torch.isfinite(out.dea_scores).sum(-1).clamp(min=1).float()
            self.add("dea_chance_sum", float((1.0 / n_cand).sum()))
            kind = batch["dea_kind"]
            for k, name in KIND_NAMES.items():
                sel = kind == k
                self.add(f"dea_{name}_count", int(sel.sum()))
                self.add(f"dea_{name}_correct", int(ok[sel].sum()))

    def result(self) -> dict[str, float | None]:
        s = self.s
        div = lambda a, b: (s.get(a, 0.0) / s[b]) if s.get(b) else None  # noqa: E731
        r: dict[str, float | None] = {
            "mlm_loss": div("mlm_loss_sum", "mlm_count"),
            "mlm_accuracy": div("mlm_correct", "mlm_count"),
            "dea_loss": div("dea_loss_sum", "dea_count"),
            "dea_accuracy": div("dea_correct", "dea_count"),
            "dea_chance": div("dea_chance_sum", "dea_count"),
            "mlm_count": int(s.get("mlm_count", 0)),
            "dea_count": int(s.get("dea_count", 0)),
        }
        for name in KIND_NAMES.values():
            r[f"dea_{name}_accuracy"] = div(f"dea_{name}_correct", f"dea_{name}_count")
            r[f"dea_{name}_count"] = int(s.get(f"dea_{name}_count", 0))
        return r


_METRIC_ONLY = ("dea_kind",)


def _model_inputs(batch: Mapping[str, torch.Tensor], ob: ObjectiveConfig) -> dict[str, Any]:
    inp = {k: v for k, v in batch.items() if k not in _METRIC_ONLY}
    inp["mlm_weight"] = ob.mlm_weight
    inp["dea_weight"] = ob.dea_weight
    if ob.mlm_weight == 0:
        inp.pop("mlm_labels", None)
    return inp


@torch.no_grad()
def evaluate_pretraining(model, features: Sequence[Mapping[str, Any]], collator: PretrainingCollator, ob: ObjectiveConfig,
                         *, batch_size: int = 32, device: Any = None, seed: int = 1234) -> dict[str, Any]:
    """MLM loss/accuracy and dEA accuracy on held-out features, with a fixed masking seed
    (the same corruption at every evaluation)."""
    was_training = model.training
    model.eval()
    collator.reset(seed)
    meter = _Meter()
    for i in range(0, len(features), batch_size):
        batch = collator(features[i:i + batch_size])
        if device is not None:
            batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**_model_inputs(batch, ob))
        meter.update(out, batch)
    collator.reset()
    if was_training:
        model.train()
    return meter.result()



# --------------------------------------------------------------------------------------
# the run


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns (also written as ``metrics.json``)."""

    output_dir: Path
    model_dir: Path
    global_step: int = 0
    wall_time: float = 0.0
    final: dict[str, Any] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_log: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: the run is over (False: this call stopped early, by ``stop_after_steps`` or
    #: ``train.stop_after_hours``, after saving a checkpoint to resume from)
    finished: bool = True
    model: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "model_dir": str(self.model_dir), "global_step": self.global_step,
                "wall_time": self.wall_time, "initial": self.initial, "final": self.final, "history": self.history,
                "train_log": self.train_log, "data": self.data}


def _count_steps(ds: LinkedTextDataset, cfg: PretrainConfig) -> int:
    opt = cfg.train
    if opt.max_steps is not None:
        return int(opt.max_steps)
    n = sum(1 for _ in ds.records())
    per_epoch = math.ceil(n / opt.batch_size / max(1, opt.grad_accum))
    return max(1, per_epoch * opt.epochs)


class _Pretraining(LoopTask):
    """ERNIE pre-training on the shared loop: MLM + dEA loss, a meter over the log interval,
    held-out evaluation with a fixed corruption."""

    #: the streamed corpus skips the records read before a checkpoint itself (no re-linking)
    resumes_data_position = True

    def __init__(self, train_ds: Any, objective: ObjectiveConfig, eval_feats: Sequence[Mapping[str, Any]],
                 eval_collator: PretrainingCollator, *, eval_batch_size: int, device: Any, seed: int, t0: float,
                 collator: PretrainingCollator | None = None) -> None:
        self.train_ds = train_ds
        self.collator = collator
        self.ob = objective
        self.eval_feats = eval_feats
        self.eval_collator = eval_collator
        self.eval_batch_size = eval_batch_size
        self.device = device
        self.seed = seed
        self.t0 = t0
        self.meter = _Meter()
        self.train_log: list[dict[str, Any]] = []

    def set_epoch(self, epoch: int) -> None:
        self.train_ds.set_epoch(epoch)

    def loss(self, model, batch: Mapping[str, torch.Tensor]):
        out = model(**_model_inputs(batch, self.ob))
        return out.loss, out

    def observe(self, outputs, batch: Mapping[str, torch.Tensor]) -> None:
        self.meter.update(outputs, batch)

    def log_record(self, step: int, loss: torch.Tensor, lr: float) -> dict[str, Any]:
        rec = {"step": step, **{f"train_{k}": v for k, v in self.meter.result().items()}, "lr": lr,
               "seconds": time.time() - self.t0}
        self.train_log.append(rec)
        self.meter = _Meter()
        return {k: v for k, v in rec.items() if k != "step"}

    def state_dict(self) -> dict[str, Any]:
        st: dict[str, Any] = {"data": self.train_ds.position(), "meter": dict(self.meter.s)}
        if hasattr(self.train_ds, "stats"):
            st["linking"] = self.train_ds.stats.to_dict()
        if self.collator is not None:
            st["collator"] = self.collator.state_dict()
        return st

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "data" not in state:
            raise CheckpointError("the checkpoint holds no position in the pre-training corpus (not written by "
                                  "kgfuse pretrain): it cannot resume a pre-training run")
        self.train_ds.resume_at(state["data"])
        self.meter = _Meter()
        self.meter.s = {k: float(v) for k, v in state.get("meter", {}).items()}
        if "linking" in state and hasattr(self.train_ds, "stats"):
            self.train_ds.stats = LinkingStats(**state["linking"])
        if self.collator is not None and "collator" in state:
            self.collator.load_state_dict(state["collator"])

    def restore_train_log(self, log_path: Path, last_step: int) -> None:
        """The training records of ``log.jsonl`` up to ``last_step`` (a resumed run's earlier
        part), as :meth:`log_record` made them."""
        self.train_log = [{k: v for k, v in rec.items() if k != "time"} for rec in _read_log(log_path)
                          if int(rec.get("step", 0)) <= last_step and "eval" not in rec
                          and any(k.startswith("train_") for k in rec)]

    def evaluate(self, model, step: int) -> dict[str, Any]:
        if not self.eval_feats:
            return {}
        r = evaluate_pretraining(model, self.eval_feats, self.eval_collator, self.ob, batch_size=self.eval_batch_size,
                                 device=self.device, seed=self.seed)
        r["step"] = step
        return r


#: Settings that change only pre-training's evaluation or bookkeeping, on top of fine-tuning's
#: :data:`~kgfuse.tasks.train.RESUME_FREE`: they may differ when resuming.
PRETRAIN_RESUME_FREE = frozenset({"data.eval_every", "data.max_eval"})


def _prepare_output_folder(out: Path, config: PretrainConfig, resume_from, allow_changes: bool) -> list[str]:
    """Check a resume against the run's recorded settings (returns the accepted changes), or,
    for a new run, remove the checkpoints of an earlier run in the folder."""
    import shutil

    from .train import check_resume

    if resume_from is None:
        stale = sorted(p for p in out.glob("checkpoint-*") if p.is_dir())
        if stale:
            logger.warning("%s: a new run (no --resume): removing the %d checkpoint(s) of the run there", out, len(stale))
            for p in stale:
                shutil.rmtree(p, ignore_errors=True)
        return []
    return check_resume(out, config.to_dict(), allow_changes, free=PRETRAIN_RESUME_FREE)


def pretrain(config: PretrainConfig, *, graph=None, linked: "LinkedCorpus | str | os.PathLike | None" = None,
             progress: bool = True, accelerator: Any | None = None,
             log: Callable[[str], None] | None = None, resume_from: str | os.PathLike | None = None,
             allow_changes: bool = False, stop_after_steps: int | None = None) -> PretrainResult:
    """Run ERNIE pre-training as configured; see the module docstring.

    Args:
        config: the run.
        graph: a :class:`~kgfuse.kg.KnowledgeGraph` to use instead of loading ``config.graph``.
        progress: progress bar and log lines on the main process.
        accelerator: an ``accelerate.Accelerator`` (made from ``config.train`` when None).
        linked: a :class:`LinkedCorpus` (or its file) to train on instead of linking
            ``config.corpus`` on the fly (default: ``config.data.linked`` when set). No linker
            and no spaCy are needed then; the features are checked against the graph, the
            tokenizer and ``train.max_length``.
        resume_from: a ``checkpoint-<step>/`` folder, or ``"auto"`` for the newest complete
            one in the output folder (none: a new run).
        allow_changes: resume even though settings that change the trajectory differ from
            the run's recorded ``config.yaml`` (they are appended to ``config-changes.jsonl``).
        stop_after_steps: stop (after writing ``checkpoint-<step>/``) once this many optimiser
            steps are done, without evaluating or exporting: an interruption, to test resuming.

    The number of optimiser steps is ``train.max_steps`` when set, else ``train.epochs``
    passes over the (non-held-out) corpus. The loop is fine-tuning's
    (:class:`~kgfuse.tasks.loop.TrainingLoop`): held-out evaluation before the first step,
    every ``data.eval_every`` steps and after the last one; a ``log.jsonl`` record every
    ``train.log_every`` steps; a resumable ``checkpoint-<step>/`` every ``train.save_steps``
    steps (the ``train.save_total_limit`` newest kept); the model exported to ``model/`` at
    the end. Progress lines go to ``log`` (default: this module's logger).
    """
    from accelerate.utils import set_seed

    from .pipeline import build_linker, build_model

    log = log if log is not None else logger.info
    t0 = time.time()
    opt, ob, dc = config.train, config.objective, config.data
    if linked is None and dc.linked:
        linked = config.path(dc.linked)
    linked_source = None
    if linked is not None and not isinstance(linked, LinkedCorpus):
        linked_source = str(linked)
        linked = LinkedCorpus.load(linked)
    if linked is None and not config.corpus:
        raise ConfigError("corpus is empty: give at least one corpus spec (e.g. {type: wordnet_glosses}) or data.linked")
    ob.validate()
    # the entity output of the last fusion layer feeds no pre-training loss: DDP must allow it
    acc = accelerator if accelerator is not None else make_accelerator(opt, find_unused_parameters=True)
    set_seed(opt.seed)
    out = config.path(config.output_dir) if config.output_dir else default_home() / "pretrain" / _config_hash(config)
    is_main = acc.is_main_process
    if is_main:
        from .train import write_run_config

        write_run_config(out, config.to_dict(), _prepare_output_folder(out, config, resume_from, allow_changes))

    t = time.time()
    if graph is None:
        graph = load_pretrain_graph(config.graph, config.base_dir)
    linker = build_linker(graph, config.linker) if linked is None else None
    if progress and is_main:
        log(f"graph: {graph.num_concepts} concepts, {graph.num_relations} relations, {graph.num_edges} edges; "
            + (f"linker ready ({time.time() - t:.1f}s)" if linker is not None else
               f"pre-linked corpus: {len(linked.train)} training / {len(linked.eval)} held-out sequences"))
    model, tokenizer = build_model(config.model, graph, base_dir=config.base_dir, head="pretraining")
    if linked is not None:
        linked.check(graph, tokenizer, opt.max_length, source=linked_source or "linked corpus")
    if ob.dea_weight > 0 and getattr(model, "dea_head", None) is None:
        raise ConfigError("objective.dea_weight > 0 needs fusion layers (model.options.num_fusion_layers > 0, "
                          "use_graph and use_fusion true, a BERT-family encoder); set objective.dea_weight=0 for MLM only")
    if linked is None:
        train_ds, eval_ds = _linked_text_datasets(config, linker, tokenizer, shuffle_buffer=dc.shuffle_buffer)
        eval_feats = list(eval_ds) if dc.eval_fraction > 0 and dc.max_eval > 0 else []
    else:
        train_ds = LinkedFeatureDataset(linked.train, shuffle=dc.shuffle_buffer > 1, seed=opt.seed,
                                        stats=linked.meta.get("train_linking"), reports=linked.meta.get("corpus_reports", ()))
        eval_ds = LinkedFeatureDataset(linked.eval[: dc.max_eval], shuffle=False, stats=linked.meta.get("eval_linking"))
        eval_feats = list(eval_ds) if dc.max_eval > 0 else []
    total_steps = _count_steps(train_ds, config)
    if progress and is_main:
        log(f"held-out: {len(eval_feats)} sequences; optimiser steps: {total_steps}")

    collator = PretrainingCollator(tokenizer, graph, ob, seed=opt.seed + 17)
    eval_collator = PretrainingCollator(tokenizer, graph, ob, seed=opt.seed + 1234)
    # A streamed corpus: the loader is not sharded by Accelerate (batches are moved to the
    # device by the loop). It is read in this process (num_workers=0), so the corpus position
    # and the collator's masks in a checkpoint are exact; its own generator keeps the base seed
    # each new iterator draws off the global one (which a resumed run would otherwise shift).
    loader = DataLoader(train_ds, batch_size=opt.batch_size, collate_fn=collator, num_workers=0,
                        generator=torch.Generator().manual_seed(opt.seed))
    task = _Pretraining(train_ds, ob, eval_feats, eval_collator, eval_batch_size=opt.eval_batch_size,
                        device=acc.device, seed=opt.seed + 1234, t0=t0, collator=collator)
    loop = TrainingLoop(model, loader, task, opt, total_steps=total_steps, accelerator=acc, output_dir=out,
                        prepare_loader=False, epoch_records=False, eval_every=dc.eval_every, eval_at_start=True,
                        eval_at_end=True, log=logger, progress=progress, desc="pretrain",
                        checkpointing=Checkpointing(save_steps=opt.save_steps, save_total_limit=opt.save_total_limit),
                        empty_epoch_error="the training corpus yielded no sequence (all held out, filtered or empty)")
    loop.resume(resume_from)
    if loop.resumed and is_main:
        task.restore_train_log(out / "log.jsonl", loop.state["global_step"])
    state = loop.run(stop_after_steps=stop_after_steps)
    evals = loop.evaluations
    result = PretrainResult(output_dir=out, model_dir=out / "model", history=list(evals), train_log=task.train_log)
    result.initial = evals[0] if evals and evals[0]["step"] == 0 else {}
    result.final = evals[-1] if evals else {}
    result.global_step = state["global_step"]
    result.data = {
        "train_linking": train_ds.stats.to_dict(),
        "eval_linking": eval_ds.stats.to_dict(),
        "corpus": [r if isinstance(r, dict) else r.to_dict() for r in train_ds.reports],
        "linked": linked_source or ("in memory" if linked is not None else None),
        "eval_sequences": len(eval_feats),
        "epochs_started": state["epoch"],
    }
    result.wall_time = time.time() - t0
    result.model = loop.unwrapped
    if loop.stopped:
        result.finished = False
        return result  # interrupted: the checkpoint is the run's state; model/ is the finished run's
    loop.export(tokenizer.save_pretrained)
    if is_main:
        (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=1))
        write_report(result, config, graph)
    return result


def _config_hash(config: PretrainConfig) -> str:
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------
# report


def write_curves(result: PretrainResult, path: Path) -> None:
    """PNG with the MLM loss (train, held-out) and the dEA accuracy (held-out by alignment
    kind, train, chance) against optimiser steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    tl = result.train_log
    ev = result.history

    def series(rows, key):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        return ([p[0] for p in pts], [p[1] for p in pts]) if pts else ([], [])

    for rows, key, label, style in ((tl, "train_mlm_loss", "train", "-"), (ev, "mlm_loss", "held-out", "o-")):
        x, y = series(rows, key)
        if x:
            a1.plot(x, y, style, label=label)
    a1.set_xlabel("optimiser step")
    a1.set_ylabel("MLM loss")
    a1.set_title("Masked LM")
    a1.legend()
    for rows, key, label, style in ((tl, "train_dea_accuracy", "train (all)", "-"),
                                    (ev, "dea_accuracy", "held-out (all)", "o-"),
                                    (ev, "dea_masked_accuracy", "held-out (removed)", "s-"),
                                    (ev, "dea_replaced_accuracy", "held-out (replaced)", "^-"),
                                    (ev, "dea_chance", "chance", "k--")):
        x, y = series(rows, key)
        if x:
            a2.plot(x, y, style, label=label)
    a2.set_xlabel("optimiser step")
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1)
    a2.set_title("dEA: entity recovery")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: PretrainResult, config: PretrainConfig, graph) -> None:
    """``report.md`` and ``curves.png`` in the output folder."""
    from .evaluate import _fmt
    out = result.output_dir
    try:
        write_curves(result, out / "curves.png")
    except ImportError as e:  # matplotlib is optional on a training machine
        logger.warning("kgfuse: no curves.png (%s)", e)
    keys = ["mlm_loss", "mlm_accuracy", "dea_accuracy", "dea_kept_accuracy", "dea_masked_accuracy",
            "dea_replaced_accuracy", "dea_chance", "dea_count"]
    lines = [
        "# Pre-training report",
        "",
        f"- model: `{config.model.init_from or config.model.text_encoder}` "
        f"({'random text encoder ' + json.dumps(config.model.options.get('text_config')) if config.model.options.get('text_config') else 'pretrained text encoder'})",
        f"- graph: {graph.num_concepts} concepts, {graph.num_relations} relations, {graph.num_edges} edges (hash `{graph.hash[:12]}`)",
        f"- corpus: `{json.dumps(config.corpus)}`",
        f"- objective: MLM {config.objective.mlm_probability:.0%} (mask/random/keep "
        f"{config.objective.mlm_mask:.0%}/{config.objective.mlm_random:.0%}/"
        f"{1 - config.objective.mlm_mask - config.objective.mlm_random:.0%}), dEA replace/remove/keep "
        f"{config.objective.dea_replace:.0%}/{config.objective.dea_mask:.0%}/"
        f"{1 - config.objective.dea_replace - config.objective.dea_mask:.0%}, predict {config.objective.dea_predict}, "
        f"weights MLM {config.objective.mlm_weight} / dEA {config.objective.dea_weight}",
        f"- optimiser steps: {result.global_step} (batch {config.train.batch_size}, max length {config.train.max_length}); "
        f"wall time {result.wall_time:.0f} s",
        f"- linking (train stream): {json.dumps(result.data.get('train_linking', {}))}",
        "",
        "## Held-out metrics",
        "",
        "dEA accuracy: share of supervised alignments whose original entity gets the highest score among the "
        "sequence's entities; by kind: kept alignments (the token saw its entity), removed ones (it saw none), "
        "replaced ones (it saw a random entity). `dea_chance` = mean of 1 / (number of candidates).",
        "",
        "| metric | before | after |",
        "| --- | --- | --- |",
    ]
    for k in keys:
        lines.append(f"| {k} | {_fmt(result.initial.get(k))} | {_fmt(result.final.get(k))} |")
    lines += ["", "![curves](curves.png)", "", f"Fine-tune from it: `kgfuse train <config> --set model.init_from={result.model_dir}`", ""]
    (out / "report.md").write_text("\n".join(lines))
