"""Grounding and retrieval coverage of a graph on multiple-choice datasets.

For every (question, choice) statement: does it have at least one question concept and one
answer concept; how many nodes and edges has its retrieved subgraph; has it no edge at all.
Per question: does a retrieved edge (direct) or a path through one bridge node (2 hops)
join a question concept to the correct answer, and to each wrong answer.

Usage (the data of ../shared/data; any graph and linker/retriever settings)::

    python benchmarks/coverage.py --graph ../shared/data/conceptnet4/conceptnet4_en.tsv.gz \\
        --linker normalize=conceptnet4 --retriever type=subgraph,max_nodes=32 \\
        --data csqa:../shared/data/csqa/train_ih.jsonl csqa:../shared/data/csqa/dev_rand_split.jsonl \\
               obqa:../shared/data/obqa/train.jsonl ... --out coverage.json \
        [--per-question coverage-questions.jsonl]

Prints one markdown row per dataset file and writes the full numbers as JSON; with
``--per-question``, one line per labelled question (``data``, ``id``, ``correct_edge``,
``correct_path``, ``wrong_edges``, ``wrong_paths``, ``choices``, ``linked``: question and
correct answer both linked; ``edge_pattern``: which choices a direct question-answer edge
reaches: ``correct only``, ``correct and wrong``, ``wrong only`` or ``none``), which ``benchmarks/compare_predictions.py --by`` reads to break
a model comparison down by what the graph offers each question.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def _kv(s: str | None) -> dict:
    out: dict = {}
    for part in (s or "").split(","):
        if not part:
            continue
        k, v = part.split("=", 1)
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                pass
        if v in ("true", "false"):
            v = v == "true"
        out[k] = v
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graph", required=True)
    ap.add_argument("--graph-format", default="auto")
    ap.add_argument("--linker", default="", help="linker options k=v,k=v")
    ap.add_argument("--retriever", default="type=subgraph,max_nodes=32", help="retriever options k=v,k=v")
    ap.add_argument("--data", nargs="+", required=True, help="FORMAT:PATH, e.g. csqa:dev_rand_split.jsonl")
    ap.add_argument("--cache", default=None, help="preprocessing cache folder (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--per-question", default=None, help="write one JSON line per labelled question here")
    args = ap.parse_args(argv)
    per_q = open(args.per_question, "w", encoding="utf-8") if args.per_question else None

    import tempfile

    from kgfuse.kg.retrieval import question_answer_joins
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.pipeline import build_linker, build_retriever, load_graph, preprocess
    from kgfuse.tasks.report import edge_pattern

    t0 = time.time()
    graph = load_graph({"path": str(Path(args.graph).resolve()), "format": args.graph_format})
    linker = build_linker(graph, _kv(args.linker))
    retriever = build_retriever(graph, _kv(args.retriever))
    print(f"graph {graph!r} loaded and linker built in {time.time() - t0:.1f}s", file=sys.stderr)
    cache = args.cache or tempfile.mkdtemp(prefix="kgfuse-coverage-")
    results = {"graph": args.graph, "graph_hash": graph.hash, "linker": _kv(args.linker), "retriever": _kv(args.retriever),
               "datasets": {}}
    print("| data | questions | statements with q and a concept | questions with q and a in every choice | "
          "nodes mean / median | edges mean / median | statements with no edge | "
          "q-correct edge | q-correct edge or 2-hop path | q-wrong edge (per wrong choice) | "
          "q-wrong edge or path (per wrong choice) |")
    print("| --- | " + " | ".join(["---"] * 10) + " |")
    for spec in args.data:
        fmt, path = spec.split(":", 1)
        exs, _ = load_examples(path, fmt)
        t = time.time()
        pre = preprocess(exs, graph, linker, retriever, cache, num_workers=args.workers)
        secs = time.time() - t
        both = 0
        n_nodes: list[int] = []
        n_edges: list[int] = []
        no_edge = 0
        q_both_all = 0
        corr_edge = corr_path = 0
        wrong_edge = wrong_path = n_wrong = 0
        labelled = 0
        for i, ex in enumerate(exs):
            rec = pre[i]
            every = True
            w_e = w_p = 0
            joined: list[bool] = []  # a question-answer edge, per choice
            for j in range(len(ex.choices)):
                g, d = rec[j]
                ok = bool(len(g.question_concepts)) and bool(len(g.answer_concepts))
                both += ok
                every &= ok
                n_nodes.append(int(d.num_nodes or 0))
                ne = int(d.edge_index.shape[1])
                n_edges.append(ne)
                no_edge += ne == 0
                if ex.label is not None:
                    e, p = question_answer_joins(d)
                    joined.append(e)
                    if j == ex.label:
                        corr_edge += e
                        corr_path += p
                        q_rec = {"data": Path(path).name, "id": ex.id, "correct_edge": e, "correct_path": p,
                                 "wrong_edges": 0, "wrong_paths": 0, "choices": len(ex.choices), "linked": ok}
                    else:
                        wrong_edge += e
                        wrong_path += p
                        n_wrong += 1
                        w_e, w_p = w_e + e, w_p + p
            if ex.label is not None and per_q is not None:
                q_rec.update(wrong_edges=w_e, wrong_paths=w_p, edge_pattern=edge_pattern(joined, ex.label))
                per_q.write(json.dumps(q_rec) + "\n")
            labelled += ex.label is not None
            q_both_all += every
        S = len(n_nodes)
        row = {
            "questions": len(exs), "statements": S, "seconds": round(secs, 1),
            "statements_with_q_and_a": both / S, "questions_with_q_and_a_every_choice": q_both_all / len(exs),
            "nodes_mean": statistics.fmean(n_nodes), "nodes_median": statistics.median(n_nodes),
            "edges_mean": statistics.fmean(n_edges), "edges_median": statistics.median(n_edges),
            "statements_no_edge": no_edge / S,
            "labelled_questions": labelled,
            "q_correct_edge": corr_edge / max(1, labelled), "q_correct_edge_or_path": corr_path / max(1, labelled),
            "q_wrong_edge": wrong_edge / max(1, n_wrong), "q_wrong_edge_or_path": wrong_path / max(1, n_wrong),
        }
        results["datasets"][spec] = row
        pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
        print(f"| {Path(path).name} ({fmt}) | {len(exs)} | {pct(row['statements_with_q_and_a'])} | "
              f"{pct(row['questions_with_q_and_a_every_choice'])} | {row['nodes_mean']:.1f} / {row['nodes_median']:g} | "
              f"{row['edges_mean']:.1f} / {row['edges_median']:g} | {pct(row['statements_no_edge'])} | "
              f"{pct(row['q_correct_edge'])} | {pct(row['q_correct_edge_or_path'])} | {pct(row['q_wrong_edge'])} | "
              f"{pct(row['q_wrong_edge_or_path'])} |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    if per_q is not None:
        per_q.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
