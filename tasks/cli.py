"""The ``kgfuse`` command line. It only parses arguments and calls the Python APIs.

Commands::

    kgfuse demo [--output DIR] [--set train.epochs=3]           the main job on the bundled sample
    kgfuse graph build RAW OUT [--format conceptnet|triples|wordnet] [--relations merged17|raw] [--no-inverse]
    kgfuse graph info PATH                                     sizes, relations, hash, load report
    kgfuse link --graph PATH TEXT [--choice TEXT]             mentions (and grounding with --choice)
    kgfuse prepare --config FILE [--set k=v ...]              ground + retrieve every split into the cache
    kgfuse train --config FILE [--set k=v ...] [--output DIR] [--resume auto|CHECKPOINT]
    kgfuse pretrain --config FILE [--set k=v ...] [--output DIR [--resume auto|CKPT] | --link-only FILE]   ERNIE MLM + dEA pre-training
    kgfuse evaluate --config COMPARISON.yaml                   (model, dataset, graph) table
    kgfuse evaluate --model DIR --data FILE [--format F] [--graph PATH] [--graph-input VIEW]
                    [--knowledge-input VIEW] [--output DIR]
    kgfuse predict --model DIR --question Q --choices A B C [--json]
    kgfuse predict --model DIR --questions FILE|-               many questions, model loaded once (JSON lines)
    kgfuse predict --model DIR --data FILE --output preds.jsonl
    kgfuse serve --model DIR [--host 127.0.0.1] [--port 8765] [--threads N]   load once, answer over HTTP
    kgfuse predict --server URL --question Q --choices A B C   ask a running `kgfuse serve` (no torch imported)
    kgfuse explain --model DIR --question Q --choice C [--top-k 5]

``train``, ``pretrain``, ``evaluate``, ``predict`` and ``serve`` call :mod:`kgfuse.tasks.api`.

Every command takes ``-q/--quiet`` (results and errors only: no progress bars, no info
messages from kgfuse, transformers or huggingface_hub) and ``-v/--verbose`` (kgfuse's debug
and transformers' info messages), before or after its name; ``kgfuse --version`` prints the
installed version. Messages go through the ``kgfuse`` logger (to stderr), results to stdout.

Paths inside config files are relative to the config file; paths on the command line are
relative to the current directory (as any command-line argument).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

logger = logging.getLogger("kgfuse")


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


def _import_spacy_without_torch() -> None:
    """Import spaCy without letting thinc import torch (2-3 CPU seconds), for commands that
    use spaCy only to tokenise and look lemmas up (``link``).

    thinc imports torch, when it is installed, to offer its PyTorch layers; kgfuse's linker
    never uses them. torch is hidden during spaCy's import only, so it imports normally
    afterwards (thinc then just keeps ``has_torch = False`` in this process). Nothing is
    done when spaCy or torch is already imported.
    """
    if "spacy" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        import spacy  # noqa: F401
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


def cmd_link(args: argparse.Namespace) -> int:
    from .pipeline import build_linker

    _import_spacy_without_torch()
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
    # both build their indexes on first use: on a cache hit, never
    linker = build_linker(graph, cfg.linker)
    retriever = build_retriever(graph, cfg.retriever, text_encoder=cfg.model.text_encoder)
    cache = cfg.path(cfg.cache_dir) if cfg.cache_dir else default_home() / "cache"
    for k, exs in splits.items():
        pre = preprocess(exs, graph, linker, retriever, cache, num_workers=cfg.data.preprocess_workers, progress=not args.quiet)
        linked = pre.num_linked
        total = sum(len(e.choices) for e in exs)
        print(f"{k}: {len(exs)} questions, {linked}/{total} statements with linked concepts, "
              f"cache {'hit' if getattr(pre, 'cache_hit', False) else 'written'}: {getattr(pre, 'path', cache)}")
        if getattr(reports.get(k), "skipped", 0):
            logger.warning("  %s", reports[k])
    return 0


def _print_unfinished(step: int, output_dir) -> int:
    """What ``kgfuse train`` and ``kgfuse pretrain`` say when a sitting ends at
    ``train.stop_after_hours`` before the run is over; exit status 0 (nothing failed)."""
    print(f"not finished: this sitting stopped at step {step} (train.stop_after_hours); "
          f"continue the run with the same command and --resume auto\nrun folder: {output_dir}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from . import api

    res = api.train(args.config, args.set, output_dir=args.output or None, resume_from=args.resume,
                    progress=not args.quiet, allow_changes=args.allow_changes, overwrite=args.overwrite)
    if not res.is_main_process:
        return 0
    if not res.finished:
        return _print_unfinished(res.result.global_step, res.output_dir)
    for split, m in res.metrics.get("splits", {}).items():
        if m.get("accuracy") is not None:
            print(f"{split} accuracy: {m['accuracy']:.4f} ({m['correct']}/{m['count']})")
    print(f"run folder: {res.output_dir}\nreport: {res.output_dir / 'report.md'}\nmodel: {res.output_dir / 'model'}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from . import api

    if args.link_only and (args.resume or args.allow_changes):
        raise SystemExit("kgfuse pretrain: --resume and --allow-changes continue a training run; they do not apply "
                         "to --link-only")
    if args.link_only:
        lc = api.link_corpus(args.config, args.set, output=args.link_only, progress=not args.quiet)
        print(f"linked corpus: {lc.num_train} training / {lc.num_eval} held-out sequences -> {lc.path}\n"
              f"train from it (no spaCy needed): kgfuse pretrain --config {args.config} --set data.linked={lc.path}")
        return 0
    res = api.pretrain(args.config, args.set, output_dir=args.output or None, resume_from=args.resume,
                       allow_changes=args.allow_changes, progress=not args.quiet)
    if not res.finished:
        return _print_unfinished(res.global_step, res.output_dir)
    f = res.metrics
    if f.get("dea_accuracy") is not None:
        print(f"held-out dEA accuracy: {f['dea_accuracy']:.4f} (removed alignments: "
              f"{f.get('dea_masked_accuracy') or 0:.4f}; chance {f['dea_chance']:.4f})")
    if f.get("mlm_loss") is not None:
        print(f"held-out MLM loss: {f['mlm_loss']:.4f}")
    print(f"run folder: {res.output_dir}\nreport: {res.output_dir / 'report.md'}\n"
          f"model (for kgfuse train --set model.init_from=...): {res.model_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import api

    if args.config:
        ablation = [o for o, v in (("--graph-input", args.graph_input), ("--knowledge-input", args.knowledge_input)) if v]
        if ablation:
            raise SystemExit(f"kgfuse evaluate: {', '.join(ablation)} is for --model DIR --data FILE; in a comparison "
                             "file give graph_input / knowledge_input in each entry of runs")
        api.evaluate(config=args.config, overrides=args.set, progress=not args.quiet, only=args.only or (),
                     train=not args.no_train, stop_after_hours=args.stop_after_hours, run_settings=args.run_set or ())
        return 0
    if not (args.model and args.data):
        raise SystemExit("kgfuse evaluate: give --config COMPARISON.yaml, or --model DIR and --data FILE")
    if args.stop_after_hours is not None:
        raise SystemExit("kgfuse evaluate: --stop-after-hours bounds the training of an experiment file (--config)")
    if args.run_set:
        raise SystemExit("kgfuse evaluate: --run-set is for the runs of an experiment file (--config)")
    ev = api.evaluate(args.model, args.data, format=args.format, lenient=args.lenient, graph=args.graph,
                      progress=not args.quiet, graph_input=args.graph_input, knowledge_input=args.knowledge_input)
    m = ev.metrics
    if args.graph_input:
        print(f"graph input: {args.graph_input} (test-time ablation)")
    if args.knowledge_input:
        print(f"knowledge input: {args.knowledge_input} (test-time ablation)")
    print(f"accuracy: {m['accuracy']:.4f} ({m['correct']}/{m['count']})" if m["accuracy"] is not None else "no labels: accuracy n/a")
    if args.output:
        out = ev.save(args.output)
        print(f"written: {out / 'metrics.json'}, {out / 'predictions.jsonl'}")
    return 0


def _predict_threads(args: argparse.Namespace) -> int | None:
    """torch threads for ``kgfuse predict`` and ``kgfuse serve``: ``--threads``; else 1 for
    questions (one small batch each, which more threads barely speed up and slow down a lot
    when other processes keep the cores busy), unless ``OMP_NUM_THREADS`` is set; torch's
    default for ``--data``."""
    if args.threads is not None:
        return args.threads
    if getattr(args, "data", None) or os.environ.get("OMP_NUM_THREADS"):
        return None
    return 1


def _remote_predictor(args: argparse.Namespace) -> Any:
    """``--server URL``: the running server to ask, after refusing the options that are the
    server's own settings."""
    from .serve import RemotePredictor

    local = [o for o, given in (("--model", args.model), ("--data", args.data), ("--graph", args.graph),
                                ("--threads", args.threads is not None)) if given]
    if local:
        raise SystemExit(f"kgfuse predict: {', '.join(local)} cannot be combined with --server: the server answers "
                         "with the model, graph and threads it was started with (kgfuse serve --model DIR ...)")
    try:
        return RemotePredictor(args.server)
    except ValueError as e:
        raise SystemExit(f"kgfuse predict: --server: {e}") from None


def cmd_predict(args: argparse.Namespace) -> int:
    from . import api

    if args.server:
        model, threads = _remote_predictor(args), None
    elif args.model:
        model, threads = args.model, _predict_threads(args)
    else:
        raise SystemExit("kgfuse predict: give --model DIR, or --server URL of a running `kgfuse serve --model DIR`")
    if args.questions:
        if args.data or args.question or args.choices:
            raise SystemExit("kgfuse predict: give --questions FILE alone, without --question, --choices or --data")
        return _predict_questions(args, model, threads)
    if args.data:
        res = api.predict(model, data=args.data, format=args.format, lenient=args.lenient, graph=args.graph,
                          top_k=args.top_k, threads=threads, progress=not args.quiet)
        out = Path(args.output or "predictions.jsonl").expanduser()
        res.write(out)
        print(f"{len(res.records)} predictions written to {out.resolve()}")
        m = res.metrics
        if m["accuracy"] is not None:
            print(f"accuracy: {m['accuracy']:.4f} ({m['correct']}/{m['count']})")
        return 0
    if not (args.question and args.choices):
        raise SystemExit("kgfuse predict: give --question and --choices, --questions FILE, or --data FILE")
    if len(args.choices) < 2:
        raise SystemExit("kgfuse predict: give at least two --choices")
    rec = api.predict(model, args.question, args.choices, graph=args.graph, top_k=args.top_k,
                      threads=threads).records[0]
    if args.json:  # the prediction's own fields (a --questions line also has id, question and choices)
        print(json.dumps({k: v for k, v in rec.items() if k not in ("id", "question", "choices")}, indent=1))
        return 0
    for i, (c, pr) in enumerate(zip(rec["choices"], rec["probs"])):
        print(f"{'*' if i == rec['predicted'] else ' '} {pr:6.3f}  {c}")
    for line in rec["explanation"]:
        print(f"    {line}")
    return 0


def _predict_questions(args: argparse.Namespace, model: Any, threads: int | None) -> int:
    """``kgfuse predict --questions FILE|-``: the model is loaded once (or a server is asked),
    then every line is answered as it is read (one JSON line out per line in)."""
    from . import api

    src = sys.stdin if args.questions == "-" else Path(args.questions).expanduser().open(encoding="utf-8")
    where = "stdin" if src is sys.stdin else args.questions
    try:
        t, cpu = time.perf_counter(), time.process_time()
        if args.server:
            info = model.health()
            if not info.get("ready"):
                from .serve import ServerError

                raise ServerError(f"the server at {model.url} is still loading its model: try again in a few seconds")
            pred = model
            logger.info("answering the questions of %s with the server at %s (model %s), one JSON object per line",
                        where, model.url, info.get("model"))
        else:
            pred = api.load_predictor(model, graph=args.graph, threads=threads, warm_up=True)
            logger.info("model loaded in %.1f s (%.1f s of CPU); answering the questions of %s, one JSON object "
                        "per line", time.perf_counter() - t, time.process_time() - cpu, where)
        dst = Path(args.output).expanduser().open("w", encoding="utf-8") if args.output else sys.stdout
        try:
            cpu = time.process_time()
            summary = api.predict_stream(pred, src, dst, top_k=args.top_k)
            cpu = time.process_time() - cpu
        finally:
            if dst is not sys.stdout:
                dst.close()
    finally:
        if src is not sys.stdin:
            src.close()
    if summary.answered:
        logger.info("answered %d question(s) %s: %.0f ms per question (median wall; max %.0f ms), "
                    "%.0f ms of CPU per line on average", summary.answered,
                    f"by {model.url}" if args.server else "after loading", summary.median_ms, summary.max_ms,
                    1000 * cpu / (summary.answered + summary.errors))
    if summary.errors:
        logger.error("kgfuse predict: %d line(s) could not be answered (written as {\"error\": ...})", summary.errors)
        return 2
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from . import api

    def ready(server: Any) -> None:
        print(f"serving {server.model_name} at {server.url} (POST /predict, GET /health); Ctrl-C to stop", flush=True)

    logger.info("loading %s", args.model)
    api.serve(args.model, host=args.host, port=args.port, graph=args.graph, threads=_predict_threads(args),
              on_ready=ready)
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

# commands that load a model through transformers: --quiet / --verbose also set its logging
_USES_TRANSFORMERS = {"demo", "train", "pretrain", "evaluate", "predict", "explain", "serve"}


def _verbosity_options(quiet_default: object, verbose_default: object) -> argparse.ArgumentParser:
    """``-q/--quiet`` and ``-v/--verbose``, accepted before and after the command name."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument("-q", "--quiet", action="store_true", default=quiet_default,
                   help="print only results and errors: no progress bars, no info from kgfuse or transformers")
    g.add_argument("-v", "--verbose", action="count", default=verbose_default,
                   help="print more: kgfuse's debug messages and transformers' info messages")
    return p


class _VersionAction(argparse.Action):
    """``--version``: reads the installed version (``importlib.metadata``, ~20 ms) only when
    asked, so that every other command starts without it."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        import kgfuse

        print(f"{parser.prog} {kgfuse.__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The ``kgfuse`` argument parser (every option and command carries a help text)."""
    from .graph_input import GRAPH_INPUTS, KNOWLEDGE_INPUTS  # names only: imports nothing heavy

    top = _verbosity_options(False, 0)
    parser = argparse.ArgumentParser(prog="kgfuse", parents=[top],
                                     description="Knowledge-graph-augmented language models for multiple-choice QA.",
                                     epilog="Run `kgfuse COMMAND --help` for the options of a command.")
    parser.add_argument("-V", "--version", action=_VersionAction, help="print the installed kgfuse version and exit")
    # in a command, the verbosity options must not overwrite the ones given before it
    common = _verbosity_options(argparse.SUPPRESS, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands",
                                help="what to do (each has its own --help)")

    def command(parent: Any, name: str, text: str) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=text, description=text, parents=[common])

    def with_set(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.lr_lm=2e-5 (repeatable)")

    def with_data_format(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", default="auto", help="data format: csqa, obqa, swag or mc (default: told from the file)")
        p.add_argument("--lenient", action="store_true", help="skip malformed records (counted and reported) instead of stopping")

    p = command(sub, "demo", "train + evaluate on the bundled sample with the shipped MiniLM")
    p.add_argument("--output", help="output folder (default: $KGFUSE_HOME/demo or ~/.cache/kgfuse/demo)")
    with_set(p)
    p.set_defaults(func=cmd_demo)

    g = command(sub, "graph", "build or inspect a knowledge graph").add_subparsers(
        dest="graph_command", required=True, metavar="ACTION", title="actions", help="build or info")
    p = command(g, "build", "raw file -> compiled graph folder")
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
    p = command(g, "info", "sizes, relations and hash of a graph")
    p.add_argument("path", help="compiled graph folder or raw graph file")
    p.add_argument("--format", default="auto", choices=["auto", *_graph_formats()], help="graph format (default: from the path)")
    p.add_argument("--top", type=int, default=20, help="relations to list (default: 20)")
    p.set_defaults(func=cmd_graph_info)

    p = command(sub, "link", "print the concepts linked in a text")
    p.add_argument("text", help="text to link (the question, with --choice)")
    p.add_argument("--graph", required=True, help="compiled graph folder or raw file")
    p.add_argument("--graph-format", default="auto", help="graph format (default: from the path)")
    p.add_argument("--choice", help="also ground this answer choice (question = TEXT)")
    p.add_argument("--max-words", type=int, default=4, help="longest concept name matched, in words (default: 4)")
    p.set_defaults(func=cmd_link)

    p = command(sub, "prepare", "preprocess (ground + retrieve) every split of a config into the cache")
    p.add_argument("--config", required=True, help="training config file (YAML or TOML)")
    with_set(p)
    p.set_defaults(func=cmd_prepare)

    p = command(sub, "train", "train and evaluate from a config file")
    p.add_argument("--config", required=True, help="training config file (YAML or TOML)")
    p.add_argument("--output", help="run folder (overrides output_dir)")
    p.add_argument("--resume", help="'auto' (latest checkpoint in the run folder) or a checkpoint folder")
    p.add_argument("--allow-changes", action="store_true",
                   help="resume even though settings that change the run differ from the recorded ones (recorded in config-changes.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished or interrupted run in the output folder")
    with_set(p)
    p.set_defaults(func=cmd_train)

    p = command(sub, "pretrain", "ERNIE pre-training (masked LM + denoising entity auto-encoder) on a linked corpus")
    p.add_argument("--config", required=True, help="pre-training config file (YAML or TOML)")
    p.add_argument("--output", help="output folder (overrides output_dir)")
    p.add_argument("--link-only", metavar="FILE", help="only link and tokenise the corpus into FILE (.jsonl.gz); "
                   "train from it elsewhere with --set data.linked=FILE (no spaCy needed there)")
    p.add_argument("--resume", help="'auto' (latest checkpoint-<step> in the output folder, written every "
                   "train.save_steps) or a checkpoint folder")
    p.add_argument("--allow-changes", action="store_true",
                   help="resume even though settings that change the run differ from the recorded ones (recorded in config-changes.jsonl)")
    with_set(p)
    p.set_defaults(func=cmd_pretrain)

    p = command(sub, "evaluate", "evaluate a model on a data file, or run a comparison config")
    p.add_argument("--config", help="comparison file (runs: trained models on data files) or experiment file "
                   "(rows: training configs x seeds; trains what is missing, then writes results.md)")
    p.add_argument("--only", action="append", metavar="ROW",
                   help="experiment file: train only this row (name or name-s<seed>); repeatable")
    p.add_argument("--no-train", action="store_true",
                   help="experiment file: tabulate the finished runs, train nothing")
    p.add_argument("--stop-after-hours", type=float, metavar="H",
                   help="experiment file: stop training after H hours; the run in progress saves a checkpoint "
                        "that the same command resumes")
    p.add_argument("--run-set", action="append", metavar="KEY=VALUE",
                   help="experiment file: a setting of how each run trained now is carried out, not of what it "
                        "trains, e.g. train.eval_train_at_end=false (skip the training split in the final "
                        "evaluation); repeatable")
    p.add_argument("--model", help="trained model folder (<run>/model)")
    p.add_argument("--data", help="data file")
    with_data_format(p)
    p.add_argument("--graph", help="graph to use instead of the recorded one (must have the same hash)")
    p.add_argument("--graph-input", choices=GRAPH_INPUTS,
                   help="test-time ablation of a fused model: score with this view of each subgraph instead "
                   "of the one it was trained on (none: no graph at all; no_edges: linked nodes, no relations; "
                   "qa_only: question and answer nodes only)")
    p.add_argument("--knowledge-input", choices=KNOWLEDGE_INPUTS,
                   help="test-time ablation of a model trained with knowledge text: score with this part of "
                   "the text it would see (none: the plain input; triples, definitions, examples: only those "
                   "sentences)")
    p.add_argument("--output", help="folder for metrics.json and predictions.jsonl")
    with_set(p)
    p.set_defaults(func=cmd_evaluate)

    p = command(sub, "predict", "answer a question (or a data file) with a trained model")
    p.add_argument("--model", help="trained model folder (<run>/model)")
    p.add_argument("--server", metavar="URL",
                   help="ask a running `kgfuse serve` at URL (e.g. http://127.0.0.1:8765) instead of loading a model "
                        "here: for --question/--choices and --questions; not with --model, --data, --graph, --threads")
    p.add_argument("--question", help="question text")
    p.add_argument("--choices", nargs="+", metavar="CHOICE", help="answer choices (two or more)")
    p.add_argument("--questions", metavar="FILE",
                   help="answer many questions with the model loaded once: a file, or - for stdin, with one JSON "
                        "object per line ({\"question\": ..., \"choices\": [...], \"id\": ...}); one JSON "
                        "prediction per line is written as each is answered")
    p.add_argument("--data", help="data file to answer instead of one question")
    with_data_format(p)
    p.add_argument("--output", help="predictions jsonl (with --data: default predictions.jsonl; with --questions: "
                                    "default stdout)")
    p.add_argument("--graph", help="graph to use instead of the recorded one (must have the same hash)")
    p.add_argument("--top-k", type=int, default=3, help="reasoning lines shown for the chosen answer (default: 3)")
    p.add_argument("--json", action="store_true", help="print the prediction as JSON")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads (default: 1 for questions, unless OMP_NUM_THREADS is set; torch's default "
                        "for --data)")
    p.set_defaults(func=cmd_predict)

    p = command(sub, "serve", "load a model once and answer questions over HTTP (JSON) until Ctrl-C")
    p.add_argument("--model", required=True, help="trained model folder (<run>/model)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765; 0: any free port)")
    p.add_argument("--graph", help="graph to use instead of the recorded one (must have the same hash)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads (default: 1, unless OMP_NUM_THREADS is set); requests are answered one at a time")
    p.set_defaults(func=cmd_serve)

    p = command(sub, "explain", "grounding and reasoning paths of one (question, choice)")
    p.add_argument("--model", required=True, help="trained model folder (<run>/model)")
    p.add_argument("--question", required=True, help="question text")
    p.add_argument("--choice", required=True, help="the answer choice to explain")
    p.add_argument("--graph", help="graph to use instead of the recorded one (must have the same hash)")
    p.add_argument("--top-k", type=int, default=10, help="reasoning paths shown (default: 10)")
    p.set_defaults(func=cmd_explain)
    return parser


# --------------------------------------------------------------------------------------
# logging


@contextmanager
def cli_logging(verbosity: int = 0, *, transformers: bool = False) -> Iterator[None]:
    """Route the ``kgfuse`` logger to stderr for one command; restore everything afterwards.

    Args:
        verbosity: ``-1`` quiet (warnings and errors only; transformers' errors only and no
            progress bars from transformers or huggingface_hub), ``0`` kgfuse's info
            messages, ``1`` or more kgfuse's debug and transformers' info messages.
        transformers: also set transformers' logging (imports ``transformers.utils``).
    """
    level = logging.WARNING if verbosity < 0 else (logging.INFO if verbosity == 0 else logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if verbosity <= 0 else "%(levelname)s %(name)s: %(message)s"))
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    restore = _set_transformers_verbosity(verbosity) if transformers else None
    try:
        yield
    finally:
        if restore is not None:
            restore()
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _set_transformers_verbosity(verbosity: int):
    """Quiet or verbose transformers / huggingface_hub; returns a function that restores them."""
    if verbosity == 0:
        return None
    import huggingface_hub.utils as hub
    from transformers.utils import logging as tlog

    old_level, old_bar, old_hub_off = tlog.get_verbosity(), tlog.is_progress_bar_enabled(), hub.are_progress_bars_disabled()
    if verbosity < 0:
        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
        hub.disable_progress_bars()
    else:
        tlog.set_verbosity_info()

    def restore() -> None:
        tlog.set_verbosity(old_level)
        if verbosity < 0:
            if old_bar:
                tlog.enable_progress_bar()
            if not old_hub_off:
                hub.enable_progress_bars()

    return restore


def _input_errors() -> tuple[type[Exception], ...]:
    """Errors of the user's input (a bad config, data or graph file, a server that does not
    answer): one line and exit code 2, no traceback. Imported when an error is raised, so a
    command that needs none of these modules (``predict --server``) does not import them."""
    from kgfuse.kg.formats import GraphFormatError
    from kgfuse.kg.store import KGFormatError

    from .config import ConfigError
    from .datasets import DataFormatError
    from .serve import ServerError

    return ConfigError, DataFormatError, GraphFormatError, KGFormatError, FileNotFoundError, ServerError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = -1 if args.quiet else int(args.verbose or 0)
    # a question sent to a server loads no model here: transformers is not even imported
    loads_model = args.command in _USES_TRANSFORMERS and not getattr(args, "server", None)
    with cli_logging(verbosity, transformers=loads_model):
        try:
            return int(args.func(args) or 0)
        except Exception as e:
            if not isinstance(e, _input_errors()):
                raise
            logger.error("kgfuse %s: error: %s", args.command, e)
            return 2


if __name__ == "__main__":
    sys.exit(main())
