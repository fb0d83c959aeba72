"""Evaluation: metrics, predictions with explanations, a Markdown report with plots, a model card, comparisons.

After training, :func:`evaluate_run` writes into the run folder:

- ``metrics.json``: accuracy, correct, ``count`` (labelled questions, each counted once)
  and ``total`` per split; ``data``: per split, the records read, loaded, used, skipped (by
  reason) and without label (see :class:`~kgfuse.tasks.datasets.LoadReport`); best epoch,
  history, timings;
- ``predictions-<split>.jsonl``: one line per question (see :func:`prediction_record`):
  ``id``, ``question``, ``choices``, ``label`` and ``label_text``, ``predicted`` and
  ``predicted_text``, ``correct``, ``scores`` (one per choice), ``num_linked_concepts``,
  ``explanation`` (why the chosen answer: its top reasoning paths, or subgraph edges, or what
  was linked when no path joins question and answer), for a wrong answer
  ``gold_explanation`` (the same for the right answer), and for a labelled question of a
  model that retrieves (a graph model, or one reading knowledge text) ``edge_pattern``
  (which choices a question-answer edge of the subgraphs as retrieved reaches, see
  :func:`edge_pattern`); ``metrics.json`` has the accuracy per pattern (``by_edge_pattern``);
- ``report.md`` with ``learning_curves.png`` (the chosen epoch marked) and
  ``accuracy_by_concepts.png`` (quantile buckets, see :func:`accuracy_by_linked_concepts`),
  and up to five right and five wrong example predictions per split (a fixed sample: see
  :func:`select_examples`);
- ``model/README.md``: the model card (:func:`write_model_card`).

:func:`run_evaluations` runs a list of (model, dataset, graph) combinations from a YAML/TOML
file and writes one comparison table (``comparison.md`` and ``comparison.csv``)::

    output_dir: comparison            # relative to this file
    runs:
      - name: demo-on-sample-dev
        model: ~/.cache/kgfuse/demo/model   # a trained model folder
        data: {path: bundled:sample_csqa/dev.jsonl, format: csqa}
        graph: null                     # default: the graph recorded with the model
      - ...

The report and the model card are drawn by :mod:`kgfuse.tasks.report` (every public name of
it is importable from here too).

Run names become file names (``predictions-<name>.jsonl``) only after :func:`safe_file_name`:
a name such as ``demo/dev`` or ``../x`` never leaves ``output_dir`` or creates folders.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .report import (EDGE_PATTERNS, _fmt, _kind, _model_kind, accuracy_by_concepts_figure, accuracy_by_edge_pattern,  # noqa: F401
                     accuracy_by_linked_concepts, edge_pattern, learning_curve_figure, select_examples, write_model_card,
                     write_report)

__all__ = [
    "accuracy_by_linked_concepts",
    "accuracy_by_edge_pattern",
    "edge_pattern",
    "EDGE_PATTERNS",
    "data_summary",
    "explain_answer",
    "prediction_record",
    "select_examples",
    "safe_file_name",
    "write_predictions",
    "write_report",
    "write_model_card",
    "learning_curve_figure",
    "accuracy_by_concepts_figure",
    "evaluate_run",
    "evaluate_predictor",
    "run_evaluations",
]

logger = logging.getLogger(__name__)



def safe_file_name(name: str, used: set[str] | None = None) -> str:
    """``name`` as one file-name component: other characters than letters, digits, ``.``,
    ``_`` and ``-`` become ``_``, leading dots and underscores go (``../../x`` -> ``x``,
    ``demo/dev`` -> ``demo_dev``); a name already in ``used`` gets ``-2``, ``-3``, ... and the
    result is added to ``used``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).lstrip("._").rstrip(".") or "run"
    out, k = base, 2
    while used is not None and out in used:
        out, k = f"{base}-{k}", k + 1
    if used is not None:
        used.add(out)
    return out


def data_summary(reports: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{split: report dict}`` of the load reports of a run (``read``, ``loaded``, ``used``,
    ``skipped``, ``skipped_by_reason``, ``unlabeled``, ``labelled``, ``num_choices``,
    ``problems``), as written to ``metrics.json`` under ``data``."""
    return {k: (r.to_dict() if hasattr(r, "to_dict") else dict(r)) for k, r in reports.items()}


def write_predictions(path: str | os.PathLike, records: Sequence[Mapping[str, Any]]) -> Path:
    """One JSON line per record (see :func:`prediction_record`)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------------------
# after training


def explain_answer(pair: tuple[Any, Any], retriever: Any, graph: Any, *, top_k: int = 3) -> list[str]:
    """Why the model could (or could not) use the graph for one (question, choice).

    The retriever's readable lines for the pair's subgraph (reasoning paths, or edges) when
    there are any; else what was linked (``no path in the retrieved subgraph; linked:
    question [...] / answer [...]``); else that nothing was linked. Empty only for an LM-only
    model (``retriever`` ``None``), which uses no graph.
    """
    if retriever is None or graph is None:
        return []
    g, data = pair
    lines = list(retriever.explain(data, graph, limit=top_k))
    if lines:
        return lines
    q = [graph.concept_name(int(c)) for c in g.question_concepts]
    a = [graph.concept_name(int(c)) for c in g.answer_concepts]
    if not q and not a:
        return ["no concept of the graph linked in the question or this answer"]
    return [f"no path in the retrieved subgraph; linked: question {q or '-'} / answer {a or '-'}"]


def prediction_record(example: Any, scores: Sequence[float], *, num_linked_concepts: int = 0,
                      explain: Callable[[int], list[str]] | None = None) -> dict[str, Any]:
    """One line of ``predictions-<split>.jsonl``.

    Keys: ``id``, ``question``, ``choices``, ``label`` and ``label_text`` (``None`` without a
    label), ``predicted`` and ``predicted_text``, ``correct``, ``scores``,
    ``num_linked_concepts``, ``explanation`` (``explain(predicted)``) and, when the answer is
    wrong, ``gold_explanation`` (``explain(label)``).
    """
    pred = int(np.argmax(scores))
    label = example.label
    rec = {
        "id": example.id,
        "question": example.question,
        "choices": list(example.choices),
        "label": label,
        "label_text": None if label is None else example.choices[label],
        "predicted": pred,
        "predicted_text": example.choices[pred],
        "correct": None if label is None else bool(pred == label),
        "scores": [float(x) for x in scores],
        "num_linked_concepts": int(num_linked_concepts),
        "explanation": explain(pred) if explain is not None else [],
    }
    if label is not None and pred != label and explain is not None:
        rec["gold_explanation"] = explain(label)
    return rec


def _records(examples, dataset, scores: np.ndarray, explain: Callable[[int, int], list[str]]) -> list[dict[str, Any]]:
    from ..kg.retrieval import question_answer_joins

    with_graph = getattr(dataset, "pre", None) is not None
    recs = []
    for i, ex in enumerate(examples):
        rec = prediction_record(ex, scores[i], num_linked_concepts=dataset.num_linked_concepts(i) if with_graph else 0,
                                explain=lambda j, i=i: explain(i, j))
        if with_graph and rec["label"] is not None:
            joined = [question_answer_joins(d)[0] for _, d in dataset.retrieved_pairs(i)]
            rec["edge_pattern"] = edge_pattern(joined, rec["label"])
        recs.append(rec)
    return recs


def evaluate_run(run: Any, result: Any, *, accelerator: Any = None, progress: bool = True, top_k: int = 3) -> dict[str, Any]:
    """Evaluate the best model of a finished run on every split and write metrics, predictions and the report.

    Loads the best weights (``result.model_dir``, the run's ``model/`` that :func:`fit`
    exported) into ``run.model`` (without a best model, the trained model is exported there
    now), writes the model card (``<run>/model/README.md``, :func:`write_model_card`) once the
    results are known, and returns the metrics per split. ``metrics["disk"]`` holds the run
    folder's size per part (:func:`~kgfuse.tasks.checkpoint.folder_sizes`).
    """
    from torch.utils.data import DataLoader

    from .checkpoint import folder_sizes, load_model_weights, save_model_folder
    from .pipeline import export_model
    from .train import accuracy, make_accelerator, predict_scores

    acc = accelerator if accelerator is not None else make_accelerator(run.config.train)
    out = run.output_dir
    model = result.model if getattr(result, "model", None) is not None else run.model
    if result.model_dir is not None and Path(result.model_dir).is_dir():
        load_model_weights(model, result.model_dir)
        if acc.is_main_process and Path(result.model_dir).resolve() != (out / "model").resolve():
            export_model(result.model_dir, out / "model")
    elif acc.is_main_process:
        save_model_folder(model, out / "model", run.export_extra)
    acc.wait_for_everyone()
    pmodel = acc.prepare(model)
    splits: dict[str, Any] = {}
    buckets: dict[str, Any] = {}
    patterns: dict[str, Any] = {}
    samples: dict[str, list] = {}
    t = time.time()
    for split, ds in run.datasets.items():
        if split == "train" and not run.config.train.eval_train_at_end:
            continue
        loader = acc.prepare(DataLoader(ds, batch_size=run.config.train.eval_batch_size, shuffle=False, collate_fn=run.collator))
        scores, labels = predict_scores(pmodel, loader, acc, progress=progress)
        splits[split] = accuracy(scores, labels)
        if not acc.is_main_process:
            continue

        def explain(i: int, j: int, ds=ds) -> list[str]:
            return explain_answer(ds.retrieved_pairs(i)[j], run.retriever, run.graph, top_k=top_k)

        recs = _records(run.examples[split], ds, scores, explain)
        write_predictions(out / f"predictions-{split}.jsonl", recs)
        labelled = [r for r in recs if r["label"] is not None]
        if labelled and run.retriever is not None:
            buckets[split] = accuracy_by_linked_concepts([r["num_linked_concepts"] for r in labelled], [r["correct"] for r in labelled])
            if all("edge_pattern" in r for r in labelled):
                patterns[split] = accuracy_by_edge_pattern([r["edge_pattern"] for r in labelled],
                                                           [r["correct"] for r in labelled])
        samples[split] = recs
    eval_time = time.time() - t
    metrics = {
        "splits": splits,
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "selection_metric": run.config.train.metric,
        "stopped_early": result.stopped_early,
        "sittings": result.sittings,
        "history": result.history,
        "by_linked_concepts": buckets,
        "by_edge_pattern": patterns,
        "data": data_summary(getattr(run, "reports", None) or {}),
        "timings": dict(run.timings, train=result.wall_time, train_all_sittings=result.training_seconds,
                        evaluate=eval_time, total=time.time() - run.t0),
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
        write_report(out, metrics, title=f"kgfuse run: {out.name}", samples=samples)
        write_model_card(out / "model", metrics=metrics, model_config=model.config, pipeline=run.pipeline_info(),
                         config=run.config.resolved().to_dict(), num_parameters=sum(p.numel() for p in model.parameters()),
                         name=out.name)
        metrics["disk"] = folder_sizes(out)  # measured last: metrics.json itself adds a few kB
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
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

    ds = predictor.dataset(examples, cache_dir=cache_dir)
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
        return explain_answer(ds.retrieved_pairs(i)[j], predictor.retriever, predictor.graph, top_k=top_k)

    return _accuracy(sc, labels), _records(examples, ds, sc, explain)


def _accuracy(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """:func:`kgfuse.tasks.train.accuracy`, without importing the training module (and
    Accelerate) into a process that only predicts."""
    mask = labels >= 0
    n = int(mask.sum())
    correct = int((scores[mask].argmax(-1) == labels[mask]).sum()) if n else 0
    return {"accuracy": (correct / n) if n else None, "correct": correct, "count": n, "total": int(labels.shape[0])}


def run_evaluations(config_path: str | os.PathLike, overrides: Sequence[str] = (), *, progress: bool = True,
                    log: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Run the (model, dataset, graph) combinations of a comparison file; write one table.

    Each entry of ``runs`` has ``name``, ``model`` (a trained model folder), ``data``
    (``{path, format, lenient, labels, max_examples}``; ``labels`` as in
    :func:`~kgfuse.tasks.datasets.load_examples`, default ``"auto"``) and optional ``graph``
    (a path; default: the graph recorded with the model) and ``graph_input`` (a test-time
    ablation of a fused model: ``full``, ``no_edges``, ``qa_only`` or ``none``; default: the view
    it was trained on; see :attr:`~kgfuse.tasks.inference.KGFusePredictor.graph_input`) and
    ``knowledge_input`` (the same for the knowledge text of a model trained with it: ``full``,
    ``none``, ``triples``, ``definitions`` or ``examples``; see
    :attr:`~kgfuse.tasks.inference.KGFusePredictor.knowledge_input`). Paths are relative to
    the file. Writes
    ``comparison.md``, ``comparison.csv`` and ``predictions-<name>.jsonl`` into
    ``output_dir``, ``<name>`` made a plain file name by :func:`safe_file_name` (the
    ``predictions`` column names the file). Progress lines go to ``log`` (default: the
    ``kgfuse`` logger at info level).
    """
    from .config import apply_overrides, read_config_file, resolve_path
    from .datasets import load_examples
    from .inference import KGFusePredictor

    log = log or logger.info
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
    used: set[str] = set()
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
        try:
            pred.graph_input = r.get("graph_input")  # one predictor serves every view of a model
            pred.knowledge_input = r.get("knowledge_input")
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        exs, rep = load_examples(resolve_path(data["path"], base), data.get("format", "auto"),
                                 lenient=bool(data.get("lenient", False)), labels=data.get("labels", "auto"))
        if data.get("max_examples"):
            exs = exs[: int(data["max_examples"])]
        m, recs = evaluate_predictor(pred, exs, cache_dir=cache, progress=progress)
        pred_file = f"predictions-{safe_file_name(name, used)}.jsonl"
        write_predictions(out / pred_file, recs)
        row = {
            "name": name,
            "model": str(model_dir),
            "data": str(data["path"]),
            "graph": str(graph) if graph else (pred.info.get("graph", {}).get("path") if pred.uses_graph else "none (LM only)"),
            "graph_hash": (pred.graph.hash[:12] if pred.graph is not None else ""),
            "graph_input": pred.graph_input if pred.uses_graph else "",
            "knowledge_input": pred.knowledge_input if pred.knowledge_parts else "",
            "examples": len(exs),
            "skipped": rep.skipped,
            "labelled": m["count"],
            "accuracy": m["accuracy"],
            "seconds": round(time.time() - t, 2),
            "predictions": pred_file,
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
