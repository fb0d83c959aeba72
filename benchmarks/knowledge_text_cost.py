"""How many input tokens knowledge as text adds per (question, choice) statement.

For every statement of a dataset file: ground it, retrieve its subgraph, verbalise it with
:class:`kgfuse.kg.verbalize.Verbalizer` (no token budget) in three settings, and count the
tokens it would add after the pair with the MiniLM tokenizer (the knowledge tokens plus the
one separator; nothing when the statement has no knowledge):

- ``triples``: the ``--triples`` best facts, no definitions;
- ``definitions``: the WordNet definitions of the answer concepts, no facts;
- ``both``: definitions of the answer concepts, then the facts.

Prints one markdown row per setting (mean, median, 90th percentile, share of statements with
any knowledge) and, with ``--out``, writes the numbers as JSON. Defaults: CommonsenseQA dev
(1,221 questions) on ConceptNet 4, with the linker and retriever of
``configs/csqa_conceptnet4.yaml``; exits cleanly when a file is absent::

    python benchmarks/knowledge_text_cost.py
    python benchmarks/knowledge_text_cost.py --data other.jsonl --graph my_graph.tsv --max-examples 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "csqa" / "dev_rand_split.jsonl"
DEFAULT_GRAPH = ROOT.parent / "shared" / "data" / "conceptnet4" / "conceptnet4_en.tsv.gz"


def _summary(added: list[int]) -> dict:
    s = sorted(added)
    return {
        "statements": len(s),
        "mean": round(statistics.fmean(s), 2) if s else 0.0,
        "median": statistics.median(s) if s else 0,
        "p90": s[int(0.9 * (len(s) - 1))] if s else 0,
        "with_knowledge": round(sum(1 for x in s if x) / max(1, len(s)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="multiple-choice file (csqa, obqa, swag, mc)")
    ap.add_argument("--graph", default=str(DEFAULT_GRAPH), help="graph file or folder (kgfuse.kg.formats.open_graph)")
    ap.add_argument("--max-examples", type=int, default=None)
    ap.add_argument("--triples", type=int, default=5, help="facts per statement")
    ap.add_argument("--max-hops", type=int, default=None,
                    help="use a PathRetriever with this many hops instead of the config's subgraph retriever")
    ap.add_argument("--tokenizer", default="all-MiniLM-L6-v2")
    ap.add_argument("--out", help="write the numbers as JSON")
    args = ap.parse_args(argv)

    for p in (args.data, args.graph):
        if not Path(p).exists():
            print(f"skipped: {p} is absent")
            return 0

    from kgfuse.encoders.text import load_tokenizer
    from kgfuse.kg.formats import open_graph
    from kgfuse.kg.verbalize import Verbalizer
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.pipeline import build_linker, build_retriever

    t0 = time.time()
    tok = load_tokenizer(args.tokenizer)
    graph = open_graph(args.graph)
    exs, _ = load_examples(args.data)
    if args.max_examples:
        exs = exs[: args.max_examples]
    linker = build_linker(graph, {"max_words": 4, "normalize": "lemma"})
    if args.max_hops:
        retriever = build_retriever(graph, {"type": "path", "max_hops": args.max_hops, "max_paths": 20})
    else:
        retriever = build_retriever(graph, {"type": "subgraph", "max_nodes": 32})
    t_load = time.time() - t0
    settings = {
        "triples": Verbalizer(graph, triples=args.triples, definitions="none", max_tokens=None),
        "definitions": Verbalizer(graph, triples=0, definitions="answer", max_tokens=None),
        "both": Verbalizer(graph, triples=args.triples, definitions="answer", max_tokens=None),
    }
    texts: dict[str, list[str]] = {k: [] for k in settings}
    t1 = time.time()
    for ex in exs:
        for c in ex.choices:
            g = linker.ground(ex.question, c)
            data = retriever(g)
            for k, v in settings.items():
                texts[k].append(v.text(g, data))
    t_verb = time.time() - t1
    result = {"data": str(args.data), "graph": str(args.graph), "questions": len(exs), "triples": args.triples,
              "retriever": retriever.config, "tokenizer": args.tokenizer, "settings": {}}
    print(f"{len(exs)} questions, {len(texts['both'])} statements; load {t_load:.0f}s, "
          f"ground + retrieve + verbalise {t_verb:.0f}s")
    print("| knowledge | mean tokens added | median | p90 | statements with knowledge |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for k, ts in texts.items():
        ids = tok(ts, add_special_tokens=False)["input_ids"] if ts else []
        added = [len(x) + 1 if t else 0 for x, t in zip(ids, ts)]  # + the separator before the knowledge
        s = _summary(added)
        result["settings"][k] = s
        print(f"| {k} | {s['mean']:.1f} | {s['median']} | {s['p90']} | {s['with_knowledge']:.1%} |")
    example = next((t for t in texts["both"] if t), "")
    print(f"example: {example[:300]}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
