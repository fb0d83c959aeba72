"""Benchmark: grounding and retrieval on a full-scale ConceptNet-format graph with the real
CommonsenseQA questions.

Steps (each timed, results printed as JSON and written to ``<work>/results.json``):

1. ``--prepare``: build the vocabulary of the real CSQA questions and choices in
   ``../shared/data/csqa`` (lower-cased words, their lookup lemmas, every choice as a
   phrase, and the word bigrams that occur at least twice), generate a full-scale synthetic
   ConceptNet assertions file with it (``benchmarks/gen_conceptnet.py --vocab-file``,
   800k concepts, 2.1M English rows; ``--non-english-fraction 0`` because the loader's
   speed on foreign rows is measured by ``bench_graph.py``), load it with
   ``KnowledgeGraph.from_conceptnet`` (17 merged relations + inverses) and save the
   compiled graph to ``<work>/graph``.
2. Load the compiled graph; build the :class:`EntityLinker` (time and memory).
3. One process: linking (``linker.ground``), PathRetriever (``max_hops=3, max_paths=100``,
   direction auto) and SubgraphRetriever (``max_nodes=200``) over the statements of the CSQA
   dev set; statements per second (wall clock and CPU time) of the node-set search
   (``retrieve_nodes``), of the edge rebuild (``add_edges``) and of both.
4. End to end: :func:`preprocess_dataset` with 2 worker processes, both retrievers, over all
   CSQA statements (train in-house + dev + test); statements per second, cache size on disk,
   cache-hit time, the rate of reading statements back with their rebuilt edges
   (``pre[i]``, one process), and peak memory (parent and largest worker). The load
   average before and after each phase is recorded: the 2 cores are shared.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_grounding.py --prepare
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_grounding.py [--workers 2] [--e2e-limit N]

``--work`` (default ``benchmarks/_work/grounding``, git-ignored) holds the generated files.
``--e2e-limit N`` restricts the end-to-end runs to the first N questions.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CSQA = REPO / ".." / "shared" / "data" / "csqa"
CSQA_FILES = ("train_ih.jsonl", "dev_rand_split.jsonl", "test_rand_split_no_answers.jsonl")


@dataclass
class Example:
    id: str
    question: str
    choices: list


def read_csqa(path: Path) -> list[Example]:
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                q = rec["question"]
                out.append(Example(rec["id"], q["stem"], [c["text"] for c in q["choices"]]))
            except (KeyError, ValueError) as e:
                raise ValueError(f"{path}:{lineno}: bad CommonsenseQA record ({e})") from None
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


# --------------------------------------------------------------------------- preparation
def build_vocab(out: Path) -> int:
    from kgfuse.kg.linking import NLTK_STOPWORDS, default_nlp, _lookup_table

    nlp = default_nlp()
    table = _lookup_table(nlp)
    words: collections.Counter = collections.Counter()
    bigrams: collections.Counter = collections.Counter()
    phrases: set[str] = set()
    for name in CSQA_FILES:
        for ex in read_csqa(CSQA / name):
            for text in [ex.question] + ex.choices:
                toks = [t.lower_ for t in nlp.make_doc(text) if t.is_alpha]
                words.update(toks)
                words.update(table.get(t, t) for t in toks)
                bigrams.update(
                    f"{a}_{b}" for a, b in zip(toks, toks[1:]) if a not in NLTK_STOPWORDS and b not in NLTK_STOPWORDS
                )
            for c in ex.choices:
                p = "_".join(c.lower().split())
                if p and len(p.split("_")) <= 4:
                    phrases.add(p)
    vocab = sorted(words, key=lambda w: (-words[w], w))
    vocab += sorted(phrases - set(vocab))
    vocab += [b for b, n in bigrams.most_common() if n >= 2 and b not in phrases]
    out.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return len(vocab)


def prepare(work: Path) -> dict:
    from kgfuse.kg import KnowledgeGraph

    work.mkdir(parents=True, exist_ok=True)
    vocab_file = work / "csqa_vocab.txt"
    n_vocab = build_vocab(vocab_file)
    csv = work / "assertions.csv"
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gen_conceptnet.py"), str(csv), "--vocab-file", str(vocab_file),
         "--non-english-fraction", "0", "--seed", "0"],
        check=True,
    )
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    kg = KnowledgeGraph.from_conceptnet(csv)
    t_load = time.perf_counter() - t
    kg.save(work / "graph")
    csv.unlink()
    return {"vocab": n_vocab, "generate_s": round(t_gen, 1), "from_conceptnet_s": round(t_load, 1),
            "num_concepts": kg.num_concepts, "num_edges": kg.num_edges, "num_relations": kg.num_relations}


# --------------------------------------------------------------------------- measurements
def throughput(fn, items) -> tuple[float, float]:
    t = time.perf_counter()
    for x in items:
        fn(x)
    s = time.perf_counter() - t
    return len(items) / s, s


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work" / "grounding")
    ap.add_argument("--prepare", action="store_true", help="generate and compile the graph first")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--e2e-limit", type=int, default=None, help="questions for the end-to-end runs (default all)")
    ap.add_argument("--skip-paths-e2e", action="store_true")
    args = ap.parse_args(argv)
    if not CSQA.is_dir():
        sys.exit(f"{CSQA} not found: this benchmark needs the real CommonsenseQA files")
    res: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "processor": platform.processor() or platform.machine()}}
    if args.prepare or not (args.work / "graph").exists():
        res["prepare"] = prepare(args.work)
        print(json.dumps(res["prepare"]), flush=True)

    import numpy as np

    from kgfuse.kg import KnowledgeGraph
    from kgfuse.kg.linking import EntityLinker
    from kgfuse.kg.preprocess import preprocess_dataset
    from kgfuse.kg.retrieval import PathRetriever, SubgraphRetriever

    rss0 = rss_mb()
    t = time.perf_counter()
    kg = KnowledgeGraph.load(args.work / "graph")
    res["graph"] = {"load_s": round(time.perf_counter() - t, 2), "num_concepts": kg.num_concepts,
                    "num_edges": kg.num_edges, "rss_mb": round(rss_mb() - rss0, 1)}
    kg.concept_id(kg.concept_name(0))  # build the graph's name index (counted with the graph)
    rss1 = rss_mb()
    EntityLinker(kg, pattern_cache=False).nlp  # spaCy's import and pipeline: not the linker's build
    t, c = time.perf_counter(), time.process_time()
    linker = EntityLinker(kg, pattern_cache=False).build()  # built on first use: force it here
    res["linker_build"] = {"seconds": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2),
                           "patterns": linker.num_patterns,
                           "lemma_keys": len(linker._lemma_index), "rss_mb": round(rss_mb() - rss1, 1),
                           "name_index_and_graph_rss_mb": round(rss1 - rss0, 1)}
    cache_dir = args.work / "linker_cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    c = time.process_time()
    EntityLinker(kg, pattern_cache=cache_dir).build()  # builds and writes <key>.npz
    res["linker_build"]["build_and_write_cache_cpu_s"] = round(time.process_time() - c, 2)
    c = time.process_time()
    cached = EntityLinker(kg, pattern_cache=cache_dir).build()
    assert cached.patterns_source == "cache"
    res["linker_build"]["read_cache_cpu_s"] = round(time.process_time() - c, 2)
    res["linker_build"]["cache_file_mb"] = round(cached.pattern_cache_path.stat().st_size / 2**20, 1)
    print(json.dumps(res["linker_build"]), flush=True)

    dev = read_csqa(CSQA / "dev_rand_split.jsonl")
    stmts = [(ex.question, c) for ex in dev for c in ex.choices]
    linker._cache.clear()
    rate, secs = throughput(lambda qc: linker.ground(*qc), stmts)
    groundings = [linker.ground(q, c) for q, c in stmts]
    qn = np.array([len(g.question_concepts) for g in groundings])
    an = np.array([len(g.answer_concepts) for g in groundings])
    res["linking"] = {"statements": len(stmts), "stmt_per_s": round(rate, 1), "seconds": round(secs, 2),
                      "mean_question_concepts": round(float(qn.mean()), 2), "mean_answer_concepts": round(float(an.mean()), 2),
                      "no_question_concept": int((qn == 0).sum()), "no_answer_concept": int((an == 0).sum())}
    print(json.dumps(res["linking"]), flush=True)
    res["example_grounding"] = {
        "question": dev[0].question, "choice": dev[0].choices[0],
        "mentions": [(m.source, m.text, kg.concept_name(m.concept)) for m in groundings[0].mentions],
    }

    retrievers = {
        "subgraph": SubgraphRetriever(kg, max_nodes=200),
        "paths": PathRetriever(kg, max_hops=3, max_paths=100),
    }
    res["retrievers"] = {k: r.config for k, r in retrievers.items()}
    for name, r in retrievers.items():
        load0 = os.getloadavg()[0]
        t, c = time.perf_counter(), time.process_time()
        trunc = 0
        node_sets = []
        for g in groundings:
            node_sets.append(r.retrieve_nodes(g))
            trunc += bool(getattr(r, "truncated", False))
        s_nodes, c_nodes = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        edges = []
        for a in node_sets:  # keep only sizes: 6k dense subgraphs would inflate the forked workers' RSS
            edges.append(r.add_edges(a)["edge_type"].shape[0])
        s_edges, c_edges = time.perf_counter() - t, time.process_time() - c
        n = len(groundings)
        nodes = np.array([a["concept_ids"].shape[0] for a in node_sets])
        entry = {"statements": n,
                 "retrieve_nodes_stmt_per_s": round(n / s_nodes, 1), "retrieve_nodes_cpu_stmt_per_s": round(n / c_nodes, 1),
                 "add_edges_stmt_per_s": round(n / s_edges, 1), "add_edges_cpu_stmt_per_s": round(n / c_edges, 1),
                 "both_stmt_per_s": round(n / (s_nodes + s_edges), 1),
                 "both_cpu_stmt_per_s": round(n / (c_nodes + c_edges), 1),
                 "mean_nodes": round(float(nodes.mean()), 1), "mean_edges": round(float(np.mean(edges)), 1),
                 "max_nodes": int(nodes.max()), "load_avg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)]}
        if "paths" in node_sets[0]:
            p = np.array([a["path_len"].shape[0] for a in node_sets])
            entry.update(mean_paths=round(float(p.mean()), 1), max_paths=int(p.max()), truncated_statements=trunc,
                         directed=r.directed)
        del node_sets, edges
        res[f"retrieval_{name}"] = entry
        print(name, json.dumps(entry), flush=True)
        if name == "subgraph":
            res["example_subgraph"] = r.explain(r(groundings[0]), limit=5)
        else:
            res["example_paths"] = r.explain(r(groundings[0]), limit=5)

    # end to end: 2 workers over all of CSQA
    examples = [ex for name in CSQA_FILES for ex in read_csqa(CSQA / name)]
    if args.e2e_limit:
        examples = examples[: args.e2e_limit]
    n_st = sum(len(ex.choices) for ex in examples)
    cache = args.work / "cache"

    for name, r in retrievers.items():
        if name == "paths" and args.skip_paths_e2e:
            continue
        shutil.rmtree(cache, ignore_errors=True)
        linker._cache.clear()
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        pre = preprocess_dataset(examples, kg, linker, r, cache, num_workers=args.workers, progress=False)
        secs = time.perf_counter() - t
        load1 = os.getloadavg()[0]
        t = time.perf_counter()
        pre2 = preprocess_dataset(examples, kg, linker, r, cache, num_workers=args.workers, progress=False)
        hit_s = time.perf_counter() - t
        assert pre2.cache_hit
        size = sum(p.stat().st_size for p in pre.path.rglob("*") if p.is_file())
        arrays_size = sum(p.stat().st_size for p in (pre.path / "arrays").glob("*.npy"))
        # read statements back (tensors with rebuilt edges), one process, first 6,000 statements
        k = 0
        n_read = 0
        t, c = time.perf_counter(), time.process_time()
        while n_read < 6000 and k < len(pre2):
            n_read += len(pre2[k])
            k += 1
        read_s, read_c = time.perf_counter() - t, time.process_time() - c
        res[f"end_to_end_{name}"] = {
            "statements": n_st, "workers": args.workers, "data": "csqa train_ih+dev+test", "seconds": round(secs, 1),
            "stmt_per_s": round(n_st / secs, 1), "cache_hit_s": round(hit_s, 2), "cache_mb": round(size / 2**20, 1),
            "arrays_mb": round(arrays_size / 2**20, 1), "edge_mode": pre.meta["edges"],
            "read_back_stmt_per_s": round(n_read / read_s, 1), "read_back_cpu_stmt_per_s": round(n_read / read_c, 1),
            "load_avg_1min": [round(load0, 2), round(load1, 2)], "stats": pre.meta["stats"],
        }
        print(name, json.dumps(res[f"end_to_end_{name}"]), flush=True)
        del pre, pre2
    res["peak_rss_mb"] = {"parent": round(peak_mb(), 1), "largest_worker": round(peak_mb(resource.RUSAGE_CHILDREN), 1)}
    res["load_avg"] = os.getloadavg()
    (args.work / "results.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
