"""Where a result came from: the source code in use, for run records.

:func:`source_commit` names the git commit of the kgfuse source (``-dirty`` with local
changes to tracked files) or, for an installed copy outside a git checkout, the package
version. Training records it per sitting (``sittings`` of the trainer state) and
``kgfuse evaluate --config`` per run (``rows.jsonl``).
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def source_commit() -> str:
    """The git commit of the kgfuse source in use (``-dirty`` with local changes), or its version."""
    src = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        import kgfuse

        return f"kgfuse {kgfuse.__version__}"
