"""Per-question files of the GPU runs, for ``benchmarks/compare_predictions.py``.

``run_gpu.py`` keeps, for every run, each evaluation split's predicted choice per question at
the best dev epoch (``predictions_at_best_dev`` in ``results.json``) and, once per data set,
the questions' ids and labels (``questions``). This writes them in the compact format of
``benchmarks/keep_predictions.py``: ``<to>/<prefix><dataset>-<model>-s<seed>/<split>.jsonl``,
one line per question with ``id``, ``predicted`` and ``correct``::

    python benchmarks/gpu/export_predictions.py benchmarks/results/gpu_h200_conceptnet4/full_protocol/csqa/results.json \\
        --to benchmarks/results/predictions --prefix gpu-h200-cn4-
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def export(results_file: Path, to: Path, prefix: str = "") -> list[Path]:
    """Write the files of every run that kept predictions; the paths written."""
    try:
        r = json.loads(results_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SystemExit(f"export_predictions: {results_file}: {e}") from None
    questions = r.get("questions") or {}
    written: list[Path] = []
    for n, run in enumerate(r.get("runs", [])):
        preds = run.get("predictions_at_best_dev")
        if not preds:
            continue
        d = run["dataset"]
        for split, p in preds.items():
            if split == "epoch":
                continue
            q = questions.get(d, {}).get(split)
            if q is None:
                raise SystemExit(f"export_predictions: {results_file}: field 'questions.{d}.{split}' missing "
                                 f"(needed by runs[{n}])")
            if len(q["ids"]) != len(p["predicted"]):
                raise SystemExit(f"export_predictions: {results_file}: runs[{n}].predictions_at_best_dev.{split} has "
                                 f"{len(p['predicted'])} predictions for {len(q['ids'])} questions")
            target = to / f"{prefix}{d}-{run['model']}-s{run['seed']}" / f"{split}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            lines = [json.dumps({"id": i, "predicted": int(k), "correct": (lab is not None and int(k) == int(lab))})
                     for i, k, lab in zip(q["ids"], p["predicted"], q["labels"])]
            target.write_text("\n".join(lines) + "\n", encoding="utf-8")
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="results.json files of run_gpu.py")
    ap.add_argument("--to", required=True, help="folder of the per-run folders")
    ap.add_argument("--prefix", default="", help="put before each run folder's name (e.g. gpu-h200-cn4-)")
    args = ap.parse_args(argv)
    n = 0
    for f in args.results:
        for p in export(Path(f), Path(args.to), args.prefix):
            print(p)
            n += 1
    if n == 0:
        print("export_predictions: no run kept predictions (made before run_gpu.py kept them)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
