"""Cost and effect of QA-GNN relevance ranking against the default connectivity ranking.

Grounds the first N questions of a multiple-choice file on a graph, retrieves the
``SubgraphRetriever(max_nodes=K)`` subgraph of every (question, choice) statement with both
rankings, and reports: CPU seconds per statement for each (relevance: the text encoder embeds
every statement and every candidate concept name it meets), how many statements had more
candidates than the budget (only those can differ), the mean overlap (Jaccard) of the kept
node sets, and the mean relevance score of kept against pruned candidates.

    KGFUSE_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/relevance_cost.py \\
        --graph ../shared/data/conceptnet4/conceptnet4_en.tsv.gz \\
        --data ../shared/data/csqa/dev_rand_split.jsonl --questions 200 --max-nodes 32
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graph", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--format", default="auto")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--max-nodes", type=int, default=32)
    ap.add_argument("--encoder", default=None, help="text encoder of the scorer (default: shipped MiniLM)")
    args = ap.parse_args(argv)

    from kgfuse.encoders.relevance import TextRelevanceScorer
    from kgfuse.kg.retrieval import SubgraphRetriever
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.kg.formats import open_graph
    from kgfuse.tasks.pipeline import build_linker

    t = time.time()
    graph = open_graph(args.graph)
    print(f"graph: {graph.num_concepts} concepts, {graph.num_edges} edges ({time.time() - t:.0f} s)")
    exs, _ = load_examples(args.data, args.format)
    exs = exs[: args.questions]
    linker = build_linker(graph, {"max_words": 4})
    statements = [(ex.question, c) for ex in exs for c in ex.choices]
    groundings = [linker.ground(q, c) for q, c in statements]
    conn = SubgraphRetriever(graph, max_nodes=args.max_nodes).build()
    scorer = TextRelevanceScorer(args.encoder)
    rel = SubgraphRetriever(graph, max_nodes=args.max_nodes, ranking="relevance", scorer=scorer).build()
    scorer.prepare([f"{q} {c}" for q, c in statements])  # load the encoder before timing

    t0 = time.process_time()
    a = [conn.retrieve_nodes(g) for g in groundings]
    t_conn = time.process_time() - t0
    t0 = time.process_time()
    b = [rel.retrieve_arrays(g, context=s) for g, s in zip(groundings, statements)]
    t_rel = time.process_time() - t0

    over, jac, kept_s, pruned_s = 0, [], [], []
    for g, x, y, s in zip(groundings, a, b, statements):
        q, ans = np.asarray(g.question_concepts), np.asarray(g.answer_concepts)
        if q.size == 0 or ans.size == 0:
            continue
        cand, _ = conn.bridging(q, ans)
        room = args.max_nodes - q.size - ans.size
        if cand.size <= room:
            continue
        over += 1
        sx, sy = set(x["concept_ids"].tolist()), set(y["concept_ids"].tolist())
        jac.append(len(sx & sy) / len(sx | sy))
        names = [graph.concepts[int(c)] for c in cand]
        sc = scorer.score(f"{s[0]} {s[1]}", names)
        kept = np.isin(cand, y["concept_ids"])
        kept_s.append(float(sc[kept].mean()))
        pruned_s.append(float(sc[~kept].mean()))
    n = len(statements)
    out = {
        "statements": n, "max_nodes": args.max_nodes,
        "cpu_ms_per_statement": {"connectivity": 1000 * t_conn / n, "relevance": 1000 * t_rel / n},
        "over_budget": over,
        "kept_node_jaccard_mean": statistics.fmean(jac) if jac else None,
        "relevance_kept_mean": statistics.fmean(kept_s) if kept_s else None,
        "relevance_pruned_mean": statistics.fmean(pruned_s) if pruned_s else None,
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
