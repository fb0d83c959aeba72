r"""ERNIE knowledgeable pre-training of the fused model: masked LM + denoising entity auto-encoder.

Zhang et al., "ERNIE: Enhanced Language Representation with Informative Entities", ACL 2019,
section 3.4. Besides BERT's masked language model (MLM), ERNIE pre-trains its fusion layers
with a *denoising entity auto-encoder* (dEA): some token-entity alignments of the input are
corrupted, and from the final state :math:`w_j` of every aligned token the model must
recover the entity :math:`e_k` it was aligned to, among the entities of the sequence:

.. math::
    p(e_k \mid w_j) = \frac{\exp(f(w_j)^\top e_k)}{\sum_{i=1}^{m} \exp(f(w_j)^\top e_i)},
    \qquad f(w) = \mathrm{LN}(\sigma(W w + b)),

where :math:`e_1..e_m` are the candidate entities of the sequence (here: the rows of the
fused model's node-embedding table for the sequence's linked concepts) and :math:`f` maps a
token state into entity space. The loss is :math:`\lambda_{mlm} L_{mlm} + \lambda_{dEA}
L_{dEA}` (weights in :mod:`kgfuse.tasks.pretrain`, which also does the corruption).

:class:`KGFusedForPreTraining` is a head on :class:`~kgfuse.fusion.base.KGFusedModel`, as
:class:`~kgfuse.fusion.modeling.KGFusedForMultipleChoice` is: the text encoder, the node
embeddings, the graph encoder, the entity projection and the fusion layers have the base's
parameter names in both, and each adds its own head modules; this one adds two:

- ``mlm_head``: BERT's prediction head (``transform.dense``, ``transform.LayerNorm``, ``bias``)
  whose decoder is tied to the text encoder's input embeddings; loaded from the checkpoint's
  ``cls.predictions.*`` (BERT), ``lm_head.*`` (RoBERTa) or ``predictions.*`` (ALBERT) weights when it has them, fresh
  otherwise (e.g. all-MiniLM-L6-v2, a sentence encoder, has none);
- ``dea_head``: :math:`f` above.

So a saved pre-training checkpoint loads with
``KGFusedForMultipleChoice.from_pretrained(folder)`` (the heads are ignored, the scorer is
initialised fresh), and a multiple-choice checkpoint loads into this class (its scorer is
ignored, the heads start fresh). :func:`load_for_finetuning` also handles a fine-tuning graph
different from the pre-training graph (only the graph-independent weights transfer).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoModelForPreTraining
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from .base import KGFusedModel
from .configuration import KGFusedConfig
from .loading import GRAPH_INDEPENDENT_PREFIXES, transfer_pretrained_weights
from .modeling import KGFusedForMultipleChoice

__all__ = [
    "KGFusedForPreTraining",
    "KGFusedPreTrainingOutput",
    "MaskedLMHead",
    "EntityPredictionHead",
    "GRAPH_INDEPENDENT_PREFIXES",
    "transfer_pretrained_weights",
    "load_for_finetuning",
]

logger = logging.getLogger(__name__)

# checkpoint prefix -> our prefix, for MLM heads of pretrained checkpoints
_MLM_HEAD_KEYS = (
    ("cls.predictions.transform.dense.", "transform.dense."),  # BERT, MiniLM/TinyBERT BERT checkpoints
    ("cls.predictions.transform.LayerNorm.", "transform.LayerNorm."),
    ("cls.predictions.bias", "bias"),
    ("lm_head.dense.", "transform.dense."),  # RoBERTa
    ("lm_head.layer_norm.", "transform.LayerNorm."),
    ("lm_head.bias", "bias"),
    ("predictions.dense.", "transform.dense."),  # ALBERT
    ("predictions.LayerNorm.", "transform.LayerNorm."),
    ("predictions.bias", "bias"),
)


def _act(name: Any):
    return ACT2FN[name] if isinstance(name, str) else name


class _Transform(nn.Module):
    """``LayerNorm(act(W h + b))`` (BERT's ``BertPredictionHeadTransform``)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_act: Any = "gelu", layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.dense = nn.Linear(in_dim, out_dim)
        self.transform_act_fn = _act(hidden_act)
        self.LayerNorm = nn.LayerNorm(out_dim, eps=layer_norm_eps)

    def forward(self, h: Tensor) -> Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(h)))


class MaskedLMHead(nn.Module):
    """BERT's MLM head with the decoder tied to the input embeddings.

    ``logits = transform(h) @ E^T + b`` where ``E`` ``[V, D]`` is the text encoder's
    word-embedding matrix (``D`` may differ from the hidden size ``H``, as in ELECTRA).

    Shapes:
        h: ``[M, H]``; word_embeddings: ``[V, D]``; output: ``[M, V]``.
    """

    def __init__(self, hidden_size: int, embedding_size: int, vocab_size: int, hidden_act: Any = "gelu",
                 layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.transform = _Transform(hidden_size, embedding_size, hidden_act, layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, h: Tensor, word_embeddings: Tensor) -> Tensor:
        return self.transform(h) @ word_embeddings.t().to(h.dtype) + self.bias.to(h.dtype)


class EntityPredictionHead(nn.Module):
    r"""ERNIE's dEA head: :math:`f(w) = \mathrm{LN}(\sigma(W w + b))` into entity space; the
    score of candidate entity :math:`e` is :math:`f(w)^\top e`.

    Shapes:
        h: ``[A, H]``; candidates: ``[C, D]``; output: ``[A, C]``.
    """

    def __init__(self, hidden_size: int, entity_dim: int, hidden_act: Any = "gelu", layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.transform = _Transform(hidden_size, entity_dim, hidden_act, layer_norm_eps)

    def forward(self, h: Tensor, candidates: Tensor) -> Tensor:
        return self.transform(h) @ candidates.t().to(h.dtype)


@dataclass
class KGFusedPreTrainingOutput(ModelOutput):
    """Output of :class:`KGFusedForPreTraining`.

    Attributes:
        loss: ``mlm_weight * mlm_loss + dea_weight * dea_loss`` (when labels are given).
        mlm_loss, dea_loss: the two objectives (``None`` when not computed).
        mlm_logits: ``[M, V]`` at the ``M`` positions with an MLM label.
        dea_scores: ``[A, C]`` per supervised alignment, over the batch's candidates
            (``-inf`` outside the alignment's own sequence).
        last_hidden_state: ``[S, L, H]`` final token states.
    """

    loss: Tensor | None = None
    mlm_loss: Tensor | None = None
    dea_loss: Tensor | None = None
    mlm_logits: Tensor | None = None
    dea_scores: Tensor | None = None
    last_hidden_state: Tensor | None = None


class KGFusedForPreTraining(KGFusedModel):
    """The fused encoder with ERNIE's pre-training heads (MLM + dEA).

    A head on :class:`~kgfuse.fusion.base.KGFusedModel` (same constructors:
    ``from_text_pretrained``, ``from_text_config``, ``from_pretrained``; the base's parameter
    names) adding ``mlm_head`` and (when the model has fusion layers) ``dea_head``.

    Inputs are single sequences, not (question, choice) pairs: ``input_ids`` ``[S, L]``
    (``[B, 1, L]`` is accepted too), graph fields as in contract 4 with ``node_batch`` the
    sequence of each node, and the targets built by
    :class:`kgfuse.tasks.pretrain.PretrainingCollator`:

    Args (forward):
        mlm_labels: ``[S, L]`` token id to predict, ``-100`` elsewhere.
        dea_token: ``[A]`` flat position ``s * L + t`` of each supervised aligned token.
        dea_candidates: ``[C]`` concept ids of every sequence's candidate entities.
        dea_candidate_batch: ``[C]`` sequence of each candidate.
        dea_target: ``[A]`` index into ``dea_candidates`` of the right entity.
        mlm_weight, dea_weight: loss weights (default 1, 1).
    """

    _keys_to_ignore_on_load_unexpected = [r"^classifier\."]
    _keys_to_ignore_on_load_missing = [r"^mlm_head\.", r"^dea_head\."]
    # the MLM head reads token states and the word embeddings: it transfers across graphs
    _graph_independent_heads = ("mlm_head.",)

    def __init__(self, config: KGFusedConfig) -> None:
        super().__init__(config)
        tc = self.text_encoder.config
        H = tc.hidden_size
        emb = self.text_encoder.get_input_embeddings()
        act = getattr(tc, "hidden_act", "gelu")
        eps = getattr(tc, "layer_norm_eps", 1e-12)
        self.mlm_head = MaskedLMHead(H, emb.embedding_dim, emb.num_embeddings, act, eps)
        if config.use_graph and self.num_fused:
            self.dea_head = EntityPredictionHead(H, config.node_dim, act, eps)
        else:
            self.dea_head = None
        self.post_init()  # initialises the new heads only (the base is marked initialised)

    def _init_weights(self, module: nn.Module) -> None:
        from transformers import initialization as init

        super()._init_weights(module)
        if isinstance(module, MaskedLMHead):
            init.zeros_(module.bias)

    def predictor(self, **kwargs: Any):
        raise TypeError("a pre-training model has no multiple-choice scorer: fine-tune it first "
                        "(kgfuse train with init_from, or load_for_finetuning) and predict with that model")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_text_pretrained(cls, name_or_path: str | os.PathLike | None = None, **kwargs: Any) -> "KGFusedForPreTraining":
        """As :meth:`KGFusedModel.from_text_pretrained`; the MLM head is loaded
        from the checkpoint when it has one (see :meth:`load_mlm_head`)."""
        model = super().from_text_pretrained(name_or_path, **kwargs)
        from ..encoders.text import resolve_text_encoder

        path = Path(resolve_text_encoder(name_or_path))
        if path.is_dir():
            model.load_mlm_head(path)
        return model

    def load_mlm_head(self, folder: str | os.PathLike) -> list[str]:
        """Copy a pretrained MLM head (``cls.predictions.*`` of BERT checkpoints, ``lm_head.*``
        of RoBERTa ones, ``predictions.*`` of ALBERT ones) from the ``*.safetensors`` files of ``folder`` into ``mlm_head``.

        Returns the names of the parameters loaded (empty: the head stays fresh).
        """
        from safetensors import safe_open

        own = dict(self.mlm_head.named_parameters())
        loaded: list[str] = []
        for f in sorted(Path(folder).glob("*.safetensors")):
            with safe_open(str(f), "pt") as st:
                for key in st.keys():
                    for src, dst in _MLM_HEAD_KEYS:
                        if key.startswith(src) and (src.endswith(".") or key == src):
                            name = dst + key[len(src):] if src.endswith(".") else dst
                            p = own.get(name)
                            t = st.get_tensor(key)
                            if p is not None and tuple(p.shape) == tuple(t.shape):
                                with torch.no_grad():
                                    p.copy_(t)
                                loaded.append(name)
        if loaded:
            logger.info("kgfuse: MLM head loaded from %s (%s)", folder, ", ".join(sorted(set(loaded))))
        else:
            logger.info("kgfuse: %s has no MLM head; a fresh one is trained", folder)
        return sorted(set(loaded))

    # ------------------------------------------------------------------ forward
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
        mlm_labels: Tensor | None = None,
        dea_token: Tensor | None = None,
        dea_candidates: Tensor | None = None,
        dea_candidate_batch: Tensor | None = None,
        dea_target: Tensor | None = None,
        mlm_weight: float = 1.0,
        dea_weight: float = 1.0,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> KGFusedPreTrainingOutput | tuple:
        """MLM and dEA losses; see the class docstring."""
        if input_ids is None:
            raise ValueError("input_ids is required")
        if input_ids.dim() == 3:
            if input_ids.shape[1] != 1:
                raise ValueError(f"pre-training takes single sequences: input_ids [S, L] or [S, 1, L], got {tuple(input_ids.shape)}")
            sq = lambda t: None if t is None else t.reshape(t.shape[0], -1)  # noqa: E731
            input_ids, attention_mask, token_type_ids, entity_index = map(sq, (input_ids, attention_mask, token_type_ids, entity_index))
            mlm_labels = sq(mlm_labels)
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [S, L], got shape {tuple(input_ids.shape)}")
        # The graph only matters through the ERNIE layers here (no scorer takes a graph vector).
        hidden = self.encode(input_ids, attention_mask, token_type_ids, entity_index, node_concept_ids, node_type,
                             node_batch, edge_index, edge_type, paths, path_rels, path_len, node_score,
                             use_graph=self.num_fused > 0, pool=False).last_hidden_state
        S, L, H = hidden.shape
        loss = mlm_loss = dea_loss = mlm_logits = dea_scores = None
        if mlm_labels is not None:
            sel = mlm_labels.reshape(-1) != -100
            mlm_logits = self.mlm_head(hidden.reshape(-1, H)[sel], self.text_encoder.get_input_embeddings().weight)
            if mlm_logits.shape[0]:
                mlm_loss = F.cross_entropy(mlm_logits.float(), mlm_labels.reshape(-1)[sel])
            else:
                mlm_loss = hidden.sum() * 0.0
        if dea_token is not None:
            if self.dea_head is None:
                raise ValueError("dEA needs fusion layers (use_graph=True, use_fusion=True, num_fusion_layers > 0 and a "
                                 "BERT-family encoder); set the dEA weight to 0 for MLM-only pre-training")
            if dea_candidates is None or dea_candidate_batch is None or dea_target is None:
                raise ValueError("dea_token needs dea_candidates, dea_candidate_batch and dea_target")
            if dea_token.numel():
                cand = self.node_embeddings(dea_candidates)
                scores = self.dea_head(hidden.reshape(-1, H)[dea_token], cand).float()
                same = dea_candidate_batch.unsqueeze(0) == (dea_token // L).unsqueeze(1)
                dea_scores = scores.masked_fill(~same, float("-inf"))
                dea_loss = F.cross_entropy(dea_scores, dea_target)
            else:
                dea_scores = hidden.new_zeros(0, int(dea_candidates.shape[0]))
                dea_loss = hidden.sum() * 0.0
        if mlm_loss is not None or dea_loss is not None:
            loss = hidden.new_zeros((), dtype=torch.float32)
            if mlm_loss is not None:
                loss = loss + mlm_weight * mlm_loss
            if dea_loss is not None:
                loss = loss + dea_weight * dea_loss
        out = KGFusedPreTrainingOutput(loss=loss, mlm_loss=mlm_loss, dea_loss=dea_loss, mlm_logits=mlm_logits,
                                       dea_scores=dea_scores, last_hidden_state=hidden)
        return out if return_dict is not False else out.to_tuple()


AutoModelForPreTraining.register(KGFusedConfig, KGFusedForPreTraining, exist_ok=True)


# --------------------------------------------------------------------------------------
# fine-tuning from a pre-training checkpoint


def load_for_finetuning(folder: str | os.PathLike, graph: Any = None, **config_overrides: Any) -> KGFusedForMultipleChoice:
    """A :class:`KGFusedForMultipleChoice` initialised from a pre-training (or any kgfuse)
    checkpoint, for a fine-tuning graph that may differ from the pre-training graph:
    ``KGFusedForMultipleChoice.from_pretrained_on_graph(folder, graph, **config_overrides)``.

    - Same graph (``graph`` is None, or its hash equals the checkpoint's ``graph_hash``):
      ``KGFusedForMultipleChoice.from_pretrained`` — every shared weight is kept (text
      encoder, node embeddings, graph encoder, fusion layers); the scorer starts fresh.
    - Another graph: concept and relation ids mean other things, so the node-embedding
      table and the graph encoder start fresh (sized for ``graph``); the text encoder, the
      entity projection and the fusion layers (:data:`GRAPH_INDEPENDENT_PREFIXES`) are
      copied. A log line says which.

    Args:
        folder: a saved model folder (``kgfuse pretrain`` writes ``<output>/model``).
        graph: the fine-tuning :class:`~kgfuse.kg.KnowledgeGraph`.
        **config_overrides: :class:`KGFusedConfig` fields to change (e.g.
            ``classifier_dropout``); graph-shaped fields are only allowed with a new graph.
    """
    return KGFusedForMultipleChoice.from_pretrained_on_graph(folder, graph, **config_overrides)
