"""Optimisation pieces of the training loop (:mod:`kgfuse.tasks.loop`): parameter groups with
per-part learning rates, the accelerator, AdamW with the linear warm-up / decay schedule,
and the step of one micro-batch (backward, clipping, optimiser and schedule step).

The defaults follow QA-GNN (Yasunaga et al., 2021): the pretrained text encoder learns at
``lr_lm``, the graph encoder and node table at ``lr_gnn``, the fusion layers and heads at
``lr_fusion``; no weight decay on biases and LayerNorm weights.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from .config import OptimConfig

__all__ = ["build_param_groups", "resolve_mixed_precision", "make_accelerator", "make_optimizer", "optimizer_step",
           "LM_PREFIXES", "GNN_PREFIXES"]

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias", "norm.weight", "ln.weight")
LM_PREFIXES = ("text_encoder.", "lm.", "bert.", "roberta.", "electra.", "encoder.", "embeddings.")
GNN_PREFIXES = ("gnn.", "graph_encoder.", "concept_emb", "node_emb", "kg_emb")


# --------------------------------------------------------------------------------------
# parameter groups


def _named_groups(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Split parameters into ``lm`` / ``gnn`` / ``fusion``.

    Uses ``model.parameter_groups()`` when the model provides it (a mapping from group name
    to parameter names or ``(name, param)`` pairs; unknown group names count as ``fusion``);
    otherwise name prefixes (:data:`LM_PREFIXES`, :data:`GNN_PREFIXES`; the rest is fusion + head).
    """
    named = dict(model.named_parameters())
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {"lm": [], "gnn": [], "fusion": []}
    if hasattr(model, "parameter_groups"):
        seen: set[str] = set()
        for gname, items in model.parameter_groups().items():
            key = gname if gname in groups else ("lm" if gname in ("text", "text_encoder") else "gnn" if gname in ("graph", "graph_encoder") else "fusion")
            for it in items:
                if isinstance(it, str):
                    n, p = it, named[it]
                elif isinstance(it, tuple):
                    n, p = it
                else:  # a bare parameter
                    n = next(k for k, v in named.items() if v is it)
                    p = it
                if n in seen:
                    continue
                seen.add(n)
                groups[key].append((n, p))
        for n, p in named.items():  # anything the model forgot goes with the head
            if n not in seen:
                groups["fusion"].append((n, p))
        return groups
    for n, p in named.items():
        if n.startswith(GNN_PREFIXES) or ".gnn." in n or ".graph_encoder." in n:
            groups["gnn"].append((n, p))
        elif n.startswith(LM_PREFIXES):
            groups["lm"].append((n, p))
        else:
            groups["fusion"].append((n, p))
    return groups


def build_param_groups(model: nn.Module, opt: OptimConfig) -> list[dict[str, Any]]:
    """AdamW parameter groups: {lm, gnn, fusion} × {decay, no decay}.

    Each group carries a ``name`` (``"lm"``, ``"lm_no_decay"``, ...) and its own ``lr``.
    Empty groups are dropped.
    """
    lrs = {"lm": opt.lr_lm, "gnn": opt.lr_gnn, "fusion": opt.lr_fusion}
    out = []
    for gname, items in _named_groups(model).items():
        decay = [p for n, p in items if not any(nd in n for nd in _NO_DECAY) and p.ndim > 1]
        no_decay = [p for n, p in items if any(nd in n for nd in _NO_DECAY) or p.ndim <= 1]
        if decay:
            out.append({"name": gname, "params": decay, "lr": lrs[gname], "weight_decay": opt.weight_decay})
        if no_decay:
            out.append({"name": f"{gname}_no_decay", "params": no_decay, "lr": lrs[gname], "weight_decay": 0.0})
    return out


# --------------------------------------------------------------------------------------
# accelerator


def resolve_mixed_precision(value: str) -> str:
    """``auto`` → ``bf16`` on a GPU that supports it, ``fp16`` on other GPUs, ``no`` on CPU."""
    if value != "auto":
        if value not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be auto, no, fp16 or bf16, not {value!r}")
        return value
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def make_accelerator(opt: OptimConfig, *, cpu: bool | None = None, find_unused_parameters: bool = False):
    """An ``accelerate.Accelerator`` for this optimiser config (fine-tuning and pre-training).

    Args:
        opt: gradient accumulation and mixed precision come from it.
        cpu: force the CPU (default: when no GPU is present).
        find_unused_parameters: DDP's option, for a model with parameters that feed no loss
            (pre-training: the entity output of the last fusion layer).
    """
    from accelerate import Accelerator

    mp = resolve_mixed_precision(opt.mixed_precision)
    kwargs: dict[str, Any] = {"gradient_accumulation_steps": max(1, opt.grad_accum), "mixed_precision": mp}
    if find_unused_parameters:
        from accelerate.utils import DistributedDataParallelKwargs

        kwargs["kwargs_handlers"] = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    if cpu is None:
        # Without a GPU, cpu=True is what makes Accelerate join the processes of
        # `accelerate launch --multi_gpu --num_processes N` (MULTI_CPU, gloo); without it each
        # process would think it is alone.
        cpu = not torch.cuda.is_available()
    if cpu:
        kwargs["cpu"] = True
    return Accelerator(**kwargs)


# --------------------------------------------------------------------------------------
# optimiser, schedule and one step


def make_optimizer(model: nn.Module, opt: OptimConfig, total_steps: int):
    """AdamW over :func:`build_param_groups` and the linear warm-up / decay schedule over
    ``total_steps`` optimiser steps (``warmup_ratio`` of them warming up); returns
    ``(optimizer, scheduler)``."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(build_param_groups(model, opt), lr=opt.lr_fusion)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(round(opt.warmup_ratio * total_steps)), max(total_steps, 1))
    return optimizer, scheduler


def optimizer_step(acc, model: nn.Module, optimizer, scheduler, loss: torch.Tensor, opt: OptimConfig, *,
                   drop_grads: Sequence[nn.Parameter] = ()) -> None:
    """Backward of one micro-batch inside ``acc.accumulate(model)``; on the micro-batch that
    completes an accumulation, gradients are clipped to ``opt.max_grad_norm`` and the
    optimiser and schedule step (Accelerate skips the steps in between).

    ``drop_grads``: parameters whose gradients are discarded after backward (a frozen text
    encoder under DDP, where ``requires_grad`` may not change).
    """
    acc.backward(loss)
    for p in drop_grads:
        p.grad = None
    if acc.sync_gradients and opt.max_grad_norm:
        acc.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], opt.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
