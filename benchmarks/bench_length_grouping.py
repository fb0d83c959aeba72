"""What batching by length (``train.group_by_length``) saves on real multiple-choice features.

Builds the run of a training config (data, graph, linking, retrieval, features: the cached
preprocessing is reused) and compares one epoch's batches in the two training orders of
:func:`kgfuse.tasks.train.fit`, both pure functions of (seed, epoch):

- ``random``: :class:`~kgfuse.tasks.train.SeededShuffleSampler` (the default);
- ``grouped``: :class:`~kgfuse.tasks.train.LengthGroupedSampler` (megabatches of 50 batches,
  sorted by length, batches shuffled).

Reported per order: the padding utilisation of the whole epoch (real tokens of every choice
/ tokens the encoder computes, ``B x C x longest``; exact, machine-independent), and the mean
wall time of ``--steps`` full training steps (forward, backward, clipping, AdamW) on batches
drawn at the same evenly spaced positions of each order, on this machine at the current
torch thread count. The model is the config's own (LM-only with ``model.lm_only=true``).

Command (CPU; the CommonsenseQA full-scale configs, ``KGFUSE_DATA`` holding csqa/ and
conceptnet4/)::

    KGFUSE_DATA=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_length_grouping.py \\
        --config configs/csqa_conceptnet4.yaml --set model.lm_only=true --set train.lr_lm=5e-5 --steps 20
    # knowledge text: add --set train.max_length=128 --set knowledge_text.enabled=true
    #   --set knowledge_text.triples=5 --set knowledge_text.definitions=answer
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def utilisation(order: list[int], choice_lengths: list[list[int]], batch_size: int) -> dict:
    """Real and computed tokens of one epoch's batches in ``order``."""
    real = computed = 0
    for s in range(0, len(order), batch_size):
        batch = order[s:s + batch_size]
        longest = max(max(choice_lengths[i]) for i in batch)
        real += sum(sum(choice_lengths[i]) for i in batch)
        computed += sum(len(choice_lengths[i]) for i in batch) * longest
    return {"real_tokens": real, "computed_tokens": computed, "utilisation": round(real / computed, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per order (0: utilisation only)")
    ap.add_argument("--epoch", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    import torch

    from kgfuse.tasks.config import load_config
    from kgfuse.tasks.optim import build_param_groups
    from kgfuse.tasks.pipeline import build_run
    from kgfuse.tasks.train import LengthGroupedSampler, SeededShuffleSampler

    cfg = load_config(args.config, args.set)
    t = time.time()
    run = build_run(cfg, progress=False)
    ds = run.datasets["train"]
    t_build = time.time() - t
    t = time.time()
    choice_lengths = [[len(x) for x in ds[i]["input_ids"]] for i in range(len(ds))]
    t_lengths = time.time() - t
    B, seed = cfg.train.batch_size, cfg.train.seed
    orders = {}
    for name, sampler in (("random", SeededShuffleSampler(len(ds), seed=seed)),
                          ("grouped", LengthGroupedSampler([max(c) for c in choice_lengths], B, seed=seed))):
        sampler.set_epoch(args.epoch)
        orders[name] = list(sampler)
    result = {
        "config": args.config, "set": args.set, "questions": len(ds), "batch_size": B,
        "mean_statement_tokens": round(statistics.fmean(x for c in choice_lengths for x in c), 2),
        "build_run_s": round(t_build, 1), "lengths_s": round(t_lengths, 1),
        "torch_threads": torch.get_num_threads(), "machine": f"{platform.machine()} CPU",
        "orders": {k: utilisation(o, choice_lengths, B) for k, o in orders.items()},
    }
    if args.steps > 0:
        model = run.model
        model.train()
        opt = torch.optim.AdamW(build_param_groups(model, cfg.train))
        n_batches = len(ds) // B
        positions = [round(k * (n_batches - 1) / max(1, args.steps - 1)) for k in range(args.steps)]
        model(**run.collator([ds[i] for i in range(B)])).loss.backward()  # warm-up, untimed
        opt.step()
        opt.zero_grad(set_to_none=True)
        for name, order in orders.items():
            times, lengths = [], []
            for p in positions:
                batch = run.collator([ds[i] for i in order[p * B:(p + 1) * B]])
                t = time.perf_counter()
                loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.max_grad_norm or 1e9)
                opt.step()
                opt.zero_grad(set_to_none=True)
                times.append(time.perf_counter() - t)
                lengths.append(int(batch["input_ids"].shape[-1]))
            result["orders"][name].update(mean_step_s=round(statistics.fmean(times), 3),
                                          median_step_s=round(statistics.median(times), 3),
                                          mean_padded_length=round(statistics.fmean(lengths), 1))
        r, g = result["orders"]["random"], result["orders"]["grouped"]
        result["step_time_ratio"] = round(g["mean_step_s"] / r["mean_step_s"], 3)
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
