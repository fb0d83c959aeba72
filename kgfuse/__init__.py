"""kgfuse: knowledge-graph-augmented language models.

Importing this package loads nothing heavy: no torch, no spaCy pipeline, no model,
no data. Sub-packages:

- :mod:`kgfuse.kg`        graph store, loaders, entity linking, retrieval, KG embeddings
- :mod:`kgfuse.encoders`  graph encoders (PyG modules)
- :mod:`kgfuse.fusion`    ERNIE-style fusion layers and the multiple-choice model
- :mod:`kgfuse.tasks`     datasets, features, training, evaluation, CLI

After ``import kgfuse``, transformers' ``AutoConfig``, ``AutoModelForMultipleChoice`` and
``AutoModelForPreTraining`` know the ``"kgfuse"`` model type: the classes are registered the
first time transformers' Auto classes are imported (see :mod:`kgfuse._auto`), or now if they
already are. :func:`register_auto_classes` registers them explicitly.

``kgfuse.api`` is :mod:`kgfuse.tasks.api` (train, pretrain, evaluate, predict in one call each),
imported on first use.
"""

from __future__ import annotations

from typing import Any

from ._auto import install_registration_hook as _install_registration_hook
from ._auto import register_auto_classes

__all__ = ["__version__", "api", "register_auto_classes"]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kgfuse")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        v = _package_version()
        globals()["__version__"] = v
        return v
    if name == "api":  # light to import, but not needed by `import kgfuse`
        import importlib

        mod = importlib.import_module("kgfuse.tasks.api")
        globals()["api"] = mod
        return mod
    raise AttributeError(f"module 'kgfuse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_install_registration_hook()
