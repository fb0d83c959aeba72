"""The knowledge-graph-fused multiple-choice model: :class:`KGFusedForMultipleChoice`.

A thin head on :class:`~kgfuse.fusion.base.KGFusedModel`: each (question, choice) statement
is encoded by the fused encoder, and a linear scorer over its summary vector
``[pooled text ; graph vector ; mean fused entity state]`` gives the choice's score.

The model's parts live in their own modules; this module re-exports them, so
``from kgfuse.fusion.modeling import ...`` keeps working for every name:

- :mod:`kgfuse.fusion.configuration`: :class:`KGFusedConfig`;
- :mod:`kgfuse.fusion.loading`: :class:`KGFusedPreTrainedModel` (verified saving and
  loading, ``kgfuse_manifest.json``) and :class:`ModelLoadError`;
- :mod:`kgfuse.fusion.base`: :class:`KGFusedModel`, :class:`FusedEncoderOutput`,
  :class:`ConceptTable`, :func:`entity_sequences`.

Raw-text prediction: :class:`kgfuse.tasks.inference.KGFusePredictor`. Encoder families:
:mod:`kgfuse.fusion.backbone` (ALBERT's shared layer is copied for the fused positions:
``text_layer_copies``).

Importing this module registers ``"kgfuse"`` with ``AutoConfig``, ``AutoModel`` and
``AutoModelForMultipleChoice``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoModelForMultipleChoice
from transformers.modeling_outputs import MultipleChoiceModelOutput

from .base import ConceptTable, FusedEncoderOutput, KGFusedModel, entity_sequences
from .configuration import NODE_FEATURE_KINDS, KGFusedConfig
from .loading import KGFusedPreTrainedModel, ModelLoadError

__all__ = ["KGFusedConfig", "KGFusedPreTrainedModel", "KGFusedModel", "KGFusedForMultipleChoice", "FusedEncoderOutput",
           "ConceptTable", "ModelLoadError", "entity_sequences", "NODE_FEATURE_KINDS"]


class KGFusedForMultipleChoice(KGFusedModel):
    """The fused encoder with a multiple-choice scorer (``dropout`` + ``classifier``).

    See :class:`~kgfuse.fusion.base.KGFusedModel` and ``docs/model.md`` for the encoder. Build
    one from a pretrained text encoder with :meth:`from_text_pretrained`, from any text
    config with :meth:`from_text_config`, or load a saved one with ``from_pretrained``.

    Shapes (``B`` questions, ``C`` choices, ``L`` tokens, ``N`` nodes, ``E`` edges, ``S = B*C``):
        input_ids, attention_mask, token_type_ids, entity_index: ``[B, C, L]``;
        node_concept_ids, node_type, node_batch: ``[N]``; edge_index: ``[2, E]``; edge_type: ``[E]``;
        paths ``[P, H+1]``, path_rels ``[P, H]``, path_len ``[P]`` (optional, KagNet);
        labels: ``[B]``; logits: ``[B, C]``.
    """

    # forward takes **kwargs but returns the plain mean loss: transformers' Trainer must divide
    # it by the gradient-accumulation steps itself
    accepts_loss_kwargs = False

    # A pre-training checkpoint (:class:`~kgfuse.fusion.pretraining.KGFusedForPreTraining`) has
    # the same weights plus its MLM and dEA heads: loading it here drops them silently.
    _keys_to_ignore_on_load_unexpected = [r"^mlm_head\.", r"^dea_head\."]

    def _add_scorer(self) -> None:  # the real scorer, initialised by post_init
        self.dropout = nn.Dropout(self.config.classifier_dropout)
        self.classifier = nn.Linear(self.summary_dim, 1)
        return None

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        entity_index: Tensor | None = None,
        node_concept_ids: Tensor | None = None,
        node_type: Tensor | None = None,
        node_batch: Tensor | None = None,
        edge_index: Tensor | None = None,
        edge_type: Tensor | None = None,
        paths: Tensor | None = None,
        path_rels: Tensor | None = None,
        path_len: Tensor | None = None,
        node_score: Tensor | None = None,
        labels: Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> MultipleChoiceModelOutput | tuple:
        """Score every choice; see the class docstring for shapes."""
        if input_ids is None:
            raise ValueError("input_ids is required")
        if input_ids.dim() != 3:
            raise ValueError(f"input_ids must be [batch, choices, seq], got shape {tuple(input_ids.shape)}")
        B, C, L = input_ids.shape
        S = B * C
        flat = lambda t: None if t is None else t.reshape(S, -1)  # noqa: E731
        enc = self.encode(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(entity_index),
                          node_concept_ids, node_type, node_batch, edge_index, edge_type, paths, path_rels, path_len,
                          node_score)
        logits = self.classifier(self.dropout(self.summary(enc))).view(B, C)
        loss = F.cross_entropy(logits, labels.view(-1)) if labels is not None else None
        if return_dict is False:
            return (loss, logits) if loss is not None else (logits,)
        return MultipleChoiceModelOutput(loss=loss, logits=logits)


AutoModelForMultipleChoice.register(KGFusedConfig, KGFusedForMultipleChoice, exist_ok=True)
