"""kgfuse.fusion: ERNIE-style fusion layers and the multiple-choice model.

Names are imported lazily (``import kgfuse.fusion`` loads neither torch nor
transformers). Importing :mod:`kgfuse.fusion.modeling` (which any of the model names
below does) registers ``"kgfuse"`` with ``AutoConfig`` and
``AutoModelForMultipleChoice``.
"""

from __future__ import annotations

from kgfuse._lazy import lazy_exports

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

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
