"""How much each part of a trained model's scorer input moves its choice.

A kgfuse multiple-choice model scores each choice with one linear layer over the summary vector
``[text vector ; graph vector ; mean fused entity state]`` (LM-only: the text vector alone). For
part ``p`` the contribution to a choice's logit is ``w_p . x_p``; its spread over the choices of
one question (standard deviation) says how much that part moves the answer, and the mean of
that spread over questions is reported per part, with the whole logit's spread and each part's
mean norm. The models answer the questions as ``kgfuse predict`` does (raw text in, the run's
saved pipeline: linker, graph, retriever).

    KGFUSE_DATA=../shared/data python benchmarks/scorer_parts.py \\
        --data ../shared/data/csqa/dev_rand_split.jsonl -n 300 RUN_DIR [RUN_DIR ...]

One JSON line per run folder (``<run>/model`` is loaded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def measure(run: Path, examples, threads: int = 1) -> dict:
    import torch

    from kgfuse.tasks.api import load_predictor

    pred = load_predictor(run / "model", threads=threads)
    model = pred.model
    sizes = model.summary_parts  # name -> width, in the order of the scorer's input
    seen: list = []
    hook = model.classifier.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    w = model.classifier.weight[0].detach()
    spread: dict[str, list[float]] = {k: [] for k in sizes}
    norm: dict[str, list[float]] = {k: [] for k in sizes}
    total: list[float] = []
    with torch.no_grad():
        for ex in examples:
            seen.clear()
            pred.predict(ex.question, ex.choices)
            x = seen[-1]  # [choices, summary_dim]
            start, logit = 0, torch.zeros(x.shape[0])
            for k, d in sizes.items():
                part = x[:, start:start + d]
                c = part @ w[start:start + d]
                spread[k].append(c.std().item())
                norm[k].append(part.norm(dim=-1).mean().item())
                logit += c
                start += d
            total.append(logit.std().item())
    hook.remove()
    return {"run": run.name, "text_pooling": model.config.text_pooling, "questions": len(examples),
            "logit_spread": round(statistics.fmean(total), 3),
            "part_spread": {k: round(statistics.fmean(v), 3) for k, v in spread.items()},
            "part_norm": {k: round(statistics.fmean(v), 2) for k, v in norm.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (each with a model/ folder)")
    ap.add_argument("--data", required=True, help="questions to answer (any format kgfuse reads)")
    ap.add_argument("-n", type=int, default=300, help="the first N questions (default 300)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    from kgfuse.tasks.datasets import load_examples

    examples, _ = load_examples(args.data)
    examples = examples[: args.n]
    for run in args.runs:
        print(json.dumps(measure(run, examples, args.threads)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
