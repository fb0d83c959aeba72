"""Build hooks of kgfuse; everything else is in pyproject.toml.

- The one compiled part: the path search kernel of ``PathRetriever``
  (``kg/retrieval/_pathsearch.c``, CPython API only). The extension is optional: without a C
  compiler the install still succeeds and ``PathRetriever`` uses its numpy search (same
  paths, slower).
- The source commit: a (non-editable) install built from a git checkout records the commit
  in ``kgfuse/_source.json``, so that results trained with an installed copy still name their
  code (:func:`kgfuse.tasks.provenance.source_commit`). An editable install reads git itself.
"""

import importlib.util
import json
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def git_commit() -> str | None:
    """``HEAD`` of the checkout this is built from (``-dirty`` with changes to tracked files),
    or None outside a git checkout: the query of ``tasks/provenance.py``, loaded by path
    because kgfuse is not importable while it is being built."""
    spec = importlib.util.spec_from_file_location("_kgfuse_provenance", HERE / "tasks" / "provenance.py")
    provenance = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(provenance)
    return provenance.git_commit(HERE)


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
