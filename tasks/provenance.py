"""Where a result came from: the source code in use, for run records.

:func:`source_commit` names the git commit of the kgfuse source (``-dirty`` with local
changes to tracked files): read from git for a source tree or an editable install, from
``kgfuse/_source.json`` (written by ``setup.py`` when the package was built from a git
checkout) for an installed copy, else the package version. Training records it per sitting
(``sittings`` of the trainer state) and ``kgfuse evaluate --config`` per run (``rows.jsonl``),
each with :func:`software_versions` and :func:`machine`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def source_commit() -> str:
    """The git commit of the kgfuse source in use (``-dirty`` with local changes), or its version."""
    recorded = installed_commit()  # first: an installed copy may sit inside another checkout
    if recorded:
        return recorded
    commit = git_commit(Path(__file__).resolve().parents[1])
    if commit:
        return commit
    import kgfuse

    return f"kgfuse {kgfuse.__version__}"


def git_commit(directory: str | Path) -> str | None:
    """``HEAD`` of the git checkout holding ``directory`` (``-dirty`` with changes to tracked
    files), or None outside a checkout or without git. Standard library only: ``setup.py``
    loads this file by path at build time, before kgfuse is importable."""
    try:
        head = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


#: the installed distributions whose versions a run record names (those that change results)
RECORDED_PACKAGES = ("torch", "transformers", "torch-geometric", "spacy", "accelerate", "safetensors", "tokenizers",
                     "numpy")


def software_versions() -> dict[str, str]:
    """Python and the installed versions of :data:`RECORDED_PACKAGES` (those installed), read
    from the package metadata without importing them; a new dict on each call (records may
    change theirs). The same commit can train another model under other versions (e.g. how
    transformers lays out the weights it reads changes the CPU kernels' last bits), so run
    records keep them beside the commit."""
    return dict(_software_versions())


@lru_cache(maxsize=1)
def _software_versions() -> tuple[tuple[str, str], ...]:
    from importlib.metadata import PackageNotFoundError, version

    out = [("python", platform.python_version())]
    for name in RECORDED_PACKAGES:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            pass
    return tuple(out)


def installed_commit() -> str | None:
    """The commit an installed copy was built from (``_source.json`` in the installed
    ``kgfuse`` folder), or None (a source tree, an editable install, a build outside git)."""
    p = Path(__file__).resolve().parents[1] / "_source.json"
    try:
        commit = json.loads(p.read_text(encoding="utf-8")).get("commit")
    except (OSError, ValueError, AttributeError):
        return None
    return str(commit) if commit else None


def machine(device: Any = None) -> str:
    """What a run ran on, for run records: the accelerator when ``device`` (a
    ``torch.device`` or its name) is a CUDA one, then the CPU: architecture, cores and model
    name, then the vector instructions torch's CPU kernels use here, e.g. ``x86_64 CPU, 2
    cores (AMD EPYC; kernels AVX512)`` or ``NVIDIA H200 GPU; x86_64 CPU, 16 cores (...)``.
    Step times and the last bits of CPU results depend on both: two CPUs that report the
    same model name can run AVX2 or AVX-512 kernels, several times apart in speed. A run
    resumed elsewhere changes machine between sittings."""
    cpu = f"{platform.machine() or 'unknown'} CPU, {os.cpu_count()} cores"
    kernels = cpu_kernels()
    details = [x for x in (cpu_model(), kernels and f"kernels {kernels}") if x]
    if details:
        cpu += f" ({'; '.join(details)})"
    if device is not None and str(device).startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(device)} GPU; {cpu}"
    return cpu


def cpu_kernels() -> str | None:
    """The instruction set torch's CPU kernels dispatch to on this machine (``AVX512``,
    ``AVX2``, ``DEFAULT``, ...: ``torch.backends.cpu.get_cpu_capability()``), or None where
    this torch does not say. Imports torch (run records are written by training, which has)."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability()) or None
    except (ImportError, AttributeError, RuntimeError):
        return None


@lru_cache(maxsize=1)
def cpu_model() -> str | None:
    """The CPU's model name (``model name`` of ``/proc/cpuinfo`` on Linux, else
    :func:`platform.processor`), or None where neither names it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or None
