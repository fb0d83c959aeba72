"""The ``kgfuse`` command line. It only parses arguments and calls the Python APIs.

Commands::

    kgfuse demo [--output DIR] [--set train.epochs=3]           the main job on the bundled sample
    kgfuse graph build RAW OUT [--format conceptnet|triples|wordnet] [--relations merged17|raw] [--no-inverse]
    kgfuse graph info PATH                                     sizes, relations, hash, load report
    kgfuse link --graph PATH TEXT [--choice TEXT]             mentions (and grounding with --choice)
    kgfuse prepare --config FILE [--set k=v ...]              ground + retrieve every split into the cache
    kgfuse train --config FILE [--set k=v ...] [--output DIR] [--resume auto|CHECKPOINT]
    kgfuse pretrain --config FILE [--set k=v ...] [--output DIR | --link-only FILE]   ERNIE MLM + dEA pre-training
    kgfuse evaluate --config COMPARISON.yaml                   (model, dataset, graph) table
    kgfuse evaluate --model DIR --data FILE [--format F] [--graph PATH] [--output DIR]
    kgfuse predict --model DIR --question Q --choices A B C [--json]
    kgfuse predict --model DIR --data FILE --output preds.jsonl
    kgfuse explain --model DIR --question Q --choice C [--top-k 5]

Paths inside config files are relative to the config file; paths on the command line are
relative to the current directory (as any command-line argument).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence


def data_dir() -> Path:
    """The bundled sample data folder (installed as the ``kgfuse.data`` package)."""
    from importlib.resources import files

    return Path(str(files("kgfuse.data")))


def _abs(p: str | None) -> str | None:
    return None if p is None else str(Path(p).expanduser().resolve())


# --------------------------------------------------------------------------------------
# commands


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.output, args.set, progress=not args.quiet)
    return 0


def _graph_formats() -> list[str]:
    from kgfuse.kg.formats import GRAPH_FORMATS

    return sorted(GRAPH_FORMATS)


def _load_graph_arg(path: str, fmt: str = "auto", options: dict | None = None):
    from .pipeline import load_graph

    return load_graph({"path": _abs(path), "format": fmt, "options": options or {}})


def _graph_options(args: argparse.Namespace) -> dict:
    """Loader options of ``kgfuse graph build``: only those given on the command line, so the
    loader's own defaults (the same for every route) apply otherwise."""
    opts: dict = {}
    if getattr(args, "relations", None):
        opts["relations"] = args.relations
    if getattr(args, "no_inverse", False):
        opts["add_inverse"] = False
    if getattr(args, "columns", None):
        cols = [c.strip() for c in args.columns.split(",")]
        if all("=" in c for c in cols):
            opts["columns"] = {k.strip(): (int(v) if v.strip().isdigit() else v.strip())
                               for k, v in (c.split("=", 1) for c in cols)}
        else:
            opts["columns"] = [c or None for c in cols]
    if getattr(args, "negated", None):
        opts["negated"] = args.negated
    return opts


def cmd_graph_build(args: argparse.Namespace) -> int:
    kg = _load_graph_arg(args.raw, args.format, _graph_options(args))
    kg.save(Path(args.out).expanduser())
    print(f"{kg!r}\nhash {kg.hash}\nwritten to {Path(args.out).expanduser().resolve()}")
    rep = (kg.meta or {}).get("report")
    if rep:
        print(json.dumps(rep, indent=1)[:2000])
    return 0


def cmd_graph_info(args: argparse.Namespace) -> int:
    import numpy as np

    kg = _load_graph_arg(args.path, args.format)
    print(repr(kg))
    print(f"concepts:  {kg.num_concepts}")
    print(f"relations: {kg.num_relations}")
    print(f"edges:     {kg.num_edges}")
    print(f"hash:      {kg.hash}")
    counts = np.bincount(np.asarray(kg.relation), minlength=kg.num_relations)
    print("edges per relation:")
    for r in np.argsort(-counts)[: args.top]:
        print(f"  {kg.relation_name(int(r)):<24} {int(counts[r])}")
    deg = kg.degree("both")
    if len(deg):
        top = np.argsort(-deg)[:5]
        print("highest degree: " + ", ".join(f"{kg.concept_name(int(i))} ({int(deg[i])})" for i in top))
    if kg.meta and kg.meta.get("report"):
        print("load report: " + json.dumps(kg.meta["report"])[:1000])
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    from .pipeline import build_linker

    kg = _load_graph_arg(args.graph, args.graph_format)
    linker = build_linker(kg, {"max_words": args.max_words})
    if args.choice is None:
        for m in linker.link(args.text):
            print(f"[{m.start}:{m.end}] {m.text!r} -> {kg.concept_name(m.concept)}")
        return 0
    g = linker.ground(args.text, args.choice)
    print(g.describe(kg))
    print("question concepts: " + ", ".join(kg.concept_name(c) for c in g.question_concepts))
    print("answer concepts:   " + ", ".join(kg.concept_name(c) for c in g.answer_concepts))
    return 0


def _config(args: argparse.Namespace):
    from .config import load_config

    cfg = load_config(args.config, args.set)
    if getattr(args, "output", None):
        cfg.output_dir = _abs(args.output)
    return cfg


def cmd_prepare(args: argparse.Namespace) -> int:
    from .pipeline import build_linker, build_retriever, load_graph, load_splits, preprocess
    from .config import default_home

    cfg = _config(args)
    splits, reports = load_splits(cfg)
    graph = load_graph(cfg.graph, cfg.base_dir)
    linker = build_linker(graph, cfg.linker)
    retriever = build_retriever(graph, cfg.retriever)
    cache = cfg.path(cfg.cache_dir) if cfg.cache_dir else default_home() / "cache"
    for k, exs in splits.items():
        pre = preprocess(exs, graph, linker, retriever, cache, num_workers=cfg.data.preprocess_workers, progress=True)
        linked = sum(1 for i in range(len(pre)) for g, _ in pre[i] if g.question_concepts or g.answer_concepts)
        total = sum(len(e.choices) for e in exs)
        print(f"{k}: {len(exs)} questions, {linked}/{total} statements with linked concepts, "
              f"cache {'hit' if getattr(pre, 'cache_hit', False) else 'written'}: {getattr(pre, 'path', cache)}")
        if getattr(reports.get(k), "skipped", 0):
            print(f"  {reports[k]}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    cfg = _config(args)
    res = train(cfg, resume_from=args.resume, progress=not args.quiet, allow_changes=args.allow_changes,
                overwrite=args.overwrite)
    if not res.is_main_process:
        return 0
    for split, m in res.metrics.get("splits", {}).items():
        if m.get("accuracy") is not None:
            print(f"{split} accuracy: {m['accuracy']:.4f} ({m['correct']}/{m['count']})")
    print(f"run folder: {res.output_dir}\nreport: {res.output_dir / 'report.md'}\nmodel: {res.output_dir / 'model'}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .pretrain import load_pretrain_config, pretrain

    cfg = load_pretrain_config(args.config, args.set)
    if args.link_only:
        from .pretrain import link_corpus

        lc = link_corpus(cfg, progress=not args.quiet)
        path = lc.save(_abs(args.link_only))
        print(f"linked corpus: {len(lc.train)} training / {len(lc.eval)} held-out sequences -> {path}\n"
              f"train from it (no spaCy needed): kgfuse pretrain --config {args.config} --set data.linked={path}")
        return 0
    if args.output:
        cfg.output_dir = _abs(args.output)
    res = pretrain(cfg, progress=not args.quiet)
    f = res.final
    if f.get("dea_accuracy") is not None:
        print(f"held-out dEA accuracy: {f['dea_accuracy']:.4f} (removed alignments: "
              f"{f.get('dea_masked_accuracy') or 0:.4f}; chance {f['dea_chance']:.4f})")
    if f.get("mlm_loss") is not None:
        print(f"held-out MLM loss: {f['mlm_loss']:.4f}")
    print(f"run folder: {res.output_dir}\nreport: {res.output_dir / 'report.md'}\n"
          f"model (for kgfuse train --set model.init_from=...): {res.model_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_predictor, run_evaluations, write_predictions
    from .datasets import load_examples
    from .inference import KGFusePredictor

    if args.config:
        run_evaluations(args.config, args.set, progress=not args.quiet)
        return 0
    if not (args.model and args.data):
        raise SystemExit("kgfuse evaluate: give --config COMPARISON.yaml, or --model DIR and --data FILE")
    pred = KGFusePredictor.from_pretrained(_abs(args.model), graph=_abs(args.graph))
    exs, rep = load_examples(_abs(args.data), args.format, lenient=args.lenient, labels="optional")
    if rep.skipped:
        print(rep)
    m, recs = evaluate_predictor(pred, exs, progress=not args.quiet)
    print(f"accuracy: {m['accuracy']:.4f} ({m['correct']}/{m['count']})" if m["accuracy"] is not None else "no labels: accuracy n/a")
    if args.output:
        out = Path(args.output).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        write_predictions(out / "predictions.jsonl", recs)
        (out / "metrics.json").write_text(json.dumps({"data": _abs(args.data), "model": _abs(args.model), **m}, indent=1))
        print(f"written: {out / 'metrics.json'}, {out / 'predictions.jsonl'}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .inference import KGFusePredictor

    pred = KGFusePredictor.from_pretrained(_abs(args.model), graph=_abs(args.graph))
    if args.data:
        from .datasets import load_examples
        from .evaluate import evaluate_predictor, write_predictions

        exs, _ = load_examples(_abs(args.data), args.format, lenient=args.lenient, labels="optional")
        m, recs = evaluate_predictor(pred, exs, progress=True)
        out = Path(args.output or "predictions.jsonl").expanduser()
        write_predictions(out, recs)
        print(f"{len(recs)} predictions written to {out.resolve()}")
        if m["accuracy"] is not None:
            print(f"accuracy: {m['accuracy']:.4f} ({m['correct']}/{m['count']})")
        return 0
    if not (args.question and args.choices):
        raise SystemExit("kgfuse predict: give --question and --choices, or --data FILE")
    p = pred.predict(args.question, args.choices, top_k=args.top_k)
    if args.json:
        print(json.dumps(p.to_dict(), indent=1))
        return 0
    for i, (c, pr) in enumerate(zip(args.choices, p.probs)):
        print(f"{'*' if i == p.predicted else ' '} {pr:6.3f}  {c}")
    for line in p.explanation:
        print(f"    {line}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .inference import KGFusePredictor

    pred = KGFusePredictor.from_pretrained(_abs(args.model), graph=_abs(args.graph))
    if not pred.uses_graph:
        print("this model does not use a graph (LM only): nothing to explain")
        return 0
    g = pred.linker.ground(args.question, args.choice)
    data = pred.retriever(g)
    print(g.describe(pred.graph) or "(no mentions)")
    names = pred.concept_names(g)
    print(f"question concepts: {', '.join(names['question']) or '-'}")
    print(f"answer concepts:   {', '.join(names['answer']) or '-'}")
    print(f"subgraph: {int(data.num_nodes or 0)} nodes, {int(data.edge_index.shape[1])} edges")
    lines = pred.retriever.explain(data, pred.graph, limit=args.top_k)
    print("reasoning paths:" if lines else "no path between question and answer concepts")
    for line in lines:
        print(f"  {line}")
    return 0


# --------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kgfuse", description="Knowledge-graph-augmented language models for multiple-choice QA.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_set(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.lr_lm=2e-5 (repeatable)")

    p = sub.add_parser("demo", help="train + evaluate on the bundled sample with the shipped MiniLM")
    p.add_argument("--output", help="output folder (default: $KGFUSE_HOME/demo or ~/.cache/kgfuse/demo)")
    p.add_argument("--quiet", action="store_true")
    with_set(p)
    p.set_defaults(func=cmd_demo)

    g = sub.add_parser("graph", help="build or inspect a knowledge graph").add_subparsers(dest="graph_command", required=True)
    p = g.add_parser("build", help="raw file -> compiled graph folder")
    p.add_argument("raw", help="ConceptNet 5 assertions (.csv/.csv.gz), a ConceptNet 4 or other triples table "
                               "(.tsv/.txt, gzip too), a GraphML/GML file, or a WordNet database folder")
    p.add_argument("out", help="output folder")
    p.add_argument("--format", default="auto", choices=["auto", *_graph_formats()],
                   help="graph format (default: told from the path and, for tables, the header)")
    p.add_argument("--relations", help="relation mapping: a preset (merged17, conceptnet4) or raw "
                                       "(default: the format's own, merged17 for ConceptNet 5)")
    p.add_argument("--no-inverse", action="store_true", help="do not add inverse relations")
    p.add_argument("--columns", help="table layout: roles per position (relation,head,tail) or "
                                     "role=column pairs (head=head,relation=relation,tail=tail,weight=score,negation=freq)")
    p.add_argument("--negated", choices=["drop", "keep"],
                   help="rows whose negation column is < 0: drop and count them (default) or keep them as not<relation>")
    p.set_defaults(func=cmd_graph_build)
    p = g.add_parser("info", help="sizes, relations and hash of a graph")
    p.add_argument("path")
    p.add_argument("--format", default="auto", choices=["auto", *_graph_formats()], help="graph format (default: from the path)")
    p.add_argument("--top", type=int, default=20, help="relations to list")
    p.set_defaults(func=cmd_graph_info)

    p = sub.add_parser("link", help="print the concepts linked in a text")
    p.add_argument("text")
    p.add_argument("--graph", required=True, help="compiled graph folder or raw file")
    p.add_argument("--graph-format", default="auto")
    p.add_argument("--choice", help="also ground this answer choice (question = TEXT)")
    p.add_argument("--max-words", type=int, default=4)
    p.set_defaults(func=cmd_link)

    p = sub.add_parser("prepare", help="preprocess (ground + retrieve) every split of a config into the cache")
    p.add_argument("--config", required=True)
    with_set(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train and evaluate from a config file")
    p.add_argument("--config", required=True)
    p.add_argument("--output", help="run folder (overrides output_dir)")
    p.add_argument("--resume", help="'auto' (latest checkpoint in the run folder) or a checkpoint folder")
    p.add_argument("--allow-changes", action="store_true",
                   help="resume even though settings that change the run differ from the recorded ones (recorded in config-changes.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished or interrupted run in the output folder")
    p.add_argument("--quiet", action="store_true")
    with_set(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("pretrain", help="ERNIE pre-training (masked LM + denoising entity auto-encoder) on a linked corpus")
    p.add_argument("--config", required=True)
    p.add_argument("--output", help="output folder (overrides output_dir)")
    p.add_argument("--link-only", metavar="FILE", help="only link and tokenise the corpus into FILE (.jsonl.gz); "
                   "train from it elsewhere with --set data.linked=FILE (no spaCy needed there)")
    p.add_argument("--quiet", action="store_true")
    with_set(p)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("evaluate", help="evaluate a model on a data file, or run a comparison config")
    p.add_argument("--config", help="comparison file: a list of (model, data, graph) runs")
    p.add_argument("--model", help="trained model folder (<run>/model)")
    p.add_argument("--data", help="data file")
    p.add_argument("--format", default="auto")
    p.add_argument("--graph", help="graph to use instead of the recorded one (must have the same hash)")
    p.add_argument("--output", help="folder for metrics.json and predictions.jsonl")
    p.add_argument("--lenient", action="store_true")
    p.add_argument("--quiet", action="store_true")
    with_set(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="answer a question (or a data file) with a trained model")
    p.add_argument("--model", required=True)
    p.add_argument("--question")
    p.add_argument("--choices", nargs="+")
    p.add_argument("--data")
    p.add_argument("--format", default="auto")
    p.add_argument("--lenient", action="store_true")
    p.add_argument("--output", help="predictions jsonl (with --data)")
    p.add_argument("--graph")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="grounding and reasoning paths of one (question, choice)")
    p.add_argument("--model", required=True)
    p.add_argument("--question", required=True)
    p.add_argument("--choice", required=True)
    p.add_argument("--graph")
    p.add_argument("--top-k", type=int, default=10)
    p.set_defaults(func=cmd_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .config import ConfigError
    from .datasets import DataFormatError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, DataFormatError, FileNotFoundError) as e:
        print(f"kgfuse {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
