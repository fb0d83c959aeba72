"""Evaluation: metrics, predictions with explanations, a Markdown report with plots, comparisons.

After training, :func:`evaluate_run` writes into the run folder:

- ``metrics.json``: accuracy, correct, ``count`` (labelled questions, each counted once)
  and ``total`` per split; ``data``: per split, the records read, loaded, used, skipped (by
  reason) and without label (see :class:`~kgfuse.tasks.datasets.LoadReport`); best epoch,
  history, timings;
- ``predictions-<split>.jsonl``: one line per question: ``id``, ``scores`` (one per
  choice), ``predicted``, ``label``, ``correct``, ``num_linked_concepts`` and
  ``explanation`` (the top reasoning paths, or subgraph edges, of the chosen answer);
- ``report.md`` with ``learning_curves.png`` and ``accuracy_by_concepts.png``.

:func:`run_evaluations` runs a list of (model, dataset, graph) combinations from a YAML/TOML
file and writes one comparison table (``comparison.md`` and ``comparison.csv``)::

    output_dir: comparison            # relative to this file
    runs:
      - name: demo-on-sample-dev
        model: ~/.cache/kgfuse/demo/model   # a trained model folder
        data: {path: bundled:sample_csqa/dev.jsonl, format: csqa}
        graph: null                     # default: the graph recorded with the model
      - ...
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "accuracy_by_linked_concepts",
    "data_summary",
    "write_predictions",
    "write_report",
    "evaluate_run",
    "evaluate_predictor",
    "run_evaluations",
]

_BUCKETS = ((0, 0), (1, 2), (3, 4), (5, 8), (9, 16), (17, 10**9))


def _bucket_name(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    if hi >= 10**9:
        return f"{lo}+"
    return f"{lo}-{hi}"


def accuracy_by_linked_concepts(num_concepts: Sequence[int], correct: Sequence[bool]) -> list[dict[str, Any]]:
    """Accuracy per bucket of the number of linked concepts (0, 1-2, 3-4, 5-8, 9-16, 17+).

    Empty buckets are omitted.
    """
    nc = np.asarray(num_concepts, dtype=np.int64)
    ok = np.asarray(correct, dtype=bool)
    rows = []
    for lo, hi in _BUCKETS:
        m = (nc >= lo) & (nc <= hi)
        n = int(m.sum())
        if n:
            rows.append({"bucket": _bucket_name(lo, hi), "count": n, "correct": int(ok[m].sum()), "accuracy": float(ok[m].mean())})
    return rows


def data_summary(reports: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{split: report dict}`` of the load reports of a run (``read``, ``loaded``, ``used``,
    ``skipped``, ``skipped_by_reason``, ``unlabeled``, ``labelled``, ``num_choices``,
    ``problems``), as written to ``metrics.json`` under ``data``."""
    return {k: (r.to_dict() if hasattr(r, "to_dict") else dict(r)) for k, r in reports.items()}


def write_predictions(path: str | os.PathLike, records: Sequence[Mapping[str, Any]]) -> Path:
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def _plots(out: Path, history: Sequence[Mapping[str, Any]], buckets: Mapping[str, list[dict[str, Any]]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    files: dict[str, str] = {}
    if history:
        ep = [h["epoch"] for h in history]
        fig, ax1 = plt.subplots(figsize=(6, 3.5))
        ax1.plot(ep, [h.get("train_loss") for h in history], "o-", color="tab:red", label="train loss")
        ax1.set_xlabel("epoch")
        ax1.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax1.set_ylabel("train loss", color="tab:red")
        ax2 = ax1.twinx()
        for k in sorted(k for k in history[0] if k.endswith("_accuracy")):
            vals = [h.get(k) for h in history]
            if any(v is not None for v in vals):
                ax2.plot(ep, [np.nan if v is None else v for v in vals], "s--", label=k.replace("_accuracy", " accuracy"))
        ax2.set_ylabel("accuracy")
        ax2.set_ylim(0, 1)
        lines = ax1.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax1.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="best", fontsize=8)
        ax1.set_title("learning curves")
        fig.tight_layout()
        fig.savefig(out / "learning_curves.png", dpi=100)
        plt.close(fig)
        files["learning_curves"] = "learning_curves.png"
    if any(buckets.values()):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = sorted({r["bucket"] for rows in buckets.values() for r in rows}, key=lambda b: int(b.split("-")[0].rstrip("+")))
        width = 0.8 / max(len(buckets), 1)
        for i, (split, rows) in enumerate(buckets.items()):
            d = {r["bucket"]: r for r in rows}
            xs = np.arange(len(names)) + i * width
            ax.bar(xs, [d[n]["accuracy"] if n in d else 0 for n in names], width, label=split)
            for x, n in zip(xs, names):
                if n in d:
                    ax.text(x, d[n]["accuracy"] + 0.01, str(d[n]["count"]), ha="center", fontsize=7)
        ax.set_xticks(np.arange(len(names)) + width * (len(buckets) - 1) / 2)
        ax.set_xticklabels(names)
        ax.set_xlabel("linked concepts per question (question + all choices)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
        ax.set_title("accuracy by number of linked concepts (n above bars)")
        fig.tight_layout()
        fig.savefig(out / "accuracy_by_concepts.png", dpi=100)
        plt.close(fig)
        files["accuracy_by_concepts"] = "accuracy_by_concepts.png"
    return files


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def write_report(out: str | os.PathLike, metrics: Mapping[str, Any], *, title: str = "kgfuse run",
                 samples: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> Path:
    """``report.md`` (and its PNG plots) from a ``metrics.json``-like dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history = metrics.get("history") or []
    buckets = metrics.get("by_linked_concepts") or {}
    plots = _plots(out, history, buckets)
    lines = [f"# {title}", ""]
    info = metrics.get("info") or {}
    for k, v in info.items():
        lines.append(f"- **{k}**: {v}")
    if info:
        lines.append("")
    lines += ["## Accuracy", "", "| split | accuracy | correct | labelled | total |", "| --- | --- | --- | --- | --- |"]
    for split, m in (metrics.get("splits") or {}).items():
        lines.append(f"| {split} | {_fmt(m.get('accuracy'))} | {m.get('correct')} | {m.get('count')} | {m.get('total')} |")
    lines.append("")
    data = metrics.get("data") or {}
    if data:
        lines += ["## Data", "", "| split | file | read | used | skipped | without label |", "| --- | --- | --- | --- | --- | --- |"]
        for split, d in data.items():
            why = ", ".join(f"{k}: {v}" for k, v in sorted((d.get("skipped_by_reason") or {}).items()))
            lines.append(f"| {split} | `{Path(str(d.get('path', ''))).name}` | {d.get('read')} | {_fmt(d.get('used'))} | "
                         f"{d.get('skipped')}{f' ({why})' if why else ''} | {d.get('unlabeled')} |")
        lines.append("")
        for split, d in data.items():
            for p in d.get("problems") or []:
                lines.append(f"- {split}: {p}")
        if any(d.get("problems") for d in data.values()):
            lines.append("")
    if metrics.get("best_epoch") is not None:
        lines.append(f"Best epoch: {metrics['best_epoch']} (selection metric {metrics.get('selection_metric')} = {_fmt(metrics.get('best_metric'))}).")
        lines.append("")
    if history:
        keys = ["epoch", "train_loss"] + sorted(k for k in history[0] if k.endswith("_accuracy")) + ["seconds"]
        lines += ["## Learning curves", "", "| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
        for h in history:
            lines.append("| " + " | ".join(_fmt(h.get(k)) for k in keys) + " |")
        lines.append("")
        if "learning_curves" in plots:
            lines += [f"![learning curves]({plots['learning_curves']})", ""]
    if buckets:
        lines += ["## Accuracy by number of linked concepts", ""]
        for split, rows in buckets.items():
            lines += [f"**{split}**", "", "| linked concepts | questions | accuracy |", "| --- | --- | --- |"]
            lines += [f"| {r['bucket']} | {r['count']} | {r['accuracy']:.4f} |" for r in rows]
            lines.append("")
        if "accuracy_by_concepts" in plots:
            lines += [f"![accuracy by linked concepts]({plots['accuracy_by_concepts']})", ""]
    if metrics.get("timings"):
        lines += ["## Timings", ""] + [f"- {k}: {v:.1f} s" for k, v in metrics["timings"].items()] + [""]
    for split, recs in (samples or {}).items():
        if not recs:
            continue
        lines += [f"## Example predictions ({split})", ""]
        for r in recs:
            mark = "✓" if r.get("correct") else ("✗" if r.get("label") is not None else "?")
            lines.append(f"- {mark} **{r.get('question', r['id'])}** → *{r.get('predicted_text', r['predicted'])}*"
                         + (f" (gold: *{r.get('label_text')}*)" if r.get("label") is not None and not r.get("correct") else ""))
            for e in r.get("explanation") or []:
                lines.append(f"  - `{e}`")
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------
# after training


def _records(split: str, examples, dataset, scores: np.ndarray, explain) -> list[dict[str, Any]]:
    recs = []
    for i, ex in enumerate(examples):
        s = scores[i]
        pred = int(np.argmax(s))
        rec = {
            "id": ex.id,
            "scores": [float(x) for x in s],
            "predicted": pred,
            "label": ex.label,
            "correct": None if ex.label is None else bool(pred == ex.label),
            "num_linked_concepts": dataset.num_linked_concepts(i) if hasattr(dataset, "pre") and dataset.pre is not None else 0,
            "explanation": explain(i, pred),
        }
        recs.append(rec)
    return recs


def evaluate_run(run: Any, result: Any, *, accelerator: Any = None, progress: bool = True, top_k: int = 3) -> dict[str, Any]:
    """Evaluate the best model of a finished run on every split and write metrics, predictions and the report.

    Loads ``best/model`` weights into ``run.model``, exports it with the tokenizer and
    pipeline description to ``<run>/model``, and returns the metrics per split.
    """
    from torch.utils.data import DataLoader

    from .checkpoint import load_model_weights
    from .pipeline import export_model
    from .train import accuracy, make_accelerator, predict_scores

    acc = accelerator if accelerator is not None else make_accelerator(run.config.train)
    out = run.output_dir
    model = result.model if getattr(result, "model", None) is not None else run.model
    if result.model_dir is not None and Path(result.model_dir).is_dir():
        load_model_weights(model, result.model_dir)
        if acc.is_main_process:
            export_model(result.model_dir, out / "model")
    elif acc.is_main_process:
        model.save_pretrained(str(out / "model"))
        run.export_extra(out / "model")
    acc.wait_for_everyone()
    pmodel = acc.prepare(model)
    splits: dict[str, Any] = {}
    buckets: dict[str, Any] = {}
    samples: dict[str, list] = {}
    t = time.time()
    for split, ds in run.datasets.items():
        loader = acc.prepare(DataLoader(ds, batch_size=run.config.train.eval_batch_size, shuffle=False, collate_fn=run.collator))
        scores, labels = predict_scores(pmodel, loader, acc, progress=progress)
        splits[split] = accuracy(scores, labels)
        if not acc.is_main_process:
            continue

        def explain(i: int, j: int, ds=ds) -> list[str]:
            if run.retriever is None:
                return []
            g, data = ds.pairs(i)[j]
            return run.retriever.explain(data, run.graph, limit=top_k)

        recs = _records(split, run.examples[split], ds, scores, explain)
        write_predictions(out / f"predictions-{split}.jsonl", recs)
        labelled = [r for r in recs if r["label"] is not None]
        if labelled and run.retriever is not None:
            buckets[split] = accuracy_by_linked_concepts([r["num_linked_concepts"] for r in labelled], [r["correct"] for r in labelled])
        exs = run.examples[split]
        samples[split] = [
            dict(r, question=exs[i].question, predicted_text=exs[i].choices[r["predicted"]],
                 label_text=None if r["label"] is None else exs[i].choices[r["label"]])
            for i, r in enumerate(recs[:5])
        ]
    eval_time = time.time() - t
    metrics = {
        "splits": splits,
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "selection_metric": run.config.train.metric,
        "history": result.history,
        "by_linked_concepts": buckets,
        "data": data_summary(getattr(run, "reports", None) or {}),
        "timings": dict(run.timings, train=result.wall_time, evaluate=eval_time, total=time.time() - run.t0),
        "info": {
            "graph": f"{run.config.graph.path} ({run.graph.num_concepts} concepts, {run.graph.num_edges} edges, hash {run.graph.hash[:12]})",
            "text encoder": run.config.model.text_encoder,
            "model": "LM only" if run.config.model.lm_only else f"graph encoder {getattr(run.model.config, 'graph_encoder', '?')}, "
                     f"{getattr(run.model.config, 'num_fusion_layers', '?')} fusion layers",
            "retriever": json.dumps(run.config.retriever),
            "device": str(acc.device) + f" × {acc.num_processes} process(es)",
        },
    }
    if acc.is_main_process:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        write_report(out, metrics, title=f"kgfuse run: {out.name}", samples=samples)
    return metrics


# --------------------------------------------------------------------------------------
# a trained predictor on a data file


def evaluate_predictor(predictor: Any, examples: Sequence[Any], *, batch_size: int = 16, cache_dir: str | os.PathLike | None = None,
                       top_k: int = 3, progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Accuracy and prediction records of a :class:`~kgfuse.tasks.inference.KGFusePredictor` on examples.

    Grounding and retrieval go through the preprocessing cache (``cache_dir``, default
    ``$KGFUSE_HOME/cache``), keyed by graph hash, linker/retriever config and the examples.
    """
    import torch
    from tqdm.auto import tqdm

    from .pipeline import MCFeatureDataset, TextOnlyDataset, preprocess

    if predictor.uses_graph:
        from .config import default_home

        cache = Path(cache_dir) if cache_dir is not None else default_home() / "cache"
        pre = preprocess(examples, predictor.graph, predictor.linker, predictor.retriever, cache)
        ds: Any = MCFeatureDataset(examples, pre, predictor.tokenizer, max_length=predictor.max_length)
    else:
        ds = TextOnlyDataset(examples, predictor.tokenizer, max_length=predictor.max_length)
    scores = []
    model = predictor.model
    with torch.no_grad():
        for s in tqdm(range(0, len(ds), batch_size), disable=not progress, desc="predict"):
            batch = predictor.collator([ds[i] for i in range(s, min(s + batch_size, len(ds)))])
            batch.pop("labels", None)
            batch = {k: v.to(predictor.device) for k, v in batch.items()}
            scores.append(model(**batch).logits.float().cpu().numpy())
    sc = np.concatenate(scores) if scores else np.zeros((0, 0))
    labels = np.asarray([-1 if e.label is None else e.label for e in examples])

    def explain(i: int, j: int) -> list[str]:
        return predictor.explain_pair(ds.pairs(i)[j], top_k=top_k)

    recs = _records("eval", examples, ds, sc, explain)
    from .train import accuracy

    return accuracy(sc, labels), recs


def run_evaluations(config_path: str | os.PathLike, overrides: Sequence[str] = (), *, progress: bool = True, log=print) -> list[dict[str, Any]]:
    """Run the (model, dataset, graph) combinations of a comparison file; write one table.

    Each entry of ``runs`` has ``name``, ``model`` (a trained model folder), ``data``
    (``{path, format, lenient, labels, max_examples}``; ``labels`` as in
    :func:`~kgfuse.tasks.datasets.load_examples`, default ``"auto"``) and optional ``graph``
    (a path; default: the graph recorded with the model). Paths are relative to the file. Writes
    ``comparison.md``, ``comparison.csv`` and ``predictions-<name>.jsonl`` into
    ``output_dir``.
    """
    from .config import apply_overrides, read_config_file, resolve_path
    from .datasets import load_examples
    from .inference import KGFusePredictor

    config_path = Path(config_path).expanduser().resolve()
    cfg = apply_overrides(read_config_file(config_path), overrides)
    base = config_path.parent
    runs = cfg.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"{config_path}: 'runs' must be a non-empty list of {{name, model, data, graph}}")
    out = resolve_path(cfg.get("output_dir") or "comparison", base)
    out.mkdir(parents=True, exist_ok=True)
    cache = resolve_path(cfg.get("cache_dir"), base) if cfg.get("cache_dir") else None
    rows = []
    predictors: dict[tuple[str, str], Any] = {}
    for k, r in enumerate(runs):
        where = f"{config_path}: runs[{k}]"
        if not isinstance(r, dict) or "model" not in r or "data" not in r:
            raise ValueError(f"{where} needs 'model' and 'data'")
        name = str(r.get("name") or f"run{k}")
        data = r["data"] if isinstance(r["data"], dict) else {"path": r["data"]}
        model_dir = resolve_path(r["model"], base)
        graph = resolve_path(r["graph"], base) if r.get("graph") else None
        key = (str(model_dir), str(graph))
        t = time.time()
        if key not in predictors:
            predictors[key] = KGFusePredictor.from_pretrained(model_dir, graph=graph)
        pred = predictors[key]
        exs, rep = load_examples(resolve_path(data["path"], base), data.get("format", "auto"),
                                 lenient=bool(data.get("lenient", False)), labels=data.get("labels", "auto"))
        if data.get("max_examples"):
            exs = exs[: int(data["max_examples"])]
        m, recs = evaluate_predictor(pred, exs, cache_dir=cache, progress=progress)
        write_predictions(out / f"predictions-{name}.jsonl", recs)
        row = {
            "name": name,
            "model": str(model_dir),
            "data": str(data["path"]),
            "graph": str(graph) if graph else (pred.info.get("graph", {}).get("path") if pred.uses_graph else "none (LM only)"),
            "graph_hash": (pred.graph.hash[:12] if pred.graph is not None else ""),
            "examples": len(exs),
            "skipped": rep.skipped,
            "labelled": m["count"],
            "accuracy": m["accuracy"],
            "seconds": round(time.time() - t, 2),
        }
        rows.append(row)
        if progress:
            log(f"{name}: accuracy {_fmt(m['accuracy'])} on {m['count']} labelled questions ({row['seconds']}s)")
    keys = list(rows[0])
    with (out / "comparison.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    md = ["# kgfuse comparison", "", f"Config: `{config_path.name}`", "",
          "| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    md += ["| " + " | ".join(_fmt(r[k]) for k in keys) + " |" for r in rows]
    (out / "comparison.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    if progress:
        log(f"comparison table: {out / 'comparison.md'} and {out / 'comparison.csv'}")
    return rows
