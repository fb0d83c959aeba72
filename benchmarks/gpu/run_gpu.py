"""The real-data protocol on a GPU: KG-fused against LM-only on CommonsenseQA and OpenBookQA.

Runs from a bundle made by ``make_bundle.py`` (no spaCy, no network needed)::

    python3 benchmarks/gpu/run_gpu.py --bundle benchmarks/gpu/bundle --out $OUT

For every data set of the bundle it

1. rebuilds the bundle's graph (WordNet, or a graph file such as ConceptNet 4; hash
   checked), loads the questions and the stored
   groundings and cuts the subgraphs with the bundle's retriever (on access, in the data
   loader workers);
2. **speed and memory**: builds the LM-only ablation and the KG-fused model (and, with
   ``--models ...,fused-nograph``, the fused model fed empty subgraphs; with
   ``fused-noedges``, fed the same nodes without edges) from the bundled
   text encoder and times ``--timing-steps`` training steps (forward, backward, clipping,
   AdamW step) on the same pre-collated batches at the same batch size, after
   ``--warmup-steps`` untimed ones, with ``torch.cuda.synchronize()`` around each step;
   reports the median step time and ``torch.cuda.max_memory_allocated()`` (weights,
   gradients, optimiser state and activations) of each, and the fused / LM-only ratios;
3. **accuracy**: trains both models for each seed with the project's own loop
   (:func:`kgfuse.tasks.train.fit`: AdamW with LM / GNN / fusion learning rates, linear
   warm-up and decay, bf16 autocast on the GPU through Accelerate, fp32 on a CPU) and
   records dev accuracy after every epoch (and test accuracy for OpenBookQA, read at the
   best dev epoch).

Time is budgeted: after the timing phase the planned epochs are scaled down (to 2, then
seeds dropped, then to 1 epoch) when the estimated training time exceeds ``--time-budget``
(``--runs MODEL:SEED,...`` instead runs exactly those, in that order, with ``--epochs``);
runs go seed by seed (every data set's seed 0 before any seed 1); a wall-clock guard
stops a run that overruns its share (the epoch in progress is cut, evaluated and recorded
with ``stopped_by_guard``). ``results.json`` and ``results.md`` are written to ``--out``
after every run, so a killed job still leaves what it finished.

Runs on a CPU too (fp32), for the tests and small checks.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle import Bundle, ensure_kgfuse_importable, linking_stats  # noqa: E402

DEFAULT_EPOCHS = {"csqa": 3, "obqa": 5}
#: Knowledge as text (``kgfuse.kg.verbalize.Verbalizer``; the ``knowledge_text`` rows of
#: ``configs/results-knowledge-text.yaml``): facts only, answer-concept definitions only, both.
TEXT_PRESETS = {"triples": {"definitions": "none"}, "definitions": {"triples": 0, "definitions": "answer"},
                "both": {"definitions": "answer"}}
TEXT_MODELS = tuple(f"{base}-text-{preset}" for base in ("lm", "fused") for preset in TEXT_PRESETS)
MODELS = ("lm", "fused", "fused-nograph", "fused-noedges", "fused-qaonly", "fused-pt") + TEXT_MODELS
"""``fused-nograph``: the fused model and hyper-parameters, fed the LM-only features (every
statement's grounding and subgraph empty: zero nodes, no entity alignments), to separate the
graph's contribution from the fused model's extra capacity. ``fused-noedges``: the fused
model fed the same groundings and node sets as ``fused`` (same nodes, node types and
token-entity alignments) with every subgraph's edges removed, to separate the graph's
relations from the linked nodes themselves (a learned per-lemma embedding table).
``fused-pt``: the fused model (same architecture and fine-tuning) started from an ERNIE
pre-training (MLM + dEA, :func:`kgfuse.tasks.pretrain.pretrain`) on the bundle's pre-linked
WordNet glosses, run once on this machine before the fine-tuning runs.
``fused-qaonly``: the fused model fed only the question and answer nodes of each subgraph and
the edges among them (the retriever's bridge nodes and their edges removed), to measure what
the two-hop graph neighbourhood adds over the linked words themselves.
``lm-text-<preset>`` / ``fused-text-<preset>``: LM-only (DEKCOR-style) or fused, each
(question, choice) followed by the retrieved knowledge written out as a second segment
(``triples``: up to ``--text-triples`` facts joining question and answer concepts;
``definitions``: the answer concepts' definitions from the bundle's definitions file;
``both``), built with the library's verbaliser from the same groundings and subgraphs, at
``--text-max-length`` tokens."""
FULL_TABLE = "fused-fulltable"
"""Timing-only entry (with ``--node-vocab train``): the fused model with its full node table."""
ARCH = {"fused-pt": "fused", FULL_TABLE: "fused"}
"""Model kinds that share another kind's architecture and features (timed once, as that kind)."""


# --------------------------------------------------------------------------- helpers
class _Subset:
    """The first ``n`` examples of a preprocessed dataset (for ``--max-train``)."""

    def __init__(self, pre: Any, n: int) -> None:
        self.pre, self.n = pre, min(n, len(pre))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.pre[i]

    def concepts(self):
        return self.pre.concepts(limit=self.n)


class WallClockGuard:
    """Forward pre-hook that ends a :func:`fit` run once ``deadline`` has passed.

    ``fit`` reads ``opt.max_steps`` after every optimiser step and before every epoch; when a
    training-mode forward starts after the deadline, the guard sets ``opt.max_steps = 0``, so
    the loop stops after that step, evaluates the cut epoch and returns normally.
    """

    def __init__(self, opt: Any, deadline: float) -> None:
        self.opt, self.deadline, self.fired_at_step = opt, deadline, None
        self._steps = 0

    def __call__(self, module, args) -> None:
        if not module.training:
            return
        self._steps += 1
        if self.fired_at_step is None and time.time() > self.deadline:
            self.fired_at_step = self._steps
            self.opt.max_steps = 0


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _free(*objs) -> None:
    import torch

    for o in objs:
        del o
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "–" if x is None else format(x, spec)


# --------------------------------------------------------------------------- models / data
def model_options(args) -> dict[str, Any]:
    opts = {"graph_encoder": args.graph_encoder, "num_fusion_layers": args.fusion_layers,
            "node_dim": args.node_dim, "graph_hidden_dim": args.graph_hidden_dim}
    if getattr(args, "freeze_nodes", False):
        opts["freeze_node_embeddings"] = True
    return opts


def is_lm_only(model: str) -> bool:
    """Whether a model kind is the text encoder alone (with or without knowledge text)."""
    return model == "lm" or model.startswith("lm-text-")


def text_preset(model: str) -> str | None:
    """The knowledge-text preset of a model kind (``None`` for the kinds without text)."""
    return model.rsplit("-text-", 1)[1] if model in TEXT_MODELS else None


def verbalizer_options(args, preset: str, definitions_file: Path | None) -> dict[str, Any]:
    """The ``knowledge_text`` section of a text preset (the CPU rows' settings by default)."""
    opts = {"enabled": True, "triples": args.text_triples, "max_tokens": args.text_max_tokens, **TEXT_PRESETS[preset]}
    if opts.get("definitions", "none") != "none":
        if definitions_file is None:
            raise SystemExit(f"model kind '*-text-{preset}' needs definitions: rebuild the bundle with "
                             "make_bundle.py --definitions wordnet")
        opts["definition_source"] = str(definitions_file)
    return opts


def make_config(args, dataset: str, lm_only: bool, seed: int, epochs: int, model_dir: Path, init_from: str | None = None,
                max_length: int | None = None):
    """The run's :class:`~kgfuse.tasks.config.TrainConfig` (graph and data come from the bundle);
    ``init_from``: a pre-trained kgfuse model folder (its architecture replaces the options)."""
    from kgfuse.tasks.config import TrainConfig

    return TrainConfig.from_dict({
        "data": {"format": dataset},
        "retriever": {},
        "model": {"text_encoder": str(model_dir), "lm_only": lm_only, "init_from": init_from,
                  "options": model_options(args)},
        "train": {"epochs": epochs, "batch_size": args.batch_size, "eval_batch_size": args.eval_batch_size,
                  "lr_lm": (args.lr_lm_only if lm_only and args.lr_lm_only is not None else args.lr_lm),
                  "lr_gnn": args.lr_gnn, "lr_fusion": args.lr_fusion, "warmup_ratio": args.warmup_ratio,
                  "weight_decay": 0.01, "max_grad_norm": 1.0, "mixed_precision": args.precision, "seed": seed,
                  "max_length": max_length or args.max_length, "save_best": False, "save_last": False, "log_every": 0,
                  "num_workers": args.workers, "freeze_lm_epochs": 0},
    })


def NoEdges(pre: Any):
    """Every subgraph's edges removed (library: ``model.graph_input: no_edges``)."""
    from kgfuse.tasks.graph_input import graph_input_view

    return graph_input_view(pre, "no_edges")


def QAOnly(pre: Any):
    """Only the question and answer nodes of every subgraph (``model.graph_input: qa_only``)."""
    from kgfuse.tasks.graph_input import graph_input_view

    return graph_input_view(pre, "qa_only")


def model_datasets(examples, pre, tokenizer, max_length: int | None, verbalizers: dict[str, Any] | None = None,
                   text_max_length: int | None = None) -> dict[str, Any]:
    """The feature dataset of each model kind (features are built on access): ``fused`` reads
    the preprocessed subgraphs; ``lm`` and ``fused-nograph`` get the text-only features (empty
    groundings and subgraphs); ``fused-noedges`` gets ``fused``'s groundings and nodes with
    every edge removed; ``<lm|fused>-text-<preset>`` get the knowledge text of
    ``verbalizers[preset]`` after each pair (LM: no graph inputs), at ``text_max_length``."""
    from kgfuse.tasks.pipeline import MCFeatureDataset, TextOnlyDataset

    text = TextOnlyDataset(examples, tokenizer, max_length=max_length)
    fused = MCFeatureDataset(examples, pre, tokenizer, max_length=max_length)
    out = {"fused": fused, "lm": text, "fused-nograph": text, "fused-pt": fused,
           "fused-noedges": MCFeatureDataset(examples, NoEdges(pre), tokenizer, max_length=max_length),
           "fused-qaonly": MCFeatureDataset(examples, QAOnly(pre), tokenizer, max_length=max_length)}
    for preset, v in (verbalizers or {}).items():
        for base in ("lm", "fused"):
            out[f"{base}-text-{preset}"] = MCFeatureDataset(examples, pre, tokenizer, max_length=text_max_length,
                                                            verbalizer=v, graph_inputs=base == "fused")
    return out


def run_pretraining(args, bundle, graph, work: Path) -> dict[str, Any]:
    """ERNIE pre-training (MLM + dEA) of the fused architecture on the bundle's pre-linked
    WordNet glosses (no spaCy needed); returns the model folder and the held-out metrics."""
    from kgfuse.tasks.pretrain import PretrainConfig, pretrain

    corpus = bundle.pretrain_corpus
    if corpus is None:
        raise SystemExit(f"{bundle.path}/manifest.json: no pre-training corpus; rebuild the bundle with "
                         "make_bundle.py --pretrain-glosses N (N > 0) for --models fused-pt")
    steps = args.pretrain_steps
    cfg = PretrainConfig.from_dict({
        "corpus": [],
        "model": {"text_encoder": str(bundle.model_dir), "options": model_options(args)},
        "data": {"linked": str(corpus.resolve()), "max_eval": 200, "eval_every": max(1, steps // 5)},
        # --pretrain-mlm-weight 0: dEA only (no token masked, no MLM head trained)
        "objective": {"mlm_weight": args.pretrain_mlm_weight,
                      **({"mlm_probability": 0.0} if args.pretrain_mlm_weight == 0 else {})},
        "train": {"max_steps": steps, "batch_size": args.pretrain_batch_size, "eval_batch_size": args.eval_batch_size,
                  "lr_lm": args.lr_lm if args.pretrain_lr_lm is None else args.pretrain_lr_lm, "lr_gnn": args.lr_gnn, "lr_fusion": args.lr_fusion, "warmup_ratio": 0.06,
                  "max_length": int(bundle.manifest["pretrain"]["max_length"]), "mixed_precision": args.precision,
                  "seed": args.pretrain_seed, "log_every": 10, "max_grad_norm": 1.0},
        "output_dir": str((work / "pretrain").resolve()),
    })
    res = pretrain(cfg, graph=graph, progress=False)
    keys = ("mlm_loss", "mlm_accuracy", "dea_accuracy", "dea_kept_accuracy", "dea_masked_accuracy",
            "dea_replaced_accuracy", "dea_chance", "dea_count")
    return {"model_dir": str(res.model_dir), "steps": res.global_step, "wall_s": res.wall_time,
            "batch_size": args.pretrain_batch_size, "seed": args.pretrain_seed,
            "corpus": bundle.manifest["pretrain"],
            "initial": {k: res.initial.get(k) for k in keys}, "final": {k: res.final.get(k) for k in keys},
            "history": [{k: h.get(k) for k in ("step",) + keys} for h in res.history]}


def build_model(config, graph, concepts=None):
    """The run's model; ``concepts`` (``--node-vocab train``): restrict the node table to them."""
    from kgfuse.tasks.pipeline import build_model as _build

    import torch

    torch.manual_seed(config.train.seed)
    model, _tok = _build(config.model, graph)
    if concepts is not None and model.config.use_graph:
        model.restrict_node_table(concepts)
    return model


def measure(model, dataset, collator, config, *, n_warmup: int, n_timed: int, eval_batch_size: int,
            warmup_seconds: float = 0.0) -> dict[str, Any]:
    """Median training-step time, peak memory and eval-forward time of ``model`` on the first
    ``(n_warmup + n_timed) * batch_size`` examples of ``dataset`` (pre-collated, on device).

    Batches are dynamically padded, so each has its own shape, and the first step on a new
    shape pays for kernel selection and allocator growth (on an H100 the medians of such
    steps were 4-8x a steady step). So before timing, every batch to be timed runs once
    untimed (its median is reported as ``first_pass_ms_median``); then the warm-up steps are
    repeated (cycling over all batches) until at least ``warmup_seconds`` have passed, so that
    a card idling at low clocks has ramped up; all untimed steps count in ``warmup_steps_run``."""
    import torch

    from kgfuse.tasks.train import build_param_groups, make_accelerator

    opt = config.train
    acc = make_accelerator(opt)
    dev = acc.device
    bs = opt.batch_size
    n = len(dataset)
    t = time.perf_counter()
    batches = []
    for s in range(n_warmup + n_timed):
        idx = [(s * bs + k) % n for k in range(bs)]
        batches.append(collator([dataset[i] for i in idx]))
    collate_s = (time.perf_counter() - t) / len(batches)
    ev = collator([dataset[i % n] for i in range(eval_batch_size)])
    optimizer = torch.optim.AdamW(build_param_groups(model, opt), lr=opt.lr_fusion)
    model, optimizer = acc.prepare(model, optimizer)
    batches = [_to(b, dev) for b in batches]
    ev = _to(ev, dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    model.train()

    def step(b) -> float:
        _sync(dev)
        t = time.perf_counter()
        out = model(**b)
        acc.backward(out.loss)
        acc.clip_grad_norm_(params, opt.max_grad_norm or 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(dev)
        return time.perf_counter() - t

    warm = [step(b) for b in batches[:n_warmup]]
    first_pass = [step(b) for b in batches[n_warmup:]]  # every timed shape once, untimed
    n_extra = 0
    if warmup_seconds > 0:
        t_end = time.perf_counter() + max(0.0, warmup_seconds - sum(warm) - sum(first_pass))
        while time.perf_counter() < t_end:
            step(batches[n_extra % len(batches)])
            n_extra += 1
    timed = [step(b) for b in batches[n_warmup:]]
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
    model.eval()
    ev_times = []
    with torch.no_grad():
        for _ in range(3):
            _sync(dev)
            t = time.perf_counter()
            model(**{k: v for k, v in ev.items() if k != "labels"})
            _sync(dev)
            ev_times.append(time.perf_counter() - t)
    seq_len = int(batches[0]["input_ids"].shape[-1])
    res = {
        "batch_size": bs, "steps_timed": len(timed), "warmup_steps": n_warmup, "warmup_steps_run": n_warmup + len(first_pass) + n_extra,
        "first_pass_ms_median": 1000 * statistics.median(first_pass),
        "step_ms_median": 1000 * statistics.median(timed), "step_ms_min": 1000 * min(timed),
        "step_ms_mean": 1000 * statistics.fmean(timed),
        "peak_memory_mib": None if peak is None else peak / 2**20,
        "eval_forward_ms": 1000 * min(ev_times), "eval_batch_size": eval_batch_size,
        "collate_ms_per_batch": 1000 * collate_s, "first_batch_seq_len": seq_len,
        "parameters": sum(p.numel() for p in model.parameters()),
        "precision": acc.mixed_precision, "device": str(dev),
    }
    acc.free_memory()
    _free(model, optimizer, batches, ev)
    return res


def kept_predictions(best: dict[str, Any], examples: dict[str, list[Any]]) -> dict[str, Any]:
    """``fit``'s per-question predictions at the best dev epoch (``TrainResult.best_predictions``)
    in the form ``export_predictions.py`` reads: per split the predicted choices and their
    accuracy against the questions' labels (which must equal the epoch's recorded accuracy)."""
    out: dict[str, Any] = {"epoch": best.get("epoch")}
    for split, predicted in best.items():
        if split == "epoch":
            continue
        labels = [ex.label for ex in examples[split]]
        scored = [(p, y) for p, y in zip(predicted, labels) if y is not None and y >= 0]
        out[split] = {"predicted": list(predicted),
                      "accuracy": sum(p == y for p, y in scored) / len(scored) if scored else None}
    return out


# --------------------------------------------------------------------------- planning
def plan_runs(args, datasets: dict[str, dict], timing: dict[str, dict], budget_s: float) -> tuple[list[dict], list[str]]:
    """Runs to do (dataset, model, seed, epochs) and their time estimates, fitted into
    ``budget_s``: epochs scaled down first, then seeds dropped."""
    notes: list[str] = []
    seeds = list(args.seeds)
    epochs = {d: (args.epochs if args.epochs is not None else DEFAULT_EPOCHS.get(d, 2)) for d in datasets}

    def est(d: str, model: str, ep: int) -> float:
        t = timing[d][ARCH.get(model, model)]
        w = max(1, args.workers)
        step = max(t["step_ms_median"], t["collate_ms_per_batch"] / w) / 1000 * 1.15
        n_train = datasets[d]["n_train"]
        steps = math.ceil(n_train / args.batch_size)
        n_eval = sum(datasets[d]["n_eval"].values())
        ev = math.ceil(n_eval / args.eval_batch_size) * max(t["eval_forward_ms"] / 1000,
                                                             t["collate_ms_per_batch"] / 1000 * args.eval_batch_size / args.batch_size / w)
        return ep * (steps * step + ev) + args.run_overhead

    def total(eps: dict[str, int], sds: list[int]) -> float:
        return sum(est(d, m, eps[d]) for d in datasets for m in args.models for _ in sds)

    if getattr(args, "runs", None):  # explicit runs: as given, in that order, never shortened
        runs = [{"dataset": d, "model": m, "seed": s, "epochs": epochs[d], "estimate_s": round(est(d, m, epochs[d]), 1)}
                for d in datasets for m, s in args.runs]
        t = sum(r["estimate_s"] for r in runs)
        if t > budget_s:
            notes.append(f"time budget: the {len(runs)} runs given are estimated at {t:.0f} s, over the {budget_s:.0f} s "
                         "left; they run in the order given and the wall-clock guard stops the one that overruns")
        return runs, notes

    # shrink in this order: epochs down to 2, seeds down to 1, epochs down to 1
    for floor, drop_seeds in ((2, False), (2, True), (1, False)):
        while total(epochs, seeds) > budget_s:
            if any(e > floor for e in epochs.values()):
                d = max(epochs, key=lambda k: (epochs[k] > floor) * est(k, "fused", epochs[k]))
                epochs[d] -= 1
                notes.append(f"time budget: {d} epochs reduced to {epochs[d]}")
            elif drop_seeds and len(seeds) > 1:
                notes.append(f"time budget: seed {seeds.pop()} dropped")
            else:
                break
    if total(epochs, seeds) > budget_s:
        notes.append("time budget: even one epoch of one seed is estimated over the budget; the guard will cut it")
    # seed-major: every data set gets its first seed before any data set gets its second
    runs = [{"dataset": d, "model": m, "seed": s, "epochs": epochs[d], "estimate_s": round(est(d, m, epochs[d]), 1)}
            for s in seeds for d in datasets for m in args.models]
    return runs, notes


# --------------------------------------------------------------------------- reporting
def summarise(results: dict[str, Any]) -> None:
    """Per (dataset, model): mean and spread of the accuracies over seeds; timing ratios."""
    summ: dict[str, Any] = {}
    for d in results["datasets"]:
        summ[d] = {}
        for m in MODELS:
            rs = [r for r in results["runs"] if r["dataset"] == d and r["model"] == m and r.get("best_dev_accuracy") is not None]
            if not rs:
                continue
            entry = {"seeds": [r["seed"] for r in rs]}
            for key in ("best_dev_accuracy", "last_dev_accuracy", "test_accuracy_at_best_dev", "last_test_accuracy"):
                vals = [r[key] for r in rs if r.get(key) is not None]
                if vals:
                    entry[key] = {"mean": statistics.fmean(vals), "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0,
                                  "values": vals}
            summ[d][m] = entry
        t = results["timing"].get(d)
        if t and "lm" in t and "fused" in t:
            lm, fu = t["lm"], t["fused"]
            summ[d]["ratios"] = {
                "step_time": fu["step_ms_median"] / lm["step_ms_median"],
                "peak_memory": (fu["peak_memory_mib"] / lm["peak_memory_mib"]) if lm.get("peak_memory_mib") else None,
            }
            ft = t.get(FULL_TABLE)
            if ft:
                summ[d]["ratios"]["step_time_fulltable"] = ft["step_ms_median"] / lm["step_ms_median"]
                summ[d]["ratios"]["peak_memory_fulltable"] = (
                    ft["peak_memory_mib"] / lm["peak_memory_mib"] if lm.get("peak_memory_mib") else None)
    results["summary"] = summ


def write_results(out: Path, results: dict[str, Any]) -> None:
    summarise(results)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, default=str))
    os.replace(tmp, out / "results.json")
    (out / "results.md").write_text(render_md(results))


def epoch_seconds(runs: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Seconds of every epoch after the first (training and evaluation; the first also pays
    for worker start-up and new batch shapes), per data set and model, over the runs that the
    wall-clock guard did not stop: the whole-run cost that the timing phase only estimates."""
    out: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        if run.get("stopped_by_guard") or run.get("error"):
            continue
        secs = [h["seconds"] for h in run.get("history", [])[1:] if h.get("seconds") is not None]
        if secs:
            out.setdefault(run["dataset"], {}).setdefault(run["model"], []).extend(secs)
    return out


def render_md(r: dict[str, Any]) -> str:
    env = r["environment"]
    lines = [
        f"# kgfuse: KG-fused vs LM-only ({r['graph'].get('name', 'WordNet 3.0 lemma graph')})",
        "",
        f"Machine: {env['device_name']} ({env['device']}); torch {env['torch']}, transformers {env['transformers']}, "
        f"torch-geometric {env['torch_geometric']}, Python {env['python']}; precision {env['precision']}.",
        f"Command: `{r['command']}`",
        f"Graph: {r['graph'].get('name', 'WordNet 3.0 lemma graph')}, {r['graph']['num_concepts']} concepts, {r['graph']['num_relations']} relations, "
        f"{r['graph']['num_edges']} edges, hash `{r['graph']['hash'][:12]}` (rebuilt from the bundle, hash checked). "
        f"Retriever: `{json.dumps(r['retriever'])}`. Text encoder: {r['text_encoder']}.",
        f"Settings: batch {r['settings']['batch_size']}, max length {r['settings']['max_length']}, lr LM/GNN/fusion "
        f"{r['settings']['lr_lm']}/{r['settings']['lr_gnn']}/{r['settings']['lr_fusion']} "
        f"(LM-only's LM: {r['settings'].get('lr_lm_only') or r['settings']['lr_lm']}), graph encoder "
        f"{r['settings']['graph_encoder']}, {r['settings']['fusion_layers']} fusion layers, node dim {r['settings']['node_dim']}.",
        f"Wall time: {r.get('wall_s', 0):.0f} s of a {r['settings']['time_budget']} s budget.",
        "",
    ]
    kt = r.get("knowledge_text")
    if kt:
        def src(c: dict[str, Any]) -> str:
            d = c.get("definition_source")
            return "" if not d else f" from {d.get('type')} `{str(d.get('sha256', ''))[:12]}`"

        lines[-1:-1] = [f"Knowledge text (`*-text-*` models, max length {r['settings'].get('text_max_length')}): " + "; ".join(
            f"{p}: up to {c['triples']} facts, definitions {c['definitions']}{src(c)}, at most {c['max_tokens']} tokens"
            for p, c in kt.items()) + "."]
    for note in r.get("plan_notes", []):
        lines.append(f"- {note}")
    if r.get("plan_notes"):
        lines.append("")
    lines += ["## Accuracy", "",
              "| data set | model | seed | epochs | steps | best dev acc (epoch) | last dev acc | test acc at best dev | wall s | guard |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in r["runs"]:
        lines.append(
            f"| {run['dataset']} | {run['model']} | {run['seed']} | {run.get('epochs_done', '–')}/{run['epochs']} | "
            f"{run.get('steps', '–')} | {_fmt(run.get('best_dev_accuracy'))} ({run.get('best_epoch', '–')}) | "
            f"{_fmt(run.get('last_dev_accuracy'))} | {_fmt(run.get('test_accuracy_at_best_dev'))} | "
            f"{_fmt(run.get('wall_s'), '.0f')} | {'stopped' if run.get('stopped_by_guard') else ''}{run.get('error', '')} |")
    lines += ["", "Mean over seeds (± population std):", "",
              "| data set | model | seeds | best dev acc | last dev acc | test acc at best dev |", "| --- | --- | --- | --- | --- | --- |"]
    for d, s in r.get("summary", {}).items():
        for m in MODELS:
            e = s.get(m)
            if not e:
                continue

            def ms(k: str) -> str:
                v = e.get(k)
                return "–" if v is None else f"{v['mean']:.4f} ± {v['std']:.4f}"

            lines.append(f"| {d} | {m} | {len(e['seeds'])} | {ms('best_dev_accuracy')} | {ms('last_dev_accuracy')} | "
                         f"{ms('test_accuracy_at_best_dev')} |")
    pt = r.get("pretraining")
    if pt:
        lines += ["", "## ERNIE pre-training (fused-pt)", ""]
        if pt.get("error"):
            lines.append(f"Failed: {pt['error']}")
        else:
            c = pt.get("corpus") or {}
            lines += [f"{pt['steps']} steps of batch {pt['batch_size']} (seed {pt['seed']}) on {c.get('train_sequences')} "
                      f"pre-linked WordNet glosses (max length {c.get('max_length')}), {pt['wall_s']:.0f} s; held out: "
                      f"{c.get('eval_sequences')} glosses.", "",
                      "| held-out metric | before | after |", "| --- | --- | --- |"]
            for k in ("mlm_loss", "mlm_accuracy", "dea_accuracy", "dea_kept_accuracy", "dea_masked_accuracy",
                      "dea_replaced_accuracy", "dea_chance"):
                lines.append(f"| {k} | {_fmt(pt['initial'].get(k))} | {_fmt(pt['final'].get(k))} |")
    ep = epoch_seconds(r["runs"])
    if ep:
        lines += ["", "## Whole runs: seconds per epoch (training + evaluation, epochs after the first)", "",
                  "| data set | model | epochs counted | seconds per epoch, median (range) | × LM-only |",
                  "| --- | --- | --- | --- | --- |"]
        for d, per in ep.items():
            base = statistics.median(per["lm"]) if per.get("lm") else None
            for m, v in per.items():
                med = statistics.median(v)
                lines.append(f"| {d} | {m} | {len(v)} | {med:.1f} ({min(v):.1f}–{max(v):.1f}) | "
                             f"{'–' if base is None else f'{med / base:.2f}×'} |")
    lines += ["", "## Step time and peak memory (equal batch size, same batches)", "",
              "| data set | model | step ms (median) | step ms (min) | peak memory MiB | eval fwd ms | collate ms/batch | params |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d, t in r["timing"].items():
        for m in MODELS + (FULL_TABLE,):
            if m in t:
                x = t[m]
                lines.append(f"| {d} | {m} | {x['step_ms_median']:.1f} | {x['step_ms_min']:.1f} | "
                             f"{_fmt(x.get('peak_memory_mib'), '.0f')} | {x['eval_forward_ms']:.1f} | "
                             f"{x['collate_ms_per_batch']:.1f} | {x['parameters']:,} |")
    lines += ["", "| data set | fused / LM-only step time | fused / LM-only peak memory | target |", "| --- | --- | --- | --- |"]
    for d, s in r.get("summary", {}).items():
        rt = s.get("ratios")
        if rt:
            lines.append(f"| {d} | {rt['step_time']:.2f}× | {_fmt(rt['peak_memory'], '.2f')}{'×' if rt['peak_memory'] else ''} | ≤ 1.3× |")
            if "step_time_fulltable" in rt:
                pm = rt.get("peak_memory_fulltable")
                lines.append(f"| {d} (full node table) | {rt['step_time_fulltable']:.2f}× | {_fmt(pm, '.2f')}{'×' if pm else ''} | ≤ 1.3× |")
    lines += ["", "## Linking coverage (from the bundle)", "",
              "| data set | split | statements | ≥1 question and ≥1 answer concept | mean q / a concepts | mean subgraph nodes | mean edges |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for d, sp in r.get("linking", {}).items():
        for split, st in sp.items():
            lines.append(f"| {d} | {split} | {st['statements']} | {st['share_q_and_a']} | {st['mean_question_concepts']} / "
                         f"{st['mean_answer_concepts']} | {st.get('mean_nodes', '–')} | {st.get('mean_edges', '–')} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True, help="folder for results.json and results.md")
    ap.add_argument("--dataset", default="all", help="csqa, obqa or all (those in the bundle)")
    ap.add_argument("--models", default="lm,fused", help=f"comma-separated, of {list(MODELS)}")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, default=None, help=f"epochs per run (default {DEFAULT_EPOCHS})")
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--max-eval", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-batch-size", type=int, default=128)
    ap.add_argument("--max-length", type=int, default=100)
    ap.add_argument("--lr-lm", type=float, default=5e-5)
    ap.add_argument("--lr-lm-only", type=float, default=None,
                    help="text-encoder learning rate of the LM-only model (default: --lr-lm; tune it on dev)")
    ap.add_argument("--lr-gnn", type=float, default=1e-3)
    ap.add_argument("--lr-fusion", type=float, default=1e-3)
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    ap.add_argument("--graph-encoder", default="qagnn")
    ap.add_argument("--fusion-layers", type=int, default=2)
    ap.add_argument("--node-dim", type=int, default=100)
    ap.add_argument("--graph-hidden-dim", type=int, default=200)
    ap.add_argument("--node-vocab", choices=("all", "train"), default="all",
                    help="node table rows: all concepts of the graph, or only those of the training subgraphs "
                         "(one shared row for the rest; far less memory)")
    ap.add_argument("--freeze-nodes", action="store_true",
                    help="freeze the node-embedding table (random features: no gradient, no AdamW state)")
    ap.add_argument("--precision", default="auto", help="auto (bf16 on a GPU that has it, fp32 on CPU), no, bf16, fp16")
    ap.add_argument("--workers", type=int, default=None, help="data-loader workers (default: min(8, CPUs - 2) on a GPU, 0 on CPU)")
    ap.add_argument("--warmup-steps", type=int, default=5)
    ap.add_argument("--warmup-seconds", type=float, default=10.0,
                    help="on a GPU, repeat each model's warm-up steps for at least this long before timing "
                         "(an idle card ramps its clocks up first)")
    ap.add_argument("--text-triples", type=int, default=5, help="knowledge text: facts per statement (presets with facts)")
    ap.add_argument("--text-max-tokens", type=int, default=64, help="knowledge text: token budget of the knowledge segment")
    ap.add_argument("--text-max-length", type=int, default=128, help="max length of the *-text-* models' inputs")
    ap.add_argument("--runs", default=None,
                    help="explicit runs in this order, 'MODEL:SEED,...' (e.g. fused-text-both:1), each with --epochs "
                         "(not shortened to fit the budget; the wall-clock guard still stops a run that overruns); "
                         "replaces --models and --seeds")
    ap.add_argument("--timing-steps", type=int, default=20)
    ap.add_argument("--time-budget", type=float, default=420.0, help="seconds for the whole script (plan + guard)")
    ap.add_argument("--run-overhead", type=float, default=6.0, help="seconds per run besides steps (model build, workers)")
    ap.add_argument("--work", default=None, help="unpack folder (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--pretrain-steps", type=int, default=300, help="fused-pt: ERNIE pre-training steps on the glosses")
    ap.add_argument("--pretrain-batch-size", type=int, default=16)
    ap.add_argument("--pretrain-seed", type=int, default=7)
    ap.add_argument("--pretrain-lr-lm", type=float, default=None, help="text-encoder lr of fused-pt's pre-training (default: --lr-lm)")
    ap.add_argument("--pretrain-mlm-weight", type=float, default=1.0,
                    help="weight of the MLM loss in fused-pt's pre-training (0: dEA only, no token masked)")
    args = ap.parse_args(argv)
    args.seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.runs:
        runs = []
        for item in args.runs.split(","):
            model, sep, seed = item.strip().rpartition(":")
            if not sep or not seed.strip().lstrip("-").isdigit():
                ap.error(f"--runs: {item!r} is not MODEL:SEED")
            runs.append((model, int(seed)))
        args.runs = runs
        args.models = list(dict.fromkeys(m for m, _ in runs))
        args.seeds = list(dict.fromkeys(sd for _, sd in runs))
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        ap.error(f"unknown model(s) {bad}; valid: {list(MODELS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    t_start = time.time()
    args = parse_args(argv)
    deadline = t_start + args.time_budget
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    how = ensure_kgfuse_importable()

    import torch
    import torch_geometric
    import transformers

    from kgfuse.tasks.features import MultipleChoiceCollator
    from kgfuse.tasks.train import fit, make_accelerator, resolve_mixed_precision

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    if args.workers is None:
        args.workers = max(0, min(8, (os.cpu_count() or 1) - 2)) if cuda else 0
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t = time.time()
    bundle = Bundle.open(args.bundle).verify()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kgfuse-gpu-"))
    bundle.unpack(work)
    graph = bundle.graph()
    t_unpack = time.time() - t
    print(f"bundle verified and unpacked in {t_unpack:.1f}s (kgfuse: {how}); graph {graph.num_concepts} concepts, "
          f"hash {graph.hash[:12]} matches", flush=True)
    names = bundle.datasets if args.dataset == "all" else [args.dataset]
    for d in names:
        if d not in bundle.datasets:
            raise SystemExit(f"data set {d!r} is not in the bundle ({bundle.datasets})")

    from kgfuse.encoders.text import load_tokenizer

    tokenizer = load_tokenizer(str(bundle.model_dir))
    presets = list(dict.fromkeys(p for p in (text_preset(m) for m in args.models) if p))
    verbalizers: dict[str, Any] = {}
    if presets:
        from kgfuse.tasks.pipeline import build_verbalizer

        for p in presets:
            verbalizers[p] = build_verbalizer(graph, verbalizer_options(args, p, bundle.definitions_file), tokenizer)
            print(f"knowledge text {p}: {verbalizers[p]!r}", flush=True)
    # the datasets cut each input to its model's length; the collator only checks it
    collator = MultipleChoiceCollator(tokenizer, max_length=max([args.max_length] + ([args.text_max_length] if presets else [])))
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:])),
        "environment": {
            "device": "cuda" if cuda else "cpu",
            "device_name": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
            "torch": torch.__version__, "transformers": transformers.__version__, "torch_geometric": torch_geometric.__version__,
            "python": platform.python_version(), "precision": resolve_mixed_precision(args.precision),
            "cpu_count": os.cpu_count(), "workers": args.workers, "kgfuse_import": how,
        },
        "graph": {k: bundle.manifest["graph"].get(k) for k in ("name", "loader", "hash", "num_concepts", "num_relations",
                                                               "num_edges", "options")},
        "retriever": bundle.manifest["retriever"],
        "text_encoder": f"{bundle.manifest['model']['source']} (float16-rounded weights restored to float32)",
        "settings": {k: getattr(args, k) for k in ("batch_size", "eval_batch_size", "max_length", "lr_lm", "lr_lm_only", "lr_gnn", "lr_fusion",
                                                   "warmup_ratio", "graph_encoder", "fusion_layers", "node_dim", "freeze_nodes", "node_vocab",
                                                   "graph_hidden_dim", "seeds", "epochs", "max_train", "max_eval",
                                                   "time_budget", "timing_steps", "warmup_steps", "warmup_seconds", "models",
                                                   "pretrain_steps", "pretrain_batch_size", "pretrain_seed",
                                                   "text_triples", "text_max_tokens", "text_max_length", "runs",
                                                   "pretrain_mlm_weight", "pretrain_lr_lm")},
        "knowledge_text": {p: {k: v for k, v in verbalizers[p].config.items()} for p in presets},
        "datasets": names, "timing": {}, "runs": [], "linking": {}, "questions": {}, "unpack_s": t_unpack,
    }

    # ---- data
    data: dict[str, dict[str, Any]] = {}
    for d in names:
        splits = {}
        for split in bundle.splits(d):
            exs = bundle.examples(d, split)
            pre = bundle.preprocessed(d, split, graph, exs)
            lim = args.max_train if split == "train" else args.max_eval
            if lim is not None and lim < len(exs):
                exs, pre = exs[:lim], _Subset(pre, lim)
            splits[split] = {"examples": exs, **model_datasets(exs, pre, tokenizer, args.max_length, verbalizers,
                                                                args.text_max_length)}
        data[d] = {"splits": splits, "n_train": len(splits["train"]["examples"]),
                   "concepts": splits["train"]["fused"].pre.concepts() if args.node_vocab == "train" else None,
                   "n_eval": {k: len(v["examples"]) for k, v in splits.items() if k != "train"}}
        results["linking"][d] = {k: v["stats"] for k, v in bundle.manifest["datasets"][d]["splits"].items()}
        results["questions"][d] = {k: {"ids": [ex.id for ex in v["examples"]], "labels": [ex.label for ex in v["examples"]]}
                                   for k, v in splits.items() if k != "train"}

    # ---- speed and memory at equal batch size
    for d in names:
        results["timing"][d] = {}
        kinds = list(dict.fromkeys(ARCH.get(m, m) for m in args.models))
        if args.node_vocab == "train" and "fused" in kinds:
            kinds.append(FULL_TABLE)  # the same fused model with one node row per graph concept, for reference
        for m in kinds:
            cfg = make_config(args, d, is_lm_only(m), 0, 1, bundle.model_dir,
                              max_length=args.text_max_length if text_preset(m) else None)
            model = build_model(cfg, graph, None if m == FULL_TABLE else data[d]["concepts"])
            res = measure(model, data[d]["splits"]["train"][ARCH.get(m, m)], collator, cfg, n_warmup=args.warmup_steps,
                          warmup_seconds=args.warmup_seconds if cuda else 0.0,
                          n_timed=args.timing_steps, eval_batch_size=args.eval_batch_size)
            del model
            _free()
            results["timing"][d][m] = res
            print(f"timing {d}/{m}: {res['step_ms_median']:.1f} ms/step (median of {res['steps_timed']}), peak "
                  f"{_fmt(res['peak_memory_mib'], '.0f')} MiB, collate {res['collate_ms_per_batch']:.1f} ms/batch", flush=True)
    write_results(out, results)

    # ---- ERNIE pre-training for fused-pt (once, before the fine-tuning runs)
    pt_dir = None
    if "fused-pt" in args.models:
        t = time.time()
        try:
            pt = run_pretraining(args, bundle, graph, work)
            pt_dir = pt["model_dir"]
            fi = pt["final"]
            print(f"pre-training: {pt['steps']} steps in {pt['wall_s']:.0f}s; held-out dEA accuracy "
                  f"{_fmt(pt['initial'].get('dea_accuracy'))} -> {_fmt(fi.get('dea_accuracy'))} (chance "
                  f"{_fmt(fi.get('dea_chance'))}), MLM loss {_fmt(pt['initial'].get('mlm_loss'))} -> {_fmt(fi.get('mlm_loss'))}",
                  flush=True)
        except Exception as e:  # the other models still run
            pt = {"error": f"{type(e).__name__}: {e}", "wall_s": time.time() - t}
            print(f"pre-training failed: {pt['error']}; fused-pt runs dropped", flush=True)
            args.models = [m for m in args.models if m != "fused-pt"]
        results["pretraining"] = pt
        write_results(out, results)

    # ---- plan within the budget, then train
    reserve = 15.0
    runs, notes = plan_runs(args, data, results["timing"], max(0.0, deadline - time.time() - reserve))
    results["plan"] = runs
    results["plan_notes"] = notes
    for n_ in notes:
        print(n_, flush=True)
    for i, run in enumerate(runs):
        d, m, seed = run["dataset"], run["model"], run["seed"]
        now = time.time()
        left = deadline - reserve - now
        rest = sum(r["estimate_s"] for r in runs[i:])
        share = left * run["estimate_s"] / rest if rest > 0 else left
        # explicit runs keep all the time left (in order); planned ones get their share, with slack
        run_deadline = now + max(left if args.runs else min(share * 1.5, left), 0.0)
        rec = dict(run)
        if left <= 5:
            rec["error"] = "not run: time budget spent"
            results["runs"].append(rec)
            write_results(out, results)
            continue
        cfg = make_config(args, d, is_lm_only(m), seed, run["epochs"], bundle.model_dir,
                          init_from=pt_dir if m == "fused-pt" else None,
                          max_length=args.text_max_length if text_preset(m) else None)
        model = build_model(cfg, graph, data[d]["concepts"])
        guard = WallClockGuard(cfg.train, run_deadline)
        handle = model.register_forward_pre_hook(guard)
        sp = data[d]["splits"]
        evals = {k: v[m] for k, v in sp.items() if k != "train"}
        acc = make_accelerator(cfg.train)
        t = time.time()
        try:
            res = fit(model, sp["train"][m], evals, collator, cfg.train, None, progress=False, accelerator=acc)
        except Exception as e:  # record and go on: the other runs still count
            rec["error"] = f"{type(e).__name__}: {e}"
            print(f"run {d}/{m}/seed {seed} failed: {rec['error']}", flush=True)
            results["runs"].append(rec)
            write_results(out, results)
            handle.remove()
            del model
            _free()
            continue
        handle.remove()
        hist = res.history
        rec.update(wall_s=time.time() - t, steps=res.global_step, epochs_done=len(hist),
                   stopped_by_guard=guard.fired_at_step is not None,
                   history=[{k: v for k, v in h.items() if k != "lr"} for h in hist])
        dev = [h.get("dev_accuracy") for h in hist]
        if dev and any(v is not None for v in dev):
            best = max(range(len(dev)), key=lambda k: (dev[k] if dev[k] is not None else -1, -k))
            rec.update(best_epoch=best + 1, best_dev_accuracy=dev[best], last_dev_accuracy=dev[-1])
            if "test_accuracy" in hist[best]:
                rec.update(test_accuracy_at_best_dev=hist[best]["test_accuracy"], last_test_accuracy=hist[-1]["test_accuracy"])
        if res.best_predictions:  # each question's choice at the best dev epoch, from fit's own evaluation
            rec["predictions_at_best_dev"] = kept_predictions(res.best_predictions,
                                                              {k: v["examples"] for k, v in sp.items() if k != "train"})
        results["runs"].append(rec)
        print(f"run {d}/{m}/seed {seed}: {rec.get('epochs_done')} epochs, {rec.get('steps')} steps, best dev "
              f"{_fmt(rec.get('best_dev_accuracy'))} (epoch {rec.get('best_epoch')}), test "
              f"{_fmt(rec.get('test_accuracy_at_best_dev'))}, {rec['wall_s']:.0f}s"
              f"{' [stopped by the wall-clock guard]' if rec['stopped_by_guard'] else ''}", flush=True)
        res.model = None
        del model, res
        _free()
        results["wall_s"] = time.time() - t_start
        write_results(out, results)
    results["wall_s"] = time.time() - t_start
    write_results(out, results)
    print(f"done in {results['wall_s']:.0f}s; results in {out}/results.json and results.md", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
