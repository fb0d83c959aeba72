"""kgfuse.fusion: ERNIE-style fusion layers, the fused base model and its task heads.

Names are imported lazily (``import kgfuse.fusion`` loads neither torch nor
transformers). Importing :mod:`kgfuse.fusion.modeling` (which any of the model names
below does) registers ``"kgfuse"`` with ``AutoConfig``, ``AutoModel`` and
``AutoModelForMultipleChoice``; :mod:`kgfuse.fusion.pretraining` with
``AutoModelForPreTraining``.
"""

from __future__ import annotations

from kgfuse._lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "KGFusedConfig": "modeling",
    "KGFusedModel": "modeling",
    "FusedEncoderOutput": "modeling",
    "KGFusedForMultipleChoice": "modeling",
    "KGFusedPreTrainedModel": "modeling",
    "KGFusedForPreTraining": "pretraining",
    "KGFusedPreTrainingOutput": "pretraining",
    "load_for_finetuning": "pretraining",
    "KnowledgeableLayer": "layers",
    "supports_layer_fusion": "backbone",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
