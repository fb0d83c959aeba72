"""Build the GPU carry bundle (see :mod:`bundle`) on a machine that has spaCy and the data.

Command (from the repository root)::

    .venv/bin/python benchmarks/gpu/make_bundle.py --out benchmarks/gpu/bundle

It grounds every question of CommonsenseQA (in-house train ``train_ih.jsonl``, official dev)
and OpenBookQA (train / dev / test) from ``../shared/data`` against the WordNet 3.0 lemma
graph (default) or a graph file (``--graph``, e.g. ConceptNet 4's ``conceptnet4_en.tsv.gz``,
carried as it is and reloaded with the same format and options on the GPU side) with the project's :class:`~kgfuse.kg.EntityLinker` (through
:func:`kgfuse.tasks.pipeline.preprocess`, so the cache is the project's own, keyed by graph
hash, linker config and examples hash), stores the groundings and the retriever's node sets
(edges are rebuilt from the graph on the GPU side), measures linking coverage and subgraph
sizes, optionally writes the WordNet gloss of every grounded concept (``--definitions
wordnet``, for the knowledge-text models), converts the text encoder
(default: the shipped all-MiniLM-L6-v2) to float16, compresses it all and prints the size.

The bundle holds third-party data: it lives under ``benchmarks/gpu/bundle`` (git-ignored)
and travels to the GPU only through the device tool's ``carry``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle import (  # noqa: E402
    DATASETS,
    FORMAT,
    MODEL_FILES,
    REPO_ROOT,
    WEIGHTS_FP16,
    describe,
    ensure_kgfuse_importable,
    fp32_to_fp16,
    gzip_file,
    linking_stats,
    manifest_files,
    tar_folder,
)

#: the carry limit of the device tool, repository included
CARRY_LIMIT = 64 * 2**20
DEFAULT_RETRIEVER = {"type": "subgraph", "max_nodes": 200}


def tracked_bytes(repo: Path) -> int | None:
    """Bytes of the files git tracks plus untracked files that are not ignored (what the
    device tool sends besides the carried paths); ``None`` without git."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    total = 0
    for rel in out.split(b"\0"):
        if rel:
            p = repo / os.fsdecode(rel)
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total


def grounded_concepts(pre) -> set[int]:
    """Ids of every question and answer concept grounded in a preprocessed split."""
    out: set[int] = set()
    for i in range(len(pre)):
        for j in range(pre.num_choices(i)):
            g = pre.grounding(i, j)
            out.update(int(c) for c in g.question_concepts)
            out.update(int(c) for c in g.answer_concepts)
    return out


def write_definitions(path: Path, names, source) -> tuple[int, int]:
    """Write ``name<TAB>definition`` lines (gzip) for every name ``source`` defines, in the
    given order; returns (lines written, names skipped because a tab, a line break or a
    leading ``#`` would not survive the file format)."""
    import gzip

    n = skipped = 0
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("# concept<TAB>definition (kgfuse GPU bundle)\n")
        for name in names:
            d = " ".join(str(source(name) or "").split())
            if not d:
                continue
            if "\t" in name or "\n" in name or "\r" in name or name.lstrip().startswith("#") or not name.strip():
                skipped += 1
                continue
            f.write(f"{name}\t{d}\n")
            n += 1
    return n, skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="bundle folder (replaced)")
    ap.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data"), help="shared data folder (default ../shared/data)")
    ap.add_argument("--datasets", default="csqa,obqa", help="comma-separated: csqa, obqa")
    ap.add_argument("--wordnet", default=None, help="WordNet database folder (default: the loader's, /usr/share/wordnet)")
    ap.add_argument("--graph", default=None,
                    help="a graph file to carry instead of WordNet (any file kgfuse.kg.formats.open_graph reads, "
                         "e.g. ../shared/data/conceptnet4/conceptnet4_en.tsv.gz)")
    ap.add_argument("--graph-format", default="auto", help="format of --graph (default: told from the file)")
    ap.add_argument("--graph-options", default="{}", help="loader options of --graph (JSON)")
    ap.add_argument("--graph-name", default=None, help="the graph's name in the results (default: the file name)")
    ap.add_argument("--text-encoder", default="all-MiniLM-L6-v2", help="model name or folder (default: the shipped MiniLM)")
    ap.add_argument("--retriever", default=json.dumps(DEFAULT_RETRIEVER), help="retriever options (JSON) used on the GPU side")
    ap.add_argument("--linker", default="{}", help="EntityLinker options (JSON)")
    ap.add_argument("--max-examples", type=int, default=None, help="keep the first N examples of every split (tests)")
    ap.add_argument("--workers", type=int, default=2, help="grounding processes")
    ap.add_argument("--cache", default=None, help="preprocessing cache folder to reuse (default: a temporary one)")
    ap.add_argument("--store", choices=("nodes", "groundings"), default="nodes",
                    help="nodes: groundings + the retriever's node sets (edges rebuilt from the graph on the GPU side); "
                         "groundings: groundings only (the whole retrieval runs on the GPU side)")
    ap.add_argument("--no-stats", action="store_true", help="skip the subgraph statistics")
    ap.add_argument("--pretrain-glosses", type=int, default=5000,
                    help="WordNet glosses linked for ERNIE pre-training on the GPU side (run_gpu.py --models fused-pt); 0: none")
    ap.add_argument("--pretrain-max-length", type=int, default=48, help="token length of the pre-training sequences")
    ap.add_argument("--definitions", choices=("none", "wordnet"), default="none",
                    help="wordnet: carry the WordNet gloss of every grounded question and answer concept (the "
                         "'wordnet' definition source, read here from --wordnet), for run_gpu.py's knowledge-text models")
    ap.add_argument("--level", type=int, default=9, help="gzip level of the WordNet files (1 = fast, for tests)")
    args = ap.parse_args(argv)

    ensure_kgfuse_importable()
    from kgfuse.encoders.text import resolve_text_encoder
    from kgfuse.kg import KnowledgeGraph
    from kgfuse.kg import loaders as kg_loaders
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.pipeline import build_linker, build_retriever, preprocess

    t0 = time.time()
    out = Path(args.out).resolve()
    data_root = Path(args.data)
    wn_dir = Path(args.wordnet) if args.wordnet else Path(kg_loaders.DEFAULT_WORDNET)
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for d in names:
        if d not in DATASETS:
            ap.error(f"unknown dataset {d!r}; valid: {sorted(DATASETS)}")
    retr_opts = json.loads(args.retriever)
    link_opts = json.loads(args.linker)

    tmp = Path(tempfile.mkdtemp(prefix=".tmp-bundle-", dir=out.parent if out.parent.exists() else None))
    try:
        files: list[str] = []
        t = time.time()
        if args.graph is None:
            # ---- graph: WordNet db files, gzip'd
            graph_opts: dict = {"concepts": "lemmas"}
            graph = KnowledgeGraph.from_wordnet(wn_dir, **graph_opts)
            (tmp / "wordnet").mkdir()
            graph_files = []
            for p in sorted(wn_dir.iterdir()):
                if p.is_file() and (p.name.startswith(("data.", "index.")) or p.suffix == ".exc") and p.name != "index.sense":
                    rel = f"wordnet/{p.name}.gz"
                    gzip_file(p, tmp / rel, level=args.level)
                    graph_files.append(rel)
            graph_entry = {"loader": "wordnet", "name": "WordNet 3.0 lemma graph", "options": graph_opts}
        else:
            # ---- graph: the file as given (a .gz stays compressed; the loader reads it)
            from kgfuse.kg.formats import open_graph

            src = Path(args.graph)
            if not src.is_file():
                raise SystemExit(f"{src}: --graph must be a graph file")
            graph_opts = json.loads(args.graph_options)
            graph = open_graph(src, args.graph_format, **graph_opts)
            (tmp / "graph").mkdir()
            graph_files = [f"graph/{src.name}"]
            shutil.copyfile(src, tmp / graph_files[0])
            graph_entry = {"loader": "file", "name": args.graph_name or src.name, "format": args.graph_format,
                           "options": graph_opts}
        files += graph_files
        print(f"graph: {graph_entry['name']} {graph.num_concepts} concepts, {graph.num_relations} relations, "
              f"{graph.num_edges} edges, hash {graph.hash[:12]} ({time.time() - t:.1f}s)", flush=True)
        # ---- text encoder: float16 weights + config/tokenizer
        te = Path(resolve_text_encoder(args.text_encoder))
        if not (te / "model.safetensors").is_file():
            raise SystemExit(f"{te}: no model.safetensors (a local text-encoder folder with safetensors weights is needed)")
        (tmp / "model").mkdir()
        model_files = [n for n in MODEL_FILES if (te / n).is_file()]
        for n in model_files:
            shutil.copyfile(te / n, tmp / "model" / n)
        conv = fp32_to_fp16(te / "model.safetensors", tmp / "model" / WEIGHTS_FP16)
        files += [f"model/{n}" for n in model_files] + [f"model/{WEIGHTS_FP16}"]
        print(f"text encoder: {te.name}: {conv['tensors']} tensors to float16, max |w| {conv['max_abs']:.3g}, "
              f"max relative rounding error {conv['max_rel_rounding_error']:.2e}", flush=True)
        # ---- data + groundings
        linker = build_linker(graph, link_opts)
        retriever = build_retriever(graph, retr_opts)
        cache = Path(args.cache) if args.cache else tmp / "_cache"
        datasets: dict[str, dict] = {}
        grounded: set[int] = set()
        (tmp / "cache").mkdir()
        for d in names:
            spec = DATASETS[d]
            (tmp / "data" / d).mkdir(parents=True)
            splits = {}
            for split, rel_src in spec["splits"].items():
                src = data_root / rel_src
                if not src.is_file():
                    raise SystemExit(f"{src}: data file missing (see ../shared/data/README.md)")
                exs, rep = load_examples(src, spec["format"])
                if args.max_examples is not None:
                    exs = exs[: args.max_examples]
                t = time.time()
                pre = preprocess(exs, graph, linker, retriever if args.store == "nodes" else None, cache,
                                 num_workers=args.workers)
                secs = time.time() - t
                stats = linking_stats(pre, None if (args.no_stats or args.store == "nodes") else retriever)
                rel_data = f"data/{d}/{src.name}.gz"
                gzip_file(src, tmp / rel_data)
                key = pre.path.name
                rel_cache = f"cache/{d}-{split}.tar.gz"
                tar_folder(pre.path, tmp / rel_cache)
                files += [rel_data, rel_cache]
                splits[split] = {
                    "file": rel_data, "source": rel_src, "num_examples": len(exs), "max_examples": args.max_examples,
                    "skipped_records": getattr(rep, "skipped", 0), "cache": rel_cache, "cache_key": key,
                    "grounding_seconds": round(secs, 2), "cache_hit": bool(pre.cache_hit), "stats": stats,
                }
                print(f"{d}/{split}: {len(exs)} questions, {stats['statements']} statements, "
                      f"q&a linked {stats['share_q_and_a']}, mean nodes {stats.get('mean_nodes')} "
                      f"({secs:.1f}s grounding{', cache hit' if pre.cache_hit else ''})", flush=True)
                if args.definitions != "none":
                    grounded.update(grounded_concepts(pre))
            datasets[d] = {"format": spec["format"], "splits": splits}
        # ---- definitions of the grounded concepts, looked up here (the GPU side has no WordNet files)
        definitions_entry = None
        if args.definitions == "wordnet":
            from kgfuse.kg.verbalize import WordNetDefinitions

            t = time.time()
            source = WordNetDefinitions(wn_dir)
            rel_def = "definitions/wordnet.tsv.gz"
            (tmp / "definitions").mkdir()
            n_def, skipped = write_definitions(tmp / rel_def, (graph.concept_name(c) for c in sorted(grounded)), source)
            files.append(rel_def)
            definitions_entry = {"file": rel_def, "source": source.config, "concepts": len(grounded), "defined": n_def,
                                 "skipped_names": skipped, "seconds": round(time.time() - t, 1)}
            print(f"definitions: {n_def} of {len(grounded)} grounded concepts have a WordNet gloss"
                  f"{f'; {skipped} names not writable as name<TAB>text skipped' if skipped else ''} "
                  f"({time.time() - t:.1f}s)", flush=True)
        if not args.cache:
            shutil.rmtree(cache)
        # ---- pre-training corpus: WordNet glosses linked here (spaCy), trained on there
        pretrain_entry = None
        if args.pretrain_glosses > 0:
            from kgfuse.tasks.pretrain import PretrainConfig, link_corpus
            from kgfuse.encoders.text import load_tokenizer

            t = time.time()
            pcfg = PretrainConfig.from_dict({
                "corpus": [{"type": "wordnet_glosses", "path": str(wn_dir), "limit": args.pretrain_glosses}],
                "linker": link_opts, "data": {"eval_fraction": 0.05, "max_eval": 200},
                "train": {"max_length": args.pretrain_max_length},
            })
            lc = link_corpus(pcfg, graph=graph, tokenizer=load_tokenizer(str(te)), progress=False)
            rel_pt = "pretrain/wordnet_glosses.jsonl.gz"
            lc.save(tmp / rel_pt)
            files.append(rel_pt)
            st = lc.meta["train_linking"]
            pretrain_entry = {"file": rel_pt, "glosses": args.pretrain_glosses, "max_length": args.pretrain_max_length,
                              "train_sequences": len(lc.train), "eval_sequences": len(lc.eval),
                              "train_linking": st, "seconds": round(time.time() - t, 1)}
            print(f"pre-training corpus: {args.pretrain_glosses} WordNet glosses -> {len(lc.train)} training / "
                  f"{len(lc.eval)} held-out sequences, {st['mentions']} mentions ({time.time() - t:.1f}s)", flush=True)
        manifest = {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "graph": {**graph_entry, "hash": graph.hash, "num_concepts": graph.num_concepts,
                      "num_relations": graph.num_relations, "num_edges": graph.num_edges, "files": graph_files},
            "linker": linker.config,
            "retriever": retr_opts,
            "retriever_config": retriever.config,
            "store": args.store,
            "model": {"source": args.text_encoder, "files": model_files, "weights": WEIGHTS_FP16, "dtype": "float16",
                      **conv},
            "datasets": datasets,
            "pretrain": pretrain_entry,
            "definitions": definitions_entry,
            "files": manifest_files(tmp, files),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        (tmp / "README.txt").write_text(
            "kgfuse GPU carry bundle (benchmarks/gpu/make_bundle.py). Third-party data: never commit it.\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    repo = tracked_bytes(REPO_ROOT)
    print(f"bundle: {out} {size / 2**20:.1f} MiB ({describe(manifest)}); {time.time() - t0:.0f}s")
    if repo is not None:
        total = size + repo
        print(f"with the working tree that travels ({repo / 2**20:.1f} MiB): {total / 2**20:.1f} MiB of the "
              f"{CARRY_LIMIT / 2**20:.0f} MiB carry limit{' -- OVER THE LIMIT' if total > CARRY_LIMIT else ''}")
        if total > CARRY_LIMIT:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
