"""Keep what paired comparisons need of finished runs, small enough to commit.

A run folder (model, checkpoints, full prediction files with scores and explanations) is
hundreds of MB; a comparison (``benchmarks/compare_predictions.py``) reads only each
question's ``id`` and whether the run answered it correctly. This writes, for each run folder
and each ``predictions-<split>.jsonl`` in it, ``<to>/<run>/<split>.jsonl`` with one line per
question: ``id``, ``predicted`` (choice index) and ``correct``, in the file's order. The
compact files are valid inputs of ``compare_predictions.py``, so rows trained in different
sittings or on different machines can still be compared question by question.

    python benchmarks/keep_predictions.py $KGFUSE_HOME/results/full-scale/obqa-cn4-text-both-s0 \\
        --to benchmarks/results/predictions
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def keep(run_dir: Path, to: Path) -> list[Path]:
    """Write the compact files of one run folder; the paths written."""
    files = sorted(run_dir.glob("predictions-*.jsonl"))
    if not files:
        raise SystemExit(f"keep_predictions: {run_dir}: no predictions-<split>.jsonl (is the run finished?)")
    written = []
    for f in files:
        split = f.stem.removeprefix("predictions-")
        target = to / run_dir.name / f"{split}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        with f.open(encoding="utf-8") as src:
            for n, line in enumerate(src, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    lines.append(json.dumps({"id": rec["id"], "predicted": rec["predicted"], "correct": rec["correct"]}))
                except (ValueError, KeyError) as e:
                    raise SystemExit(f"keep_predictions: {f}:{n}: not a prediction record ({e})") from None
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    ap.add_argument("--to", type=Path, required=True, help="folder for <run>/<split>.jsonl")
    args = ap.parse_args(argv)
    for run in args.runs:
        for p in keep(run, args.to):
            print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
