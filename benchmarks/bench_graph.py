"""Benchmark the graph store at full ConceptNet scale.

Measures, on a ConceptNet-format assertions file (by default the synthetic full-scale file
written by ``benchmarks/gen_conceptnet.py``):

1. raw -> graph: :func:`kgfuse.kg.loaders.from_conceptnet` (17 merged relations +
   inverses), raw lines per second, and the time of :meth:`KnowledgeGraph.save`;
2. compiled load time (``KnowledgeGraph.load``, memory-mapped, with and without hash
   verification), each in a fresh subprocess, the first after the save (page cache warm);
3. peak RSS of a fresh process that only imports kgfuse and loads the compiled graph
   (``VmHWM`` of ``/proc/self/status``), and after building the name -> id map
   (first ``concept_id`` call, as entity linking does);
4. neighbour-query throughput (``neighbors(i)`` out / both on random concepts) and
   ``induced_edges`` on random 200-node sets.

Usage::

    python benchmarks/gen_conceptnet.py            # writes benchmarks/_work/assertions.csv
    python benchmarks/bench_graph.py [--assertions PATH] [--work DIR] [--json OUT]

Results are printed as JSON (and written to ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import json, sys, time

def peak_rss_mb():
    # VmHWM: peak RSS of this process image. (ru_maxrss would include the parent's RSS at
    # fork time: Linux carries it over exec.)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

t0 = time.perf_counter()
from kgfuse.kg import KnowledgeGraph
t_import = time.perf_counter() - t0
verify = sys.argv[2] == "1"
t = time.perf_counter()
kg = KnowledgeGraph.load(sys.argv[1], verify=verify)
t_load = time.perf_counter() - t
rss_load = peak_rss_mb()
out = {"verify": verify, "import_s": round(t_import, 3), "load_s": round(t_load, 3),
       "peak_rss_mb_after_load": rss_load, "num_concepts": kg.num_concepts, "num_edges": kg.num_edges}
if sys.argv[3] == "1":
    import numpy as np
    rng = np.random.default_rng(0)
    t = time.perf_counter(); kg.concept_id(kg.concept_name(0)); out["name_map_s"] = round(time.perf_counter() - t, 3)
    out["peak_rss_mb_after_name_map"] = peak_rss_mb()
    ids = rng.integers(0, kg.num_concepts, 200_000).tolist()
    for direction in ("out", "both"):
        n_nb = 0
        t = time.perf_counter()
        for i in ids:
            n_nb += len(kg.neighbors(i, direction))
        dt = time.perf_counter() - t
        out[f"neighbors_{direction}_per_s"] = round(len(ids) / dt)
        out[f"neighbors_{direction}_mean_degree"] = round(n_nb / len(ids), 2)
    sets = [rng.integers(0, kg.num_concepts, 200) for _ in range(2000)]
    t = time.perf_counter()
    n_e = sum(kg.induced_edges(s).size for s in sets)
    out["induced_edges_200_per_s"] = round(len(sets) / (time.perf_counter() - t))
    # hub-heavy sets (top-degree concepts), as retrieval around frequent words sees
    deg = kg.degree("out")
    hubs = np.argsort(-deg)[:20000]
    hsets = [rng.choice(hubs, 200, replace=False) for _ in range(500)]
    t = time.perf_counter()
    n_h = sum(kg.induced_edges(s).size for s in hsets)
    out["induced_edges_200_hubs_per_s"] = round(len(hsets) / (time.perf_counter() - t))
    out["induced_edges_200_hubs_mean_edges"] = round(n_h / len(hsets), 1)
    out["peak_rss_mb_end"] = peak_rss_mb()
print(json.dumps(out))
"""


def _child(compiled: Path, verify: bool, queries: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _CHILD, str(compiled), "1" if verify else "0", "1" if queries else "0"],
                         capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"child failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="graph store benchmark")
    ap.add_argument("--assertions", type=Path, default=HERE / "_work" / "assertions.csv")
    ap.add_argument("--work", type=Path, default=HERE / "_work")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-raw", action="store_true", help="reuse the compiled graph in --work")
    args = ap.parse_args(argv)
    compiled = args.work / "conceptnet_compiled"
    result: dict = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
                               f"python {platform.python_version()}", "assertions": str(args.assertions)}
    if not args.skip_raw:
        if not args.assertions.is_file():
            sys.exit(f"{args.assertions} missing: run python benchmarks/gen_conceptnet.py first")
        from kgfuse.kg import KnowledgeGraph

        result["file_bytes"] = args.assertions.stat().st_size
        t = time.perf_counter()
        kg = KnowledgeGraph.from_conceptnet(args.assertions)
        dt = time.perf_counter() - t
        rep = kg.meta["report"]
        result["raw"] = {
            "seconds": round(dt, 2), "lines": rep["lines"], "lines_per_s": round(rep["lines"] / dt),
            "mb_per_s": round(result["file_bytes"] / dt / 1e6, 1), "kept_records": rep["kept"],
            "skipped": rep["skipped"], "malformed": sum(rep["malformed"].values()),
            "num_concepts": kg.num_concepts, "num_edges": kg.num_edges, "num_relations": kg.num_relations,
            "peak_rss_mb_of_loader": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        t = time.perf_counter()
        kg.save(compiled)
        result["save_s"] = round(time.perf_counter() - t, 2)
        result["compiled_bytes"] = sum(p.stat().st_size for p in compiled.iterdir())
        result["hash"] = kg.hash
        del kg
    result["load_verify"] = _child(compiled, True, False)
    result["load_no_verify"] = _child(compiled, False, False)
    result["queries"] = _child(compiled, True, True)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
