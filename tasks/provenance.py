"""Where a result came from: the source code in use, for run records.

:func:`source_commit` names the git commit of the kgfuse source (``-dirty`` with local
changes to tracked files): read from git for a source tree or an editable install, from
``kgfuse/_source.json`` (written by ``setup.py`` when the package was built from a git
checkout) for an installed copy, else the package version. Training records it per sitting
(``sittings`` of the trainer state) and ``kgfuse evaluate --config`` per run (``rows.jsonl``).
"""

from __future__ import annotations

import json
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def source_commit() -> str:
    """The git commit of the kgfuse source in use (``-dirty`` with local changes), or its version."""
    recorded = installed_commit()  # first: an installed copy may sit inside another checkout
    if recorded:
        return recorded
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


def installed_commit() -> str | None:
    """The commit an installed copy was built from (``_source.json`` in the installed
    ``kgfuse`` folder), or None (a source tree, an editable install, a build outside git)."""
    p = Path(__file__).resolve().parents[1] / "_source.json"
    try:
        commit = json.loads(p.read_text(encoding="utf-8")).get("commit")
    except (OSError, ValueError, AttributeError):
        return None
    return str(commit) if commit else None
