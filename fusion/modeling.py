"""The knowledge-graph-fused multiple-choice model.

:class:`KGFusedForMultipleChoice` scores each (question, choice) statement with

1. a BERT-family text encoder whose lower ``L - M`` layers run unchanged;
2. a graph encoder (:mod:`kgfuse.encoders`) over the statement's retrieved subgraph, with
   node features from an embedding table (KG embeddings, concept-name embeddings or
   plain learned vectors) and the ``[CLS]`` state of the lower layers as context;
3. ``M`` ERNIE knowledgeable-encoder layers (:mod:`kgfuse.fusion.layers`) that replace the
   top ``M`` text layers, reusing their weights, and fuse each mention's first sub-token
   with the GNN state of its concept;
4. a linear scorer over ``[pooled text ; graph vector ; mean fused entity state]``.

:meth:`KGFusedForMultipleChoice.encode` is steps 1-3 (shared with
:class:`~kgfuse.fusion.pretraining.KGFusedForPreTraining`); ``forward`` adds step 4.
:meth:`KGFusedForMultipleChoice.predict` answers raw text with the graph and linker recorded in
the folder the model was loaded from. Encoder families: :mod:`kgfuse.fusion.backbone` (ALBERT's
shared layer is copied for the fused positions: ``text_layer_copies``).

Importing this module registers ``"kgfuse"`` with ``AutoConfig`` and
``AutoModelForMultipleChoice``.

Saving and loading (:class:`KGFusedPreTrainedModel`): ``save_pretrained`` also writes
``kgfuse_manifest.json`` (size and content hash of ``config.json`` and the weight files,
:mod:`kgfuse.integrity`), and ``from_pretrained`` checks a folder against it before reading,
then refuses weights that do not cover the model (a missing or unknown tensor raises
:class:`ModelLoadError` naming them) unless ``allow_partial=True``.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForMultipleChoice, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MultipleChoiceModelOutput
from transformers.utils import ModelOutput

from ..encoders.base import GraphInputs, mean_pool
from ..encoders.registry import build_graph_encoder
from ..integrity import MODEL_MANIFEST, verify_model_manifest, write_model_manifest
from . import backbone
from .layers import KnowledgeableLayer

__all__ = ["KGFusedConfig", "KGFusedPreTrainedModel", "KGFusedForMultipleChoice", "FusedEncoderOutput", "ConceptTable",
           "ModelLoadError"]

logger = logging.getLogger(__name__)

NODE_FEATURE_KINDS = ("learned", "kge", "name")


def _text_config(text_config: Any) -> PretrainedConfig:
    from transformers import CONFIG_MAPPING

    if text_config is None:
        return CONFIG_MAPPING["bert"]()
    if isinstance(text_config, PretrainedConfig):
        return text_config
    if isinstance(text_config, dict):
        d = dict(text_config)
        mt = d.pop("model_type", None)
        if mt is None:
            raise ValueError("text_config dict has no 'model_type'")
        return CONFIG_MAPPING[mt](**d)
    raise TypeError(f"text_config must be a dict, a PretrainedConfig or None, not {type(text_config).__name__}")


class KGFusedConfig(PretrainedConfig):
    """Configuration of :class:`KGFusedForMultipleChoice` (saved with the weights).

    Args:
        text_config: the text encoder's config (a ``PretrainedConfig`` or its dict).
        text_encoder_name: where the text encoder came from (informational).
        graph_encoder: registered graph-encoder name (``"rgcn"``, ``"qagnn"``, ``"kagnet"``).
        graph_encoder_kwargs: extra constructor arguments of the graph encoder
            (e.g. ``{"num_layers": 2, "num_bases": 8}``).
        num_concepts: rows of the node-embedding table (the graph's concept count).
        num_relations: relation ids in ``edge_type`` (the graph's relation count).
        node_feature_kind: where node features came from: ``"learned"`` (random init),
            ``"kge"`` (TransE/DistMult/RotatE vectors) or ``"name"`` (concept-name vectors).
        node_dim: width of node features.
        graph_hidden_dim: width of GNN states and of the graph vector.
        num_fusion_layers: ``M``, top text layers replaced by ERNIE layers (0 = late fusion).
        use_graph: ``False`` gives the LM-only baseline (no graph input used).
        use_fusion: ``False`` disables the ERNIE layers (graph late fusion only).
        use_gnn: ``False`` gives the static-KG-embedding ablation: node states are a linear
            map of the node features, no message passing; graph vector = mean pooling.
        freeze_node_embeddings: keep the node-embedding table fixed during training.
        node_vocab_size: 0 (default): one node-table row per concept of the graph. ``V > 0``: a
            :class:`ConceptTable` with rows for ``V`` concepts only (plus one shared row for
            every other concept); see :meth:`KGFusedForMultipleChoice.restrict_node_table`.
        fusion_zero_init: zero-initialise the entity-to-token fusion matrix, so that the
            fused model starts exactly as the pretrained LM.
        classifier_dropout: dropout before the scorer.
        graph_hash: hash of the :class:`~kgfuse.kg.KnowledgeGraph` whose concept ids the
            node-embedding table follows (checked by users of the model, informational here).
    """

    model_type = "kgfuse"
    sub_configs = {"text_config": AutoConfig}

    def __init__(
        self,
        text_config: Any = None,
        text_encoder_name: str | None = None,
        graph_encoder: str = "rgcn",
        graph_encoder_kwargs: dict | None = None,
        num_concepts: int = 1,
        num_relations: int = 1,
        node_feature_kind: str = "learned",
        node_dim: int = 100,
        graph_hidden_dim: int = 128,
        num_fusion_layers: int = 2,
        use_graph: bool = True,
        use_fusion: bool = True,
        use_gnn: bool = True,
        freeze_node_embeddings: bool = False,
        node_vocab_size: int = 0,
        fusion_zero_init: bool = True,
        classifier_dropout: float = 0.1,
        graph_hash: str | None = None,
        **kwargs: Any,
    ) -> None:
        if node_feature_kind not in NODE_FEATURE_KINDS:
            raise ValueError(f"node_feature_kind must be one of {NODE_FEATURE_KINDS}, not {node_feature_kind!r}")
        self.text_config = _text_config(text_config)
        self.text_encoder_name = text_encoder_name
        self.graph_encoder = graph_encoder
        self.graph_encoder_kwargs = dict(graph_encoder_kwargs or {})
        self.num_concepts = int(num_concepts)
        self.num_relations = int(num_relations)
        self.node_feature_kind = node_feature_kind
        self.node_dim = int(node_dim)
        self.graph_hidden_dim = int(graph_hidden_dim)
        self.num_fusion_layers = int(num_fusion_layers)
        self.use_graph = bool(use_graph)
        self.use_fusion = bool(use_fusion)
        self.use_gnn = bool(use_gnn)
        self.freeze_node_embeddings = bool(freeze_node_embeddings)
        self.node_vocab_size = int(node_vocab_size)
        self.fusion_zero_init = bool(fusion_zero_init)
        self.classifier_dropout = float(classifier_dropout)
        self.graph_hash = graph_hash
        super().__init__(**kwargs)
        n_layers = getattr(self.text_config, "num_hidden_layers", None)
        if self.num_fusion_layers < 0 or (n_layers is not None and self.num_fusion_layers > n_layers):
            raise ValueError(f"num_fusion_layers={self.num_fusion_layers} outside [0, {n_layers}] (text encoder layers)")

    @property
    def fused_layers(self) -> int:
        """ERNIE layers actually used (0 when the graph or fusion is switched off)."""
        return self.num_fusion_layers if (self.use_graph and self.use_fusion) else 0

    @property
    def initializer_range(self) -> float:
        return getattr(self.text_config, "initializer_range", 0.02)


class ModelLoadError(RuntimeError):
    """A saved model folder is damaged (a file differs from its manifest), or its weights do
    not cover the model (missing or unknown tensors)."""


class KGFusedPreTrainedModel(PreTrainedModel):
    """Weight initialisation, saving and verified loading for kgfuse models.

    ``save_pretrained`` writes :data:`~kgfuse.integrity.MODEL_MANIFEST` after the
    transformers files. ``from_pretrained`` takes the transformers arguments plus:

    Args:
        verify: check the folder's files against its manifest before reading them (a
            folder without one, e.g. saved by another library, is read unchecked).
        allow_partial: accept weights that miss some of the model's tensors (they are
            initialised afresh, buffers zeroed) or hold unknown ones; logged as a warning.
            Without it such weights raise :class:`ModelLoadError` naming the tensors.

    A folder saved by another kgfuse class loads across heads: the head modules one class
    has and the other lacks (the multiple-choice ``classifier``, the pre-training
    ``mlm_head`` / ``dea_head``) start fresh or are dropped, as ``config.architectures`` says
    the folder was saved by the other class; every other tensor must be there.

    Raises (``from_pretrained``):
        ModelLoadError: a file differs from the manifest (named), or tensors are missing
            or unexpected (named).
    """

    config_class = KGFusedConfig
    base_model_prefix = "kgfuse"
    main_input_name = "input_ids"
    _supports_sdpa = True
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        from transformers import initialization as init

        super()._init_weights(module)
        if getattr(module, "_kgfuse_zero_init", False):
            init.zeros_(module.weight)

    # ------------------------------------------------------------------ saving / loading
    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        """``PreTrainedModel.save_pretrained``, then the manifest of the files it wrote."""
        folder = Path(save_directory)
        main = args[0] if args else kwargs.get("is_main_process", True)
        if main:
            (folder / MODEL_MANIFEST).unlink(missing_ok=True)  # never leave a stale one
        out = super().save_pretrained(save_directory, *args, **kwargs)
        if main and (folder / "config.json").is_file() and not kwargs.get("distributed_checkpoint", False):
            write_model_manifest(folder)
        return out

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args: Any,
                        verify: bool = True, allow_partial: bool = False, **kwargs: Any):
        """``PreTrainedModel.from_pretrained`` with the checks of the class docstring
        (``verify``, ``allow_partial``); ``output_loading_info=True`` still returns the
        transformers report."""
        want_info = kwargs.pop("output_loading_info", False)
        folder = None
        if pretrained_model_name_or_path is not None and Path(pretrained_model_name_or_path).is_dir():
            folder = Path(pretrained_model_name_or_path) / (kwargs.get("subfolder") or "")
        if folder is not None and verify:
            verify_model_manifest(folder, error=ModelLoadError,
                                  hint="the saved model is damaged: save it again or copy it anew "
                                       "(from_pretrained(..., verify=False) reads it unchecked)")
        model, info = super().from_pretrained(pretrained_model_name_or_path, *model_args, output_loading_info=True,
                                              **kwargs)
        file_keys = _saved_keys(folder) if folder is not None and kwargs.get("state_dict") is None else None
        missing, unexpected = _uncovered(model, info, file_keys)
        if missing or unexpected:
            where = folder if folder is not None else pretrained_model_name_or_path
            msg = (f"{where}: the saved weights do not match {cls.__name__}: "
                   f"{_names('missing', missing)}{'; ' if missing and unexpected else ''}{_names('unexpected', unexpected)}")
            if not allow_partial:
                raise ModelLoadError(msg + ". A damaged or foreign save: load another copy; pass allow_partial=True "
                                           "to load it anyway (missing tensors start fresh)")
            logger.warning("%s; loaded anyway (allow_partial=True): missing tensors start fresh, missing buffers "
                           "are zero", msg)
            _zero_missing_buffers(model, missing)
        return (model, info) if want_info else model


def _names(what: str, keys: set[str], limit: int = 8) -> str:
    if not keys:
        return ""
    ks = sorted(keys)
    more = f" and {len(ks) - limit} more" if len(ks) > limit else ""
    return f"{len(ks)} {what} tensor{'s' if len(ks) > 1 else ''} ({', '.join(ks[:limit])}{more})"


def _saved_keys(folder: Path) -> set[str] | None:
    """Tensor names of the safetensors weights in ``folder`` (headers only), or ``None``."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    try:
        if index.is_file():
            return set(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
        if (folder / "model.safetensors").is_file():
            with safe_open(str(folder / "model.safetensors"), "pt") as f:
                return set(f.keys())
    except Exception:  # noqa: BLE001 - transformers read them already; this check is extra
        return None
    return None


def _uncovered(model: PreTrainedModel, info: dict[str, Any], file_keys: set[str] | None) -> tuple[set[str], set[str]]:
    """The missing and unexpected tensor names of a load that are not explained by a head swap."""
    missing = set(info.get("missing_keys") or ())
    unexpected = set(info.get("unexpected_keys") or ())
    own = set(model.state_dict())
    if file_keys is not None:
        # transformers hides missing keys matching _keys_to_ignore_on_load_missing (the
        # pre-training heads); they are missing all the same when the file lacks them
        tied = set(getattr(model, "all_tied_weights_keys", None) or ())
        patterns = [re.compile(p) for p in (model._keys_to_ignore_on_load_missing or ())]
        missing |= {k for k in own - file_keys - tied if any(p.search(k) for p in patterns)}
    saved_by = list(getattr(model.config, "architectures", None) or [])
    if saved_by and type(model).__name__ not in saved_by:
        # saved by another kgfuse class: whole head modules the file lacks, or the model lacks, are expected
        top = (lambda k: k.split(".", 1)[0])
        in_file = {top(k) for k in file_keys} if file_keys is not None else {top(k) for k in own - missing}
        in_model = {top(k) for k in own}
        missing = {k for k in missing if top(k) in in_file}
        unexpected = {k for k in unexpected if top(k) in in_model}
    return missing, unexpected


def _zero_missing_buffers(model: nn.Module, missing: set[str]) -> None:
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for k in missing:
            if k in buffers:
                buffers[k].zero_()


class ConceptTable(nn.Embedding):
    """A node-embedding table with rows for a vocabulary of concepts only.

    A graph's full table (one row per concept) is mostly rows no training example reaches:
    147,306 WordNet lemmas or ~800,000 ConceptNet concepts, each with its gradient and two
    AdamW moments, against the few tens of thousands a training set links. This table keeps
    ``vocab_size`` rows for the vocabulary plus row 0, shared by every other concept (zero
    at construction). ``rows`` (a buffer, saved with the model) maps a concept id to its row,
    so the model is still indexed by the graph's concept ids.

    Args:
        num_concepts: concepts of the graph (length of ``rows``).
        vocab_size: concepts with their own row.
        dim: row width.
    """

    def __init__(self, num_concepts: int, vocab_size: int, dim: int) -> None:
        super().__init__(int(vocab_size) + 1, dim)
        self.register_buffer("rows", torch.zeros(int(num_concepts), dtype=torch.long))

    def forward(self, concept_ids: Tensor) -> Tensor:
        return super().forward(self.rows[concept_ids])


class _StaticGraphEncoder(nn.Module):
    """Ablation "static KG embeddings": no message passing. States are a linear map of the
    node features plus a node-type embedding; the graph vector is their mean."""

    def __init__(self, in_dim: int, hidden_dim: int, num_node_types: int = 3) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden_dim)
        self.type_emb = nn.Embedding(num_node_types, hidden_dim)

    def forward(self, graph, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.proj(x) + self.type_emb(graph.node_type)
        return h, mean_pool(h, graph.batch, int(graph.num_graphs))


@dataclass
class FusedEncoderOutput(ModelOutput):
    """Output of :meth:`KGFusedForMultipleChoice.encode` (``S`` sequences, ``K`` entity slots).

    Attributes:
        last_hidden_state: ``[S, L, H]`` final token states (after the ERNIE layers, if any).
        pooled_text: ``[S, H]`` text vector (:func:`kgfuse.fusion.backbone.pooled_text`).
        graph_vector: ``[S, d_g]`` graph vector (``None`` without the graph).
        entity_states: ``[S, K, H]`` fused entity states (``None`` without ERNIE layers).
        entity_mask: ``[S, K]`` real (not padding) entity slots.
        node_states: ``[N, d_g]`` graph-encoder node states.
    """

    last_hidden_state: Tensor | None = None
    pooled_text: Tensor | None = None
    graph_vector: Tensor | None = None
    entity_states: Tensor | None = None
    entity_mask: Tensor | None = None
    node_states: Tensor | None = None


def entity_sequences(entity_index: Tensor, node_batch: Tensor, num_statements: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Build each statement's entity sequence from the token alignment.

    The entities of statement ``s`` are the distinct nodes that tokens of ``s`` point to,
    in node order.

    Args:
        entity_index: ``[S, L]`` node index (batch-global) per token, ``-1`` for none.
        node_batch: ``[N]`` statement of each node.
        num_statements: ``S``.

    Returns:
        ``(nodes [A], dense_pos [A], token_slot [S, L], entity_mask [S, K])``: the linked
        nodes, their flat position ``s * K + slot`` in the padded ``[S, K]`` sequence, each
        token's slot (``-1`` for none) and the padding mask.
    """
    S = num_statements
    N = node_batch.shape[0]
    valid = entity_index >= 0
    if valid.any() and int(entity_index.max()) >= N:
        raise ValueError(f"entity_index points to node {int(entity_index.max())} but the batch has {N} nodes")
    nodes = torch.unique(entity_index[valid])  # sorted
    stmt = node_batch[nodes]
    tok_stmt = torch.arange(S, device=entity_index.device).unsqueeze(1).expand_as(entity_index)
    if valid.any() and not torch.equal(node_batch[entity_index[valid]], tok_stmt[valid]):
        raise ValueError("entity_index points a token to a node of another statement (node_batch disagrees)")
    order = torch.argsort(stmt * max(N, 1) + nodes)
    nodes, stmt = nodes[order], stmt[order]
    counts = torch.bincount(stmt, minlength=S)
    K = int(counts.max()) if counts.numel() else 0
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(nodes.shape[0], device=nodes.device) - starts[stmt]
    node_slot = torch.full((N + 1,), -1, dtype=torch.long, device=nodes.device)  # last entry: "no entity"
    node_slot[nodes] = slot
    token_slot = node_slot[torch.where(valid, entity_index, torch.full_like(entity_index, N))]
    entity_mask = torch.arange(K, device=nodes.device).unsqueeze(0) < counts.unsqueeze(1)
    return nodes, stmt * K + slot, token_slot, entity_mask


class KGFusedForMultipleChoice(KGFusedPreTrainedModel):
    """A BERT-family encoder fused with a knowledge graph, scoring multiple-choice answers.

    See the module docstring and ``docs/model.md`` for the data flow and the math.
    Build one from a pretrained text encoder with :meth:`from_text_pretrained`, from any
    text config with :meth:`from_text_config`, or load a saved one with ``from_pretrained``.

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

    def __init__(self, config: KGFusedConfig) -> None:
        super().__init__(config)
        self.text_encoder = backbone.build_text_model(config.text_config)
        tc = self.text_encoder.config
        H = tc.hidden_size
        self.num_fused = config.fused_layers
        if self.num_fused and not backbone.supports_layer_fusion(self.text_encoder):
            logger.warning(
                "kgfuse: %s has no layers ERNIE fusion can wrap (BERT-style, DistilBERT, ALBERT with one layer per "
                "group); ERNIE fusion is off and the graph is joined by late fusion",
                type(self.text_encoder).__name__,
            )
            self.num_fused = 0
        feat = H
        if config.use_graph:
            if config.node_vocab_size > 0:
                self.node_embeddings = ConceptTable(config.num_concepts, config.node_vocab_size, config.node_dim)
            else:
                self.node_embeddings = nn.Embedding(config.num_concepts, config.node_dim)
            if config.freeze_node_embeddings:
                self.node_embeddings.weight.requires_grad_(False)
            if config.use_gnn:
                self.graph_encoder = build_graph_encoder(
                    config.graph_encoder,
                    in_dim=config.node_dim,
                    hidden_dim=config.graph_hidden_dim,
                    num_relations=config.num_relations,
                    context_dim=H,
                    **config.graph_encoder_kwargs,
                )
            else:
                self.graph_encoder = _StaticGraphEncoder(config.node_dim, config.graph_hidden_dim)
            feat += config.graph_hidden_dim
            if self.num_fused:
                first_ffn = backbone.feed_forward_parts(backbone.encoder_layers(self.text_encoder)[-1])[0]
                self.entity_proj = nn.Linear(config.graph_hidden_dim, H)
                self.fusion_layers = nn.ModuleList(
                    KnowledgeableLayer(
                        H,
                        first_ffn.out_features,
                        tc.num_attention_heads,
                        dropout=getattr(tc, "hidden_dropout_prob", getattr(tc, "dropout", 0.1)),
                        layer_norm_eps=getattr(tc, "layer_norm_eps", 1e-12),
                        zero_init=config.fusion_zero_init,
                    )
                    for _ in range(self.num_fused)
                )
                if backbone.shares_layers(self.text_encoder):
                    # ALBERT: the fused positions get their own copies of the shared layer, so
                    # that fine-tuning them leaves the layer of the lower positions alone.
                    top = backbone.encoder_layers(self.text_encoder)[-self.num_fused:]
                    self.text_layer_copies = nn.ModuleList(copy.deepcopy(m) for m in top)
                feat += H
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(feat, 1)
        self._takes_token_types = "token_type_ids" in inspect.signature(self.text_encoder.forward).parameters
        self.post_init()
        self.sync_text_layer_copies()

    def restrict_node_table(self, concept_ids: Any) -> int:
        """Replace the node-embedding table by a :class:`ConceptTable` for ``concept_ids``
        (e.g. every concept of the training subgraphs), before training starts.

        Rows are copied from the current table: a full table gives every listed concept its
        own row's values (random, KGE or name features alike, so training follows the same
        path for those concepts); a :class:`ConceptTable` (a pre-trained model) gives its rows
        to the concepts it has, and new concepts start fresh (normal, std
        ``initializer_range``). Row 0 (every other concept) is zero, or kept from a
        :class:`ConceptTable`. ``freeze_node_embeddings`` carries over. Returns the
        vocabulary size; ``config.node_vocab_size`` records it, so ``save_pretrained`` /
        ``from_pretrained`` rebuild the same table.
        """
        if not self.config.use_graph:
            raise ValueError("this model has no graph part (use_graph=False): no node table to restrict")
        ids = torch.as_tensor(np.unique(np.asarray(concept_ids, dtype=np.int64).reshape(-1)))
        n = self.config.num_concepts
        if ids.numel() == 0:
            raise ValueError("restrict_node_table: no concepts given")
        if int(ids[0]) < 0 or int(ids[-1]) >= n:
            raise ValueError(f"restrict_node_table: concept ids must be in 0..{n - 1}, got {int(ids[0])}..{int(ids[-1])}")
        old = self.node_embeddings
        w_old = old.weight.detach()
        new = ConceptTable(n, ids.numel(), self.config.node_dim).to(device=w_old.device, dtype=w_old.dtype)
        with torch.no_grad():
            new.rows.zero_()
            new.rows[ids.to(new.rows.device)] = torch.arange(1, ids.numel() + 1, device=new.rows.device)
            if isinstance(old, ConceptTable):
                src = old.rows[ids.to(old.rows.device)]
                known = src > 0
                new.weight[0].copy_(w_old[0])
                std = float(getattr(self.config, "initializer_range", 0.02))
                new.weight[1:].normal_(0.0, std)
                new.weight[1:][known] = w_old[src[known]]
            else:
                new.weight[0].zero_()
                new.weight[1:].copy_(w_old[ids.to(w_old.device)])
        new.weight.requires_grad_(old.weight.requires_grad)
        self.node_embeddings = new
        self.config.node_vocab_size = int(ids.numel())
        return int(ids.numel())

    def sync_text_layer_copies(self) -> None:
        """Set the fused positions' own layer copies (ALBERT) to the text encoder's shared
        layer weights: done at construction and after loading pretrained text weights."""
        copies = getattr(self, "text_layer_copies", None)
        if copies is None:
            return
        top = backbone.encoder_layers(self.text_encoder)[-self.num_fused:]
        with torch.no_grad():
            for dst, src in zip(copies, top):
                for a, b in zip(dst.parameters(), src.parameters()):
                    if a.device.type != "meta" and b.device.type != "meta":
                        a.copy_(b)

    def fused_text_layers(self) -> list[nn.Module]:
        """The text layers the ERNIE layers wrap, bottom to top (the top ``M`` layers of the
        text encoder, or their own copies for a weight-sharing encoder)."""
        copies = getattr(self, "text_layer_copies", None)
        if copies is not None:
            return list(copies)
        layers = backbone.encoder_layers(self.text_encoder)
        return layers[len(layers) - self.num_fused:]

    def _text_forward(self, ids: Tensor, mask: Tensor | None, tt: Tensor | None):
        kw = {"token_type_ids": tt} if (tt is not None and self._takes_token_types) else {}
        return self.text_encoder(input_ids=ids, attention_mask=mask, **kw)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_text_config(cls, text_config: Any, **config_kwargs: Any) -> "KGFusedForMultipleChoice":
        """A randomly initialised model around a text encoder built from ``text_config``."""
        return cls(KGFusedConfig(text_config=text_config, **config_kwargs))

    @classmethod
    def from_text_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        graph=None,
        node_features: Any = None,
        name_embedding_cache: str | os.PathLike | None = None,
        local_files_only: bool = True,
        **config_kwargs: Any,
    ) -> "KGFusedForMultipleChoice":
        """Build a fused model around a pretrained Hugging Face text encoder.

        Args:
            name_or_path: a model name or folder (default: the shipped all-MiniLM-L6-v2,
                loaded offline; see :func:`kgfuse.encoders.text.resolve_text_encoder`).
            graph: the :class:`~kgfuse.kg.KnowledgeGraph`; sets ``num_concepts``,
                ``num_relations`` and ``graph_hash``.
            node_features: ``None``/``"learned"`` (random), ``"name"`` (concept-name
                embeddings from this text encoder, cached in ``name_embedding_cache``),
                a :class:`~kgfuse.kg.embeddings.KGEmbeddingResult` or a ``[num_concepts, d]``
                tensor/array (copied into the node-embedding table).
            local_files_only: never download (default).
            **config_kwargs: any :class:`KGFusedConfig` field.
        """
        from ..encoders.text import resolve_text_encoder

        path = resolve_text_encoder(name_or_path)
        text_cls = backbone.text_model_class(AutoConfig.from_pretrained(path, local_files_only=local_files_only))
        text = text_cls.from_pretrained(path, local_files_only=local_files_only)
        kw = dict(config_kwargs)
        if graph is not None:
            kw.setdefault("num_concepts", graph.num_concepts)
            kw.setdefault("num_relations", graph.num_relations)
            kw.setdefault("graph_hash", graph.hash)
        table = None
        if isinstance(node_features, str) and node_features == "name":
            if graph is None:
                raise ValueError("node_features='name' needs the graph")
            from ..encoders.names import concept_name_embeddings

            table = concept_name_embeddings(graph, encoder=name_or_path, cache_dir=name_embedding_cache,
                                            local_files_only=local_files_only)
            kw.setdefault("node_feature_kind", "name")
        elif node_features is not None and not (isinstance(node_features, str) and node_features == "learned"):
            if hasattr(node_features, "entity_embeddings"):
                if graph is not None and getattr(node_features, "graph_hash", graph.hash) != graph.hash:
                    raise ValueError("the KG embeddings were trained on another graph (hash mismatch)")
                table = node_features.entity_embeddings()
                kw.setdefault("node_feature_kind", "kge")
            else:
                table = torch.as_tensor(node_features, dtype=torch.float32)
                kw.setdefault("node_feature_kind", "kge")
        if table is not None:
            kw.setdefault("node_dim", int(table.shape[1]))
            kw.setdefault("num_concepts", int(table.shape[0]))
        kw.setdefault("text_encoder_name", str(name_or_path) if name_or_path is not None else "sentence-transformers/all-MiniLM-L6-v2")
        config = KGFusedConfig(text_config=text.config.to_dict(), **kw)
        model = cls(config)
        missing, unexpected = model.text_encoder.load_state_dict(text.state_dict(), strict=False)
        if unexpected or [k for k in missing if "position_ids" not in k]:
            raise ValueError(f"text encoder weights do not fit: missing={missing}, unexpected={unexpected}")
        model.sync_text_layer_copies()
        if table is not None and config.use_graph:
            if tuple(table.shape) != tuple(model.node_embeddings.weight.shape):
                raise ValueError(
                    f"node features have shape {tuple(table.shape)}, expected "
                    f"{tuple(model.node_embeddings.weight.shape)} (num_concepts, node_dim)"
                )
            with torch.no_grad():
                model.node_embeddings.weight.copy_(table)
        return model

    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Parameters by part, for per-part learning rates: ``lm`` (the text encoder and
        its fused layer copies, if any), ``gnn`` (graph encoder + node embeddings),
        ``fusion`` (ERNIE layers, entity projection, scorer)."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {"lm": [], "gnn": [], "fusion": []}
        for n, p in self.named_parameters():
            if n.startswith(("text_encoder.", "text_layer_copies.")):
                groups["lm"].append((n, p))
            elif n.startswith(("graph_encoder.", "node_embeddings.")):
                groups["gnn"].append((n, p))
            else:
                groups["fusion"].append((n, p))
        return groups

    # ------------------------------------------------------------------ forward
    def encode(
        self,
        input_ids: Tensor,
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
        *,
        use_graph: bool | None = None,
        pool: bool = True,
    ) -> FusedEncoderOutput:
        """Run the fused encoder over ``S`` flat sequences (no scorer).

        Three cases, by configuration:

        - no graph (``use_graph=False``): the text encoder as it is;
        - late fusion (no ERNIE layers): the full text encoder, then the graph encoder with
          the pooled text as context;
        - ERNIE fusion: embeddings and the lower ``L - M`` layers, the graph encoder with the
          lower ``[CLS]`` state as context, then the ``M`` knowledgeable layers over tokens
          and the entity sequence of each statement.

        Args:
            input_ids, attention_mask, token_type_ids, entity_index: ``[S, L]``.
            node_concept_ids, node_type, node_batch, edge_index, edge_type, paths,
                path_rels, path_len: the graph batch (``node_batch`` in ``0..S-1``).
            use_graph: ``False`` runs the text encoder only even when the model has a graph
                part (``None``: the configuration's ``use_graph``).
            pool: also compute the pooled text vector.

        Returns:
            :class:`FusedEncoderOutput`.
        """
        if input_ids.dim() != 2:
            raise ValueError(f"encode takes flat sequences: input_ids [S, L], got shape {tuple(input_ids.shape)}")
        ids, mask, tt = input_ids, attention_mask, token_type_ids
        S = ids.shape[0]
        if use_graph is None:
            use_graph = self.config.use_graph
        elif use_graph and not self.config.use_graph:
            raise ValueError("this model has no graph part (use_graph=False in its config)")
        if not use_graph:
            hidden = self._text_forward(ids, mask, tt).last_hidden_state
            pooled = backbone.pooled_text(self.text_encoder, hidden, mask) if pool else None
            return FusedEncoderOutput(last_hidden_state=hidden, pooled_text=pooled)
        if node_concept_ids is None or node_batch is None:
            raise ValueError("the graph part needs node_concept_ids and node_batch (batch with "
                             "kgfuse.tasks.features.MultipleChoiceCollator or kgfuse.tasks.pretrain.PretrainingCollator)")
        device = ids.device
        if node_type is None:
            node_type = torch.full_like(node_concept_ids, 2)
        if edge_index is None:
            edge_index = torch.zeros(2, 0, dtype=torch.long, device=device)
            edge_type = torch.zeros(0, dtype=torch.long, device=device)
        graph = GraphInputs(edge_index, edge_type, node_type, node_batch, S, paths, path_rels, path_len)
        x = self.node_embeddings(node_concept_ids)
        if not self.num_fused:  # late fusion
            hidden = self._text_forward(ids, mask, tt).last_hidden_state
            pooled = backbone.pooled_text(self.text_encoder, hidden, mask)
            node_states, graph_vec = self.graph_encoder(graph, x, pooled)
            return FusedEncoderOutput(last_hidden_state=hidden, pooled_text=pooled, graph_vector=graph_vec,
                                      node_states=node_states)
        hidden, amask = backbone.embed(self.text_encoder, ids, mask, tt)
        layers = backbone.encoder_layers(self.text_encoder)
        n_lower = len(layers) - self.num_fused
        for layer in layers[:n_lower]:
            hidden = layer(hidden, amask)
        node_states, graph_vec = self.graph_encoder(graph, x, hidden[:, 0])
        if entity_index is None:
            entity_index = torch.full_like(ids, -1)
        nodes, pos, token_slot, ent_mask = entity_sequences(entity_index, node_batch, S)
        K, H = ent_mask.shape[1], hidden.shape[-1]
        ents = hidden.new_zeros(S * K, H)
        ents = ents.index_copy(0, pos, self.entity_proj(node_states[nodes]).to(hidden.dtype)).view(S, K, H)
        for layer, fl in zip(self.fused_text_layers(), self.fusion_layers):
            hidden, ents = fl(layer, hidden, amask, ents, ent_mask, token_slot)
        pooled = backbone.pooled_text(self.text_encoder, hidden, mask) if pool else None
        return FusedEncoderOutput(last_hidden_state=hidden, pooled_text=pooled, graph_vector=graph_vec,
                                  entity_states=ents, entity_mask=ent_mask, node_states=node_states)

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
                          node_concept_ids, node_type, node_batch, edge_index, edge_type, paths, path_rels, path_len)
        text_vec = enc.pooled_text
        parts = [text_vec]
        if enc.graph_vector is not None:
            parts.append(enc.graph_vector.to(text_vec.dtype))
        if enc.entity_states is not None:  # mean over each statement's fused entities
            m = enc.entity_mask.unsqueeze(-1).to(enc.entity_states.dtype)
            parts.append((enc.entity_states * m).sum(1) / m.sum(1).clamp(min=1.0))
        logits = self.classifier(self.dropout(torch.cat(parts, dim=-1))).view(B, C)
        loss = F.cross_entropy(logits, labels.view(-1)) if labels is not None else None
        if return_dict is False:
            return (loss, logits) if loss is not None else (logits,)
        return MultipleChoiceModelOutput(loss=loss, logits=logits)


AutoConfig.register("kgfuse", KGFusedConfig, exist_ok=True)
AutoModelForMultipleChoice.register(KGFusedConfig, KGFusedForMultipleChoice, exist_ok=True)
