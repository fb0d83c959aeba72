"""The run report and the model card: ``report.md`` with its plots, and ``model/README.md``.

:func:`write_report` writes ``report.md`` (accuracy per split, data counts, learning curves with
the chosen epoch marked, accuracy by number of linked concepts, right and wrong example
predictions) and its PNG plots (:func:`learning_curve_figure`,
:func:`accuracy_by_concepts_figure`, drawn with matplotlib, imported only when a plot is
drawn); :func:`write_model_card` writes the model card of an exported model folder.
:mod:`kgfuse.tasks.evaluate` computes what they show and re-exports every public name.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "accuracy_by_linked_concepts",
    "EDGE_PATTERNS",
    "edge_pattern",
    "accuracy_by_edge_pattern",
    "select_examples",
    "write_report",
    "write_model_card",
    "learning_curve_figure",
    "accuracy_by_concepts_figure",
]


def _bucket_name(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def accuracy_by_linked_concepts(num_concepts: Sequence[int], correct: Sequence[bool], *,
                                max_buckets: int = 5) -> list[dict[str, Any]]:
    """Accuracy per quantile bucket of the number of linked concepts.

    The questions are sorted by their number of linked concepts and cut into at most
    ``max_buckets`` runs of about equal size (``len / max_buckets`` questions or more); all
    questions with the same number stay in one bucket, so a bucket is a range of counts
    (``"3-5"``, or ``"4"``). A last bucket smaller than half the others joins the one
    before it. Twelve questions give several buckets, as do twelve thousand.

    Returns:
        ``[{"bucket", "lo", "hi", "count", "correct", "accuracy"}]`` in increasing order.
    """
    nc = np.asarray(num_concepts, dtype=np.int64)
    ok = np.asarray(correct, dtype=bool)
    if nc.size == 0:
        return []
    values, counts = np.unique(nc, return_counts=True)
    target = nc.size / max(1, int(max_buckets))
    groups: list[list[int]] = []  # [lo, hi, size]
    for v, c in zip(values.tolist(), counts.tolist()):
        if groups and groups[-1][2] < target:
            groups[-1][1], groups[-1][2] = v, groups[-1][2] + c
        else:
            groups.append([v, v, c])
    if len(groups) > 1 and groups[-1][2] < target / 2:
        last = groups.pop()
        groups[-1][1], groups[-1][2] = last[1], groups[-1][2] + last[2]
    rows = []
    for lo, hi, _ in groups:
        m = (nc >= lo) & (nc <= hi)
        rows.append({"bucket": _bucket_name(lo, hi), "lo": lo, "hi": hi, "count": int(m.sum()),
                     "correct": int(ok[m].sum()), "accuracy": float(ok[m].mean())})
    return rows


#: What a question's retrieved subgraphs offer, by which choices a direct question-answer edge
#: reaches (:func:`edge_pattern`), in report order.
EDGE_PATTERNS = ("correct and wrong", "correct only", "wrong only", "none")


def edge_pattern(joined: Sequence[bool], label: int) -> str:
    """Which choices of one question a question-answer edge reaches: ``joined[j]`` says whether
    choice ``j``'s subgraph has one (:func:`kgfuse.kg.retrieval.question_answer_joins`).

    ``"correct and wrong"``, ``"correct only"``, ``"wrong only"`` or ``"none"``. A model that
    reads "an edge reaches this choice" as evidence gains on the first two and loses on
    ``"wrong only"``, which is what the split shows.
    """
    if not 0 <= label < len(joined):
        raise ValueError(f"label {label} is not a choice index (0..{len(joined) - 1})")
    correct = bool(joined[label])
    wrong = any(bool(x) for j, x in enumerate(joined) if j != label)
    if correct:
        return "correct and wrong" if wrong else "correct only"
    return "wrong only" if wrong else "none"


def accuracy_by_edge_pattern(patterns: Sequence[str], correct: Sequence[bool]) -> list[dict[str, Any]]:
    """Accuracy per :data:`EDGE_PATTERNS` value, in that order, patterns with no question left out.

    Returns:
        ``[{"pattern", "count", "correct", "accuracy"}]``.
    """
    if len(patterns) != len(correct):
        raise ValueError(f"{len(patterns)} patterns for {len(correct)} correctness values")
    unknown = sorted(set(patterns) - set(EDGE_PATTERNS))
    if unknown:
        raise ValueError(f"unknown edge patterns {unknown}; expected {list(EDGE_PATTERNS)}")
    rows = []
    for p in EDGE_PATTERNS:
        ok = [bool(c) for q, c in zip(patterns, correct) if q == p]
        if ok:
            rows.append({"pattern": p, "count": len(ok), "correct": sum(ok), "accuracy": sum(ok) / len(ok)})
    return rows


def learning_curve_figure(history: Sequence[Mapping[str, Any]], best_epoch: int | None = None):
    """Train loss (left axis) and the accuracies (right axis) per epoch; the chosen epoch
    (``best_epoch``, whose weights are exported) is a dotted vertical line, in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

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
    if best_epoch is not None:
        ax2.axvline(best_epoch, color="0.3", linestyle=":", linewidth=1.5, label=f"best epoch ({best_epoch}): exported")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1)
    lines = ax1.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax1.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="best", fontsize=8)
    ax1.set_title("learning curves")
    fig.tight_layout()
    return fig


def accuracy_by_concepts_figure(buckets: Mapping[str, Sequence[Mapping[str, Any]]]):
    """One panel per split: accuracy per bucket of linked concepts, questions above each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = [k for k, rows in buckets.items() if rows]
    fig, axes = plt.subplots(1, len(splits), figsize=(max(4.5, 3.5 * len(splits)), 3.5), squeeze=False, sharey=True)
    for ax, split in zip(axes[0], splits):
        rows = buckets[split]
        xs = np.arange(len(rows))
        ax.bar(xs, [r["accuracy"] for r in rows], 0.7, color="tab:blue")
        for x, r in zip(xs, rows):
            ax.text(x, r["accuracy"] + 0.01, str(r["count"]), ha="center", fontsize=7)
        ax.set_xticks(xs)
        ax.set_xticklabels([r["bucket"] for r in rows], fontsize=8)
        ax.set_xlabel("linked concepts (question + choices)")
        ax.set_title(split, fontsize=9)
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("accuracy")
    fig.suptitle("accuracy by number of linked concepts (questions above bars)", fontsize=9)
    fig.tight_layout()
    return fig


def _plots(out: Path, history: Sequence[Mapping[str, Any]], buckets: Mapping[str, list[dict[str, Any]]],
           best_epoch: int | None = None) -> dict[str, str]:
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    if history:
        fig = learning_curve_figure(history, best_epoch)
        fig.savefig(out / "learning_curves.png", dpi=100)
        plt.close(fig)
        files["learning_curves"] = "learning_curves.png"
    if any(buckets.values()):
        fig = accuracy_by_concepts_figure(buckets)
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


def select_examples(records: Sequence[Mapping[str, Any]], k: int = 5) -> dict[str, list[Mapping[str, Any]]]:
    """Up to ``k`` right, ``k`` wrong and ``k`` unlabelled records: a fixed sample.

    Records are ordered by a hash of their ``id``, so the sample is the same in every run
    and for every model on the same data, and spread over the file rather than its head.
    """
    order = sorted(records, key=lambda r: hashlib.sha256(str(r.get("id")).encode()).hexdigest())
    out: dict[str, list[Mapping[str, Any]]] = {"right": [], "wrong": [], "unlabelled": []}
    for r in order:
        if len(out[_kind(r)]) < k:
            out[_kind(r)].append(r)
    return out


def _kind(r: Mapping[str, Any]) -> str:
    return "unlabelled" if r.get("label") is None else ("right" if r.get("correct") else "wrong")


def _example_lines(r: Mapping[str, Any]) -> list[str]:
    mark = "✓" if r.get("correct") else ("✗" if r.get("label") is not None else "?")
    lines = [f"- {mark} **{r.get('question', r.get('id'))}** → *{r.get('predicted_text', r.get('predicted'))}*"
             + (f" (gold: *{r.get('label_text')}*)" if r.get("label") is not None and not r.get("correct") else "")]
    for e in r.get("explanation") or []:
        lines.append(f"  - `{e}`")
    if r.get("gold_explanation"):
        lines.append("  - for the gold answer:")
        lines += [f"    - `{e}`" for e in r["gold_explanation"]]
    return lines


def write_report(out: str | os.PathLike, metrics: Mapping[str, Any], *, title: str = "kgfuse run",
                 samples: Mapping[str, Sequence[Mapping[str, Any]]] | None = None, examples: int = 5) -> Path:
    """``report.md`` (and its PNG plots) from a ``metrics.json``-like dict.

    Args:
        out: folder to write into.
        metrics: as written to ``metrics.json`` (``splits``, ``history``, ``best_epoch``, ...).
        title: the report's heading.
        samples: prediction records per split (:func:`prediction_record`); the report shows
            up to ``examples`` right and ``examples`` wrong ones of each (:func:`select_examples`).
        examples: how many of each kind.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history = metrics.get("history") or []
    buckets = metrics.get("by_linked_concepts") or {}
    plots = _plots(out, history, buckets, metrics.get("best_epoch"))
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
        lines.append(f"Best epoch: {metrics['best_epoch']} (selection metric {metrics.get('selection_metric')} = "
                     f"{_fmt(metrics.get('best_metric'))}); its weights are the exported model, and the dotted line "
                     "of the learning-curve plot.")
        if metrics.get("stopped_early"):
            lines.append(f"The run stopped early, after epoch {len(history)}: {metrics.get('selection_metric')} had "
                         "stopped rising (`train.early_stopping_patience`).")
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
    by_pattern = metrics.get("by_edge_pattern") or {}
    if by_pattern:
        lines += ["## Accuracy by what the graph joins", "",
                  "Which choices a direct edge from a question concept reaches in the retrieved subgraphs.", ""]
        for split, rows in by_pattern.items():
            lines += [f"**{split}**", "", "| question-answer edges reach | questions | accuracy |", "| --- | --- | --- |"]
            lines += [f"| {r['pattern']} | {r['count']} | {r['accuracy']:.4f} |" for r in rows]
            lines.append("")
    if metrics.get("timings"):
        lines += ["## Timings", ""] + [f"- {k}: {v:.1f} s" for k, v in metrics["timings"].items()] + [""]
    sittings = metrics.get("sittings") or []
    if len(sittings) > 1:
        lines += [f"Trained in {len(sittings)} sittings, each resumed from the last one's checkpoint:", ""]
        lines += [f"- steps {x.get('from_step')}–{x.get('to_step')}: {float(x.get('seconds', 0.0)):.1f} s, started "
                  f"{x.get('started')}, code {x.get('source')}" for x in sittings] + [""]
    headings = {"right": "right answers", "wrong": "wrong answers", "unlabelled": "predictions without a label"}
    for split, recs in (samples or {}).items():
        chosen = select_examples(recs, examples)
        labelled = any(r.get("label") is not None for r in recs)
        for kind, heading in headings.items():
            n = sum(1 for r in recs if _kind(r) == kind)
            if not n and not (labelled and kind != "unlabelled"):
                continue
            lines += [f"## Examples: {heading} ({split}, {len(chosen[kind])} of {n})", ""]
            for r in chosen[kind]:
                lines += _example_lines(r)
            if not n:
                lines.append("None.")
            lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------
# model card


def _model_kind(mc: Any) -> str:
    if not getattr(mc, "use_graph", True):
        return "LM only: the text encoder and a linear scorer; the graph is not used"
    if not getattr(mc, "use_gnn", True):
        gnn = "static KG embeddings (no message passing)"
    else:
        gnn = f"graph encoder `{getattr(mc, 'graph_encoder', '?')}`"
    m = int(getattr(mc, "fused_layers", getattr(mc, "num_fusion_layers", 0)) or 0)
    if m == 0:
        return f"kgfuse, late fusion: text encoder + {gnn}; no ERNIE fusion layers"
    return f"kgfuse fused: text encoder + {gnn} + {m} ERNIE fusion layer{'s' if m != 1 else ''}"


def write_model_card(model_dir: str | os.PathLike, *, metrics: Mapping[str, Any], model_config: Any,
                     pipeline: Mapping[str, Any], config: Mapping[str, Any], num_parameters: int | None = None,
                     name: str | None = None) -> Path:
    """Write ``README.md`` into an exported model folder, as transformers' model cards.

    It says what the model is (kgfuse fused, late fusion or LM only; text encoder, graph
    encoder, fusion layers), its graph (path, format, content hash, size; linker and
    retriever settings), its data (files and question counts), its training settings and its
    results (accuracy per split, best epoch), and how to load it.

    Args:
        model_dir: the exported model folder (``<run>/model``).
        metrics: the run's ``metrics.json`` dict.
        model_config: the model's :class:`~kgfuse.fusion.KGFusedConfig`.
        pipeline: the folder's :data:`~kgfuse.tasks.pipeline.PIPELINE_FILE` dict.
        config: the resolved training config (:meth:`TrainConfig.to_dict`).
        num_parameters: parameter count, if known.
        name: the run's name (the heading).
    """
    model_dir = Path(model_dir)
    mc = model_config
    tc = getattr(mc, "text_config", None)
    data = config.get("data") or {}
    train = config.get("train") or {}
    graph = pipeline.get("graph") or {}
    uses_graph = bool(getattr(mc, "use_graph", True)) and not pipeline.get("lm_only", False)
    knowledge_text = pipeline.get("knowledge_text")  # retrieved knowledge as text: the graph matters, also LM only
    splits = metrics.get("splits") or {}
    tags = ["kgfuse", "multiple-choice", "knowledge-graph" if uses_graph else "lm-only"]
    if uses_graph and getattr(mc, "graph_encoder", None):
        tags.append(str(mc.graph_encoder))
    lines = ["---", "library_name: kgfuse", "pipeline_tag: multiple-choice", "tags:"] + [f"- {t}" for t in tags]
    results = [(k, m) for k, m in splits.items() if m.get("accuracy") is not None]
    if results:
        lines += ["model-index:", f"- name: {json.dumps(name or model_dir.parent.name)}", "  results:"]
        for k, m in results:
            lines += ["  - task: {type: multiple-choice}",
                      f"    dataset: {{name: {json.dumps(str(Path(str(data.get(k) or k)).name))}, type: {json.dumps(str(data.get('format', 'auto')))}, split: {k}}}",
                      f"    metrics: [{{type: accuracy, value: {m['accuracy']:.4f}}}]"]
    lines += ["---", "", f"# {name or model_dir.parent.name}", ""]
    lines += [f"A `KGFusedForMultipleChoice` model trained with kgfuse: {_model_kind(mc)}.", ""]

    lines += ["## Model", "", "| | |", "| --- | --- |"]
    te = getattr(mc, "text_encoder_name", None) or (config.get("model") or {}).get("text_encoder")
    te_shape = ""
    if tc is not None:
        te_shape = (f" ({getattr(tc, 'model_type', '?')}, {getattr(tc, 'num_hidden_layers', '?')} layers, "
                    f"hidden size {getattr(tc, 'hidden_size', '?')})")
    lines.append(f"| text encoder | `{te}`{te_shape} |")
    if uses_graph:
        kw = getattr(mc, "graph_encoder_kwargs", None) or {}
        lines.append(f"| graph encoder | `{getattr(mc, 'graph_encoder', '?')}`"
                     + (" (no message passing: static KG embeddings)" if not getattr(mc, "use_gnn", True) else "")
                     + f", hidden size {getattr(mc, 'graph_hidden_dim', '?')}" + (f", {json.dumps(kw)}" if kw else "") + " |")
        lines.append(f"| node features | {getattr(mc, 'node_feature_kind', '?')}, size {getattr(mc, 'node_dim', '?')}"
                     + (f", own rows for {mc.node_vocab_size} concepts" if getattr(mc, "node_vocab_size", 0) else "") + " |")
        m = int(getattr(mc, "fused_layers", getattr(mc, "num_fusion_layers", 0)) or 0)
        lines.append(f"| fusion layers | {m} ERNIE layer{'s' if m != 1 else ''}"
                     + (" (replacing the top text layers)" if m else " (late fusion only)") + " |")
    if num_parameters is not None:
        lines.append(f"| parameters | {num_parameters:,} |")
    lines.append("")

    if knowledge_text:
        lines += [f"Retrieved knowledge is also written into the input as text (`knowledge_text`: "
                  f"{json.dumps(knowledge_text.get('options'))}).", ""]
        ex = knowledge_text.get("examples")
        if ex:
            lines += [f"Each question also reads its {ex.get('k')} most similar training questions with their answers "
                      f"(BM25 over the {ex.get('examples')} examples saved in `knowledge_examples.jsonl`, "
                      f"content hash `{ex.get('hash')}`).", ""]
    if uses_graph or knowledge_text:
        lines += ["## Knowledge graph", "", "| | |", "| --- | --- |",
                  f"| path | `{graph.get('path')}` |",
                  f"| format | {graph.get('format')}" + (f", options {json.dumps(graph.get('options'))}" if graph.get("options") else "") + " |",
                  f"| content hash | `{graph.get('hash')}` |",
                  f"| size | {graph.get('num_concepts')} concepts, {graph.get('num_relations')} relations |",
                  f"| linker | {json.dumps((pipeline.get('linker') or {}).get('options')) if (pipeline.get('linker') or {}).get('options') else 'defaults'} |",
                  f"| retriever | {json.dumps((pipeline.get('retriever') or {}).get('options')) if (pipeline.get('retriever') or {}).get('options') else 'defaults'} |",
                  "",
                  "Use the model with this graph: its hash is checked when the model is loaded for prediction.", ""]

    reports = metrics.get("data") or {}
    lines += ["## Data", "", f"Format: `{data.get('format', 'auto')}`.", "",
              "| split | file | questions used | skipped | without label |", "| --- | --- | --- | --- | --- |"]
    for k in ("train", "dev", "test"):
        if not data.get(k) and k not in reports:
            continue
        r = reports.get(k) or {}
        lines.append(f"| {k} | `{data.get(k) or r.get('path', '')}` | {_fmt(r.get('used'))} | {_fmt(r.get('skipped'))} | "
                     f"{_fmt(r.get('unlabeled'))} |")
    if data.get("inhouse_qids"):
        lines.append(f"\nIn-house split ids: `{data['inhouse_qids']}`.")
    lines.append("")

    keys = ("epochs", "batch_size", "grad_accum", "lr_lm", "lr_gnn", "lr_fusion", "weight_decay", "warmup_ratio",
            "freeze_lm_epochs", "max_length", "mixed_precision", "seed", "metric", "early_stopping_patience")
    lines += ["## Training", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(train.get(k))} |" for k in keys if train.get(k) is not None]
    if metrics.get("stopped_early"):
        lines.append(f"| epochs trained | {len(metrics.get('history') or [])} (stopped early) |")
    if (config.get("model") or {}).get("init_from"):
        lines.append(f"| initialised from | `{config['model']['init_from']}` |")
    lines.append("")

    lines += ["## Results", "", "| split | accuracy | correct / labelled |", "| --- | --- | --- |"]
    for k, m in splits.items():
        lines.append(f"| {k} | {_fmt(m.get('accuracy'))} | {m.get('correct')} / {m.get('count')} |")
    if metrics.get("best_epoch") is not None:
        lines += ["", f"Weights of epoch {metrics['best_epoch']} (best {metrics.get('selection_metric')} = "
                      f"{_fmt(metrics.get('best_metric'))}). The run folder above this one holds `report.md`, "
                      "`metrics.json` and the predictions."]
    lines.append("")

    lines += ["## Use", "", "```python", "import kgfuse  # registers the \"kgfuse\" model type with transformers' Auto classes",
              "from transformers import AutoModelForMultipleChoice", "",
              "from kgfuse.tasks.inference import KGFusePredictor", "",
              f"model = AutoModelForMultipleChoice.from_pretrained({json.dumps(str(model_dir))})",
              'KGFusePredictor.for_loaded_model(model).predict("Where would you put a plate after drying it?", '
              '["cupboard", "oven", "roof"])',
              "```", "",
              "or `kgfuse predict --model <this folder> --question ... --choices ...`; "
              "`kgfuse.tasks.inference.KGFusePredictor.from_pretrained(<this folder>)` gives the same with its "
              "graph, linker and retriever" + (" (from the path above, or `graph=`)" if uses_graph or knowledge_text else "")
              + ".", ""]
    path = model_dir / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
