"""kgfuse.fusion: ERNIE-style fusion layers and the multiple-choice model.

Names are imported lazily (``import kgfuse.fusion`` loads neither torch nor
transformers). Importing :mod:`kgfuse.fusion.modeling` (which any of the model names
below does) registers ``"kgfuse"`` with ``AutoConfig`` and
``AutoModelForMultipleChoice``.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_EXPORTS = {
    "KGFusedConfig": "modeling",
    "KGFusedForMultipleChoice": "modeling",
    "KGFusedPreTrainedModel": "modeling",
    "KGFusedForPreTraining": "pretraining",
    "KGFusedPreTrainingOutput": "pretraining",
    "load_for_finetuning": "pretraining",
    "KnowledgeableLayer": "layers",
    "supports_layer_fusion": "backbone",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'kgfuse.fusion' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
