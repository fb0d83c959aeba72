"""Training-step cost of the KG-fused model against the LM-only ablation, at equal batch size.

The target is fused / LM-only <= 1.3x in step time and peak GPU memory. The GPU numbers
come from ``benchmarks/gpu/run_gpu.py`` (``torch.cuda.max_memory_allocated``). This script
measures what a CPU can, on the real CommonsenseQA batches of the GPU bundle
(``benchmarks/gpu/make_bundle.py``), so that the cost can be understood and reduced
without a GPU:

- **training memory, counted** (device-independent, fp32): parameter bytes, gradient bytes
  (trainable parameters), AdamW state (two fp32 moments per trainable parameter) and the
  activations autograd saves for the backward pass, counted by a
  ``torch.autograd.graph.saved_tensors_hooks`` over one training forward (distinct storages,
  parameters excluded). Their sum approximates the peak of a training step; it is a count,
  not ``max_memory_allocated`` (no allocator caching, no temporary buffers, no bf16);
- **where the fused step's extra time goes**: forward time of each part (text encoder lower
  layers, graph encoder, ERNIE fusion layers, node-embedding lookup), and the optimiser
  step, on this CPU;
- **step time**: median wall time of full training steps (forward, backward, clipping, AdamW).

Variants: ``lm`` (LM-only), ``fused`` (learned node table, as in run_gpu.py),
``fused-frozen-nodes`` (the node table frozen: no gradient and no AdamW state for its
``num_concepts x node_dim`` entries) and ``fused-vocab`` (the node table restricted to the
concepts of the whole training split, ``run_gpu.py --node-vocab train``).

Command (CPU; build the bundle first)::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_train_step.py --bundle benchmarks/gpu/bundle \\
        --batch-size 16 --steps 5 --json /tmp/bench_train_step.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "gpu"))

from bundle import Bundle, ensure_kgfuse_importable  # noqa: E402

VARIANTS = ("lm", "fused", "fused-frozen-nodes", "fused-vocab")


def saved_activation_bytes(model, batch) -> tuple[int, Any]:
    """Bytes of the distinct non-parameter storages autograd saves in one training forward."""
    import torch

    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            st = t.untyped_storage()
            ptr = st.data_ptr()
            if ptr not in param_ptrs and ptr not in seen:
                seen[ptr] = st.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(**batch)
    return sum(seen.values()), out


def part_times(model, batch, repeats: int) -> dict[str, float]:
    """Median forward milliseconds spent in each part (forward hooks, training mode, no grad)."""
    import torch

    parts: dict[str, Any] = {}
    te = model.text_encoder
    parts["text_embeddings"] = te.embeddings
    layers = list(te.encoder.layer)
    n_fused = getattr(model, "num_fused", 0) if model.config.use_graph else 0
    for i, layer in enumerate(layers):
        parts[f"text_layer_{i}{' (under fusion)' if i >= len(layers) - n_fused else ''}"] = layer
    if model.config.use_graph:
        parts["node_embeddings"] = model.node_embeddings
        parts["graph_encoder"] = model.graph_encoder
        if n_fused:
            for i, fl in enumerate(model.fusion_layers):
                parts[f"fusion_layer_{i}"] = fl
    acc: dict[str, list[float]] = {k: [] for k in parts}
    starts: dict[str, float] = {}
    handles = []
    for name, mod in parts.items():
        handles.append(mod.register_forward_pre_hook(lambda m, a, n=name: starts.__setitem__(n, time.perf_counter())))
        handles.append(mod.register_forward_hook(lambda m, a, o, n=name: acc[n].append(time.perf_counter() - starts[n])))
    totals = []
    model.train()
    with torch.no_grad():
        for _ in range(repeats + 1):
            t = time.perf_counter()
            model(**batch)
            totals.append(time.perf_counter() - t)
    for h in handles:
        h.remove()
    # a fusion layer runs its wrapped text layer's blocks directly (that layer's hooks do not fire): its time includes them
    res = {k: 1000 * statistics.median(v[-repeats:]) for k, v in acc.items() if v}
    res["forward_total"] = 1000 * statistics.median(totals[1:])
    return res


def run_variant(name: str, args, bundle, graph, data, collator, train_concepts=None) -> dict[str, Any]:
    import torch

    from kgfuse.tasks.train import build_param_groups

    import run_gpu

    cfg = run_gpu.make_config(args, "csqa", name == "lm", 0, 1, bundle.model_dir)
    if name == "fused-frozen-nodes":
        cfg.model.options["freeze_node_embeddings"] = True
    model = run_gpu.build_model(cfg, graph, train_concepts if name == "fused-vocab" else None)
    ds = data["lm" if name == "lm" else "fused"]
    bs = args.batch_size
    batches = [collator([ds[(s * bs + k) % len(ds)] for k in range(bs)]) for s in range(args.steps + 1)]
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    p_bytes = sum(p.numel() * p.element_size() for p in params)
    t_bytes = sum(p.numel() * p.element_size() for p in trainable)
    act_bytes, _ = saved_activation_bytes(model, batches[0])
    model.zero_grad(set_to_none=True)
    opt = torch.optim.AdamW(build_param_groups(model, cfg.train), lr=1e-5)
    times, opt_times = [], []
    model.train()
    for b in batches:
        t = time.perf_counter()
        out = model(**b)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        t_opt = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        now = time.perf_counter()
        times.append(now - t)
        opt_times.append(now - t_opt)
    state_bytes = sum(v.numel() * v.element_size() for st in opt.state.values() for v in st.values()
                      if isinstance(v, torch.Tensor) and v.dim() > 0)
    parts = part_times(model, batches[0], args.part_repeats)
    total = p_bytes + t_bytes + state_bytes + act_bytes
    res = {
        "variant": name, "parameters": sum(p.numel() for p in params), "trainable": sum(p.numel() for p in trainable),
        "param_mib": p_bytes / 2**20, "grad_mib": t_bytes / 2**20, "adam_state_mib": state_bytes / 2**20,
        "saved_activation_mib": act_bytes / 2**20, "counted_total_mib": total / 2**20,
        "step_ms_median": 1000 * statistics.median(times[1:]), "optimizer_step_ms_median": 1000 * statistics.median(opt_times[1:]),
        "seq_len": int(batches[0]["input_ids"].shape[-1]), "statements": int(batches[0]["input_ids"].shape[0] * batches[0]["input_ids"].shape[1]),
        "parts_forward_ms": parts,
    }
    del model, opt, batches
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=str(HERE / "gpu" / "bundle"))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    ap.add_argument("--part-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    # model options as in run_gpu.py
    ap.add_argument("--graph-encoder", default="qagnn")
    ap.add_argument("--fusion-layers", type=int, default=2)
    ap.add_argument("--node-dim", type=int, default=100)
    ap.add_argument("--graph-hidden-dim", type=int, default=200)
    args = ap.parse_args(argv)
    # the rest of run_gpu.make_config's fields
    for k, v in dict(epochs=1, eval_batch_size=64, lr_lm=5e-5, lr_gnn=1e-3, lr_fusion=1e-3, warmup_ratio=0.1,
                     precision="no", workers=0).items():
        setattr(args, k, v)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variants {bad}; valid: {list(VARIANTS)}")
    ensure_kgfuse_importable()
    import torch

    from kgfuse.encoders.text import load_tokenizer
    from kgfuse.tasks.features import MultipleChoiceCollator

    import run_gpu

    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = Bundle.open(args.bundle).verify()
    work = Path(tempfile.mkdtemp(prefix="kgfuse-bench-step-"))
    bundle.unpack(work)
    graph = bundle.graph()
    tok = load_tokenizer(str(bundle.model_dir))
    exs = bundle.examples("csqa", "train")
    pre = bundle.preprocessed("csqa", "train", graph, exs)
    train_concepts = pre.concepts()  # of the whole training split (fused-vocab)
    n = args.batch_size * (args.steps + 1)
    exs, pre = exs[:n], run_gpu._Subset(pre, n)
    data = run_gpu.model_datasets(exs, pre, tok, args.max_length)
    collator = MultipleChoiceCollator(tok, max_length=args.max_length)
    import kgfuse.fusion.layers

    results = {"train_concepts": int(len(train_concepts)), "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads", "torch": torch.__version__,
               "kgfuse_from": str(Path(kgfuse.fusion.layers.__file__).resolve().parents[1]),
               "batch_size": args.batch_size, "command": " ".join(["benchmarks/bench_train_step.py"] + (argv or sys.argv[1:])),
               "runs": []}
    for v in variants:
        r = run_variant(v, args, bundle, graph, data, collator, train_concepts)
        results["runs"].append(r)
        print(json.dumps({k: (round(x, 2) if isinstance(x, float) else x) for k, x in r.items() if k != "parts_forward_ms"}), flush=True)
        print("  forward ms by part: " + ", ".join(f"{k} {x:.1f}" for k, x in r["parts_forward_ms"].items()), flush=True)
    by = {r["variant"]: r for r in results["runs"]}
    if "lm" in by:
        for v, r in by.items():
            if v != "lm":
                r["ratio_counted_memory"] = r["counted_total_mib"] / by["lm"]["counted_total_mib"]
                r["ratio_step_time"] = r["step_ms_median"] / by["lm"]["step_ms_median"]
                print(f"{v} / lm: counted memory {r['ratio_counted_memory']:.2f}x, CPU step time {r['ratio_step_time']:.2f}x")
    print(f"kgfuse code from {results['kgfuse_from']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
