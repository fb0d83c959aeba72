"""Paired comparison of trained models on the same questions, from their prediction files.

Each side is a name and one or more prediction files (``predictions-dev.jsonl`` of ``kgfuse
train``, ``predictions.jsonl`` of ``kgfuse evaluate``), e.g. the seeds of one row; seeds are
averaged per question. Every side is compared with ``--reference``: accuracy difference with a
95% paired bootstrap interval over questions, and the exact McNemar test when both sides are
one run (``kgfuse.tasks.significance``). With ``--by FILE --field F`` (the per-question lines
of ``benchmarks/coverage.py --per-question``, or a graph model's own prediction file with
``--field edge_pattern``) the comparison is repeated per value of ``F``, e.g. whether the
retrieved subgraph joins a question concept to the correct answer.

    python benchmarks/compare_predictions.py --reference lm \\
        lm=runs/csqa-lm-5e-5-s0/predictions-dev.jsonl,runs/csqa-lm-5e-5-s1/predictions-dev.jsonl \\
        fused=runs/csqa-cn4-s0/predictions-dev.jsonl,runs/csqa-cn4-s1/predictions-dev.jsonl \\
        [--by coverage-questions.jsonl --field correct_edge --data dev_rand_split.jsonl]

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import sys

from kgfuse.tasks.significance import HEADER, compare_runs, read_groups


def _sides(specs: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, paths = spec.partition("=")
        if not sep or not name or not paths:
            raise SystemExit(f"compare_predictions: a side is NAME=FILE[,FILE...], not {spec!r}")
        if name in out:
            raise SystemExit(f"compare_predictions: side {name!r} given twice")
        out[name] = [p for p in paths.split(",") if p]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sides", nargs="+", help="NAME=PREDICTIONS.jsonl[,PREDICTIONS.jsonl...]")
    ap.add_argument("--reference", required=True, help="the side the others are compared with")
    ap.add_argument("--by", help="per-question JSON lines (benchmarks/coverage.py --per-question)")
    ap.add_argument("--field", help="the field of --by to group questions by")
    ap.add_argument("--data", help="with --by: only its lines whose 'data' is this file name (a path counts by its name)")
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sides = _sides(args.sides)
    rows = compare_runs(sides, args.reference, samples=args.samples, seed=args.seed)
    print(HEADER)
    for c in rows:
        print(c.row())
    if args.by:
        if not args.field:
            raise SystemExit("compare_predictions: --by needs --field")
        groups = read_groups(args.by, args.field, data=args.data)
        for value in groups:
            print(f"\n{args.field} = {value} ({len(groups[value])} questions)\n")
            print(HEADER)
            for c in compare_runs(sides, args.reference, samples=args.samples, seed=args.seed,
                                  questions=groups[value]):
                print(c.row())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as e:  # a missing or malformed file: its name, line and field, no traceback
        sys.exit(f"compare_predictions: {e}")
