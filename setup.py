"""Build hooks of kgfuse; everything else is in pyproject.toml.

- The one compiled part: the path search kernel of ``PathRetriever``
  (``kg/retrieval/_pathsearch.c``, CPython API only). The extension is optional: without a C
  compiler the install still succeeds and ``PathRetriever`` uses its numpy search (same
  paths, slower).
- The source commit: a (non-editable) install built from a git checkout records the commit
  in ``kgfuse/_source.json``, so that results trained with an installed copy still name their
  code (:func:`kgfuse.tasks.provenance.source_commit`). An editable install reads git itself.
"""

import json
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def git_commit() -> str | None:
    """``HEAD`` of the checkout this is built from (``-dirty`` with changes to tracked files),
    or None outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


class BuildPyWithSource(build_py):
    """``build_py`` that also writes ``kgfuse/_source.json`` (``{"commit": ...}``)."""

    def run(self):
        super().run()
        commit = git_commit()
        if commit and not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "kgfuse" / "_source.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps({"commit": commit}) + "\n", encoding="utf-8")


setup(
    cmdclass={"build_py": BuildPyWithSource},
    ext_modules=[
        Extension(
            "kgfuse.kg.retrieval._pathsearch",
            ["kg/retrieval/_pathsearch.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ],
)
