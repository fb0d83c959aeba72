"""Benchmark: PathRetriever and SubgraphRetriever node-set search (``retrieve_nodes``) on the
ConceptNet-scale graph of ``bench_grounding.py --prepare``, over the statements of the real
CommonsenseQA dev set, one process, CPU time (``time.process_time``: the machine's cores are
shared, so wall time is noise). Linking (``EntityLinker.ground``) is timed too, so each
retriever's line also gives the end-to-end rate of grounding + retrieval (what a
preprocessing worker does per statement, before writing the cache).

With ``--save FILE`` the paths found (every array of every statement) are written to an
``.npz``; ``--compare FILE`` checks that this run finds exactly the same ones (an
optimisation must not change a single path).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_grounding.py --prepare   # once: the graph
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_paths.py [--limit N] [--save F | --compare F] \
        [--backend auto|compiled|numpy]

``--backend`` picks PathRetriever's search implementation (default ``auto``: the compiled
search when it was built); the result line records the one used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_grounding import CSQA, read_csqa  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work" / "grounding")
    ap.add_argument("--limit", type=int, default=300, help="dev questions (5 statements each)")
    ap.add_argument("--save", type=Path)
    ap.add_argument("--compare", type=Path)
    ap.add_argument("--skip-subgraph", action="store_true")
    ap.add_argument("--backend", default="auto", choices=("auto", "compiled", "numpy"),
                    help="PathRetriever search implementation")
    args = ap.parse_args(argv)

    from kgfuse.kg import KnowledgeGraph
    from kgfuse.kg.linking import EntityLinker
    from kgfuse.kg.retrieval import PathRetriever, SubgraphRetriever

    kg = KnowledgeGraph.load(args.work / "graph")
    linker = EntityLinker(kg, pattern_cache=False)
    dev = read_csqa(CSQA / "dev_rand_split.jsonl")[: args.limit]
    linker.ground(dev[0].question, dev[0].choices[0])  # the spaCy pipeline and patterns, built once
    c = time.process_time()
    groundings = [linker.ground(ex.question, ch) for ex in dev for ch in ex.choices]
    link_cpu = time.process_time() - c
    res = {"statements": len(groundings),
           "linking": {"cpu_s": round(link_cpu, 2), "stmt_per_cpu_s": round(len(groundings) / link_cpu, 1)}}
    print("linking", json.dumps(res["linking"]), flush=True)
    retrievers = {"paths": PathRetriever(kg, max_hops=3, max_paths=100, backend=args.backend).build()}
    if not args.skip_subgraph:
        retrievers["subgraph"] = SubgraphRetriever(kg, max_nodes=200).build()
    out = {}
    for name, r in retrievers.items():
        c = time.process_time()
        sets = [r.retrieve_nodes(g) for g in groundings]
        cpu = time.process_time() - c
        res[name] = {"cpu_s": round(cpu, 2), "stmt_per_cpu_s": round(len(groundings) / cpu, 1),
                     # grounding + retrieval of a statement, the node sets the cache stores
                     "end_to_end_stmt_per_cpu_s": round(len(groundings) / (cpu + link_cpu), 1),
                     "mean_nodes": round(float(np.mean([s["concept_ids"].size for s in sets])), 1)}
        if name == "paths":
            res[name]["backend"] = r.backend
            res[name]["mean_paths"] = round(float(np.mean([s["path_len"].size for s in sets])), 1)
            for i, s in enumerate(sets):
                for k, v in s.items():
                    out[f"{i}/{k}"] = v
        print(name, json.dumps(res[name]), flush=True)
    if args.save:
        np.savez_compressed(args.save, **out)
    if args.compare:
        with np.load(args.compare) as ref:
            same = set(ref.files) == set(out) and all(np.array_equal(ref[k], out[k]) for k in ref.files)
        res["same_paths_as"] = {str(args.compare): same}
        print("same paths as", args.compare, ":", same, flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
