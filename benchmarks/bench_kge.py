"""Benchmark KG embeddings (TransE / DistMult / RotatE) on WordNet 3.0: link-prediction
MRR and Hits@10 on held-out edges, and training speed.

Two graphs are built from the WordNet database files with
:meth:`kgfuse.kg.KnowledgeGraph.from_wordnet` (``concepts="synsets"``):

- ``wordnet-all``: every pointer type (26 relations). WordNet stores most pointers in both
  directions (hypernym / hyponym ...), so the inverse of a held-out edge is often a
  training edge (the WN18 "test leakage"); the task is easy.
- ``wordnet-rr``: one direction of each inverse pair is kept (WN18RR-style relation set:
  hypernym, instance_hypernym, member_meronym, part_meronym, substance_meronym,
  derivation, also_see, verb_group, similar_to, domain_topic, domain_region,
  domain_usage, attribute, cause, entailment, antonym, pertainym, participle).
  Symmetric relations (derivation, similar_to, antonym, ...) still leak.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_kge.py [--wordnet DIR] [--models transe,rotate]
        [--graphs wordnet-rr,wordnet-all] [--dim 100] [--epochs 20] [--eval-edges 1000]
        [--lr LR] [--p-norm P] [--device cpu] [--json OUT]

``--lr`` and ``--p-norm`` default to the library's defaults (``KGEConfig``: per-model learning
rate; TransE ``0.1 * dim ** (-1 / p_norm)`` and ``p_norm = 1``).

Prints one JSON object per (graph, model) run, and the list at the end (also to ``--json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

RR_RELATIONS = (
    "hypernym", "instance_hypernym", "member_meronym", "part_meronym", "substance_meronym", "derivation",
    "also_see", "verb_group", "similar_to", "domain_topic", "domain_region", "domain_usage", "attribute",
    "cause", "entailment", "antonym", "pertainym", "participle",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wordnet", default=None, help="folder of the WordNet data.* files (default /usr/share/wordnet)")
    ap.add_argument("--graphs", default="wordnet-rr,wordnet-all")
    ap.add_argument("--models", default="transe,distmult,rotate")
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--val-fraction", type=float, default=0.02)
    ap.add_argument("--eval-edges", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the library's, per model)")
    ap.add_argument("--p-norm", type=float, default=None, help="TransE norm (default: the library's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from kgfuse.kg import KnowledgeGraph
    from kgfuse.kg.embeddings import train_kg_embeddings

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for gname in args.graphs.split(","):
        t0 = time.perf_counter()
        rel = RR_RELATIONS if gname == "wordnet-rr" else None
        graph = KnowledgeGraph.from_wordnet(args.wordnet, concepts="synsets", relations=rel)
        load_s = time.perf_counter() - t0
        for model in args.models.split(","):
            extra = {k: v for k, v in (("lr", args.lr), ("p_norm", args.p_norm)) if v is not None}
            res = train_kg_embeddings(
                graph, model=model, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size,
                val_fraction=args.val_fraction, max_eval_edges=args.eval_edges, seed=args.seed, device=args.device,
                **extra,
            )
            t_eval = res.metrics
            row = {
                "graph": gname,
                "num_concepts": graph.num_concepts,
                "num_relations": graph.num_relations,
                "num_edges": graph.num_edges,
                "graph_hash": graph.hash[:12],
                "load_s": round(load_s, 2),
                "model": model,
                "dim": args.dim,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": res.config.resolved_lr,
                **({"p_norm": res.config.p_norm} if model == "transe" else {}),
                "train_s": round(res.train_seconds, 1),
                "edges_per_s": round(res.metrics["num_train_edges"] * args.epochs / max(res.train_seconds, 1e-9)),
                "final_loss": round(res.history[-1], 4) if res.history else None,
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in t_eval.items()},
                "device": args.device,
                "torch_threads": torch.get_num_threads(),
                "machine": platform.machine(),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
