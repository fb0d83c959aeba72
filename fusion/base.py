"""The fused encoder every kgfuse model is built on: :class:`KGFusedModel`.

:class:`KGFusedModel` is the knowledge-graph-fused text encoder without a task head, as
``BertModel`` is BERT without one:

1. a BERT-family text encoder whose lower ``L - M`` layers run unchanged;
2. a graph encoder (:mod:`kgfuse.encoders`) over each sequence's subgraph, with node features
   from a concept table (KG embeddings, concept-name embeddings or plain learned vectors)
   and the ``[CLS]`` state of the lower layers as context;
3. ``M`` ERNIE knowledgeable-encoder layers (:mod:`kgfuse.fusion.layers`) that replace the
   top ``M`` text layers, reusing their weights, and fuse each mention's first sub-token
   with the graph state of its concept.

:meth:`KGFusedModel.encode` runs 1-3 and returns a :class:`FusedEncoderOutput` (token
states, pooled text, graph vector, fused entity states); ``forward`` adds the summary vector
``[pooled text ; graph vector ; mean fused entity state]`` (``pooler_output``). The heads
are thin subclasses that add their modules under their own names and keep every name of the
base (so saved folders load across classes):
:class:`~kgfuse.fusion.modeling.KGFusedForMultipleChoice` (``dropout`` + ``classifier``
over the summary vector) and :class:`~kgfuse.fusion.pretraining.KGFusedForPreTraining`
(``mlm_head`` + ``dea_head`` over the token states).

Random initialisation is the same for every class: the modules of the base draw their
weights first, then the summary-vector scorer ``[summary_dim -> 1]`` of the multiple-choice
head draws (a class without that scorer draws and discards the same numbers), so one seed
gives the base, the multiple-choice and the pre-training model the same initial encoder,
node table, graph encoder and fusion layers.

Importing this module registers ``"kgfuse"`` with ``AutoConfig`` and ``AutoModel``.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel
from transformers.utils import ModelOutput

from ..encoders.base import GraphInputs, mean_pool
from ..encoders.registry import build_graph_encoder
from . import backbone
from .configuration import KGFusedConfig
from .layers import KnowledgeableLayer
from .loading import KGFusedPreTrainedModel

__all__ = ["KGFusedModel", "FusedEncoderOutput", "ConceptTable", "entity_sequences"]

logger = logging.getLogger(__name__)


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
    """Output of :meth:`KGFusedModel.encode` and ``KGFusedModel.forward`` (``S`` sequences,
    ``K`` entity slots).

    Attributes:
        last_hidden_state: ``[S, L, H]`` final token states (after the ERNIE layers, if any).
        pooled_text: ``[S, H]`` text vector (:func:`kgfuse.fusion.backbone.pooled_text`).
        graph_vector: ``[S, d_g]`` graph vector (``None`` without the graph).
        entity_states: ``[S, K, H]`` fused entity states (``None`` without ERNIE layers).
        entity_mask: ``[S, K]`` real (not padding) entity slots.
        node_states: ``[N, d_g]`` graph-encoder node states.
        pooler_output: ``[S, summary_dim]`` the summary vector ``[pooled text ; graph vector ;
            mean fused entity state]`` (``KGFusedModel.forward`` only; what the
            multiple-choice scorer reads).
    """

    last_hidden_state: Tensor | None = None
    pooled_text: Tensor | None = None
    graph_vector: Tensor | None = None
    entity_states: Tensor | None = None
    entity_mask: Tensor | None = None
    node_states: Tensor | None = None
    pooler_output: Tensor | None = None


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


class KGFusedModel(KGFusedPreTrainedModel):
    """A BERT-family encoder fused with a knowledge graph, without a task head.

    See the module docstring and ``docs/model.md`` for the data flow and the math. Build one
    from a pretrained text encoder with :meth:`from_text_pretrained`, from any text config
    with :meth:`from_text_config`, or load a saved one (of any kgfuse class) with
    ``from_pretrained`` / ``AutoModel.from_pretrained``.

    Shapes (``S`` sequences, ``L`` tokens, ``N`` nodes, ``E`` edges):
        input_ids, attention_mask, token_type_ids, entity_index: ``[S, L]`` (``[B, C, L]`` is
        flattened to ``S = B * C``); node_concept_ids, node_type, node_batch: ``[N]``
        (``node_batch`` in ``0..S-1``); edge_index: ``[2, E]``; edge_type: ``[E]``; paths
        ``[P, H+1]``, path_rels ``[P, H]``, path_len ``[P]`` (optional, KagNet).

    Attributes:
        summary_dim: width of the summary vector (``pooler_output``): hidden size, plus the
            graph vector's width with a graph, plus the hidden size with ERNIE layers.
        summary_parts: the summary vector's parts in order, ``{"text": H, "graph": G,
            "entities": H}`` (those the model has), name to width.
    """

    # The heads of kgfuse's task models: the base drops them silently when it loads their folders.
    _keys_to_ignore_on_load_unexpected = [r"^classifier\.", r"^mlm_head\.", r"^dea_head\."]

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
        parts = {"text": H}  # the summary vector's parts, in order, with their widths
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
            parts["graph"] = config.graph_hidden_dim
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
                parts["entities"] = H
        self.summary_parts = parts
        self.summary_dim = sum(parts.values())
        if config.summary_norm:  # one LayerNorm per summary part (no random draws: see KGFusedConfig)
            eps = getattr(tc, "layer_norm_eps", 1e-12)
            self.summary_norms = nn.ModuleDict({k: nn.LayerNorm(d, eps=eps) for k, d in parts.items()})
        self._takes_token_types = "token_type_ids" in inspect.signature(self.text_encoder.forward).parameters
        reserved = self._add_scorer()
        self.post_init()
        if reserved is not None:
            self._init_weights(reserved)  # the scorer's initialisation draws (see _add_scorer)
        self.sync_text_layer_copies()

    def _add_scorer(self) -> nn.Module | None:
        """Called after the base modules are built, before the weights are initialised.

        The multiple-choice head adds its scorer here. Every other class draws the random
        numbers of that scorer (its construction now, its initialisation right after the
        base's) and discards them, so that one seed gives every class the same base weights.
        Returns the module whose initialisation draws are to be made after ``post_init``
        (``None`` when the scorer is a real module, initialised by ``post_init``).
        """
        return nn.Linear(self.summary_dim, 1)

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
    def from_text_config(cls, text_config: Any, **config_kwargs: Any) -> "KGFusedModel":
        """A randomly initialised model around a text encoder built from ``text_config``
        (``text_pooling="auto"``: no checkpoint to ask, so ``"model"``)."""
        if config_kwargs.get("text_pooling") == "auto":
            config_kwargs = {**config_kwargs, "text_pooling": "model"}
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
    ) -> "KGFusedModel":
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
            **config_kwargs: any :class:`KGFusedConfig` field; ``text_pooling="auto"`` takes
                the checkpoint's sentence-transformers pooling (``"mean"`` for
                all-MiniLM-L6-v2) and ``"model"`` for a checkpoint without one.
        """
        from ..encoders.text import checkpoint_pooling, own_weight_memory, resolve_text_encoder

        path = resolve_text_encoder(name_or_path)
        text_cls = backbone.text_model_class(AutoConfig.from_pretrained(path, local_files_only=local_files_only))
        text = own_weight_memory(text_cls.from_pretrained(path, local_files_only=local_files_only))
        kw = dict(config_kwargs)
        if kw.get("text_pooling") == "auto":
            kw["text_pooling"] = checkpoint_pooling(path, local_files_only=local_files_only) or "model"
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
        ``fusion`` (ERNIE layers, entity projection and the head's modules)."""
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
        node_score: Tensor | None = None,
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
            node_score: optional ``[N]`` relevance of each node to its statement
                (``SubgraphRetriever(ranking="relevance")``), read by a QA-GNN encoder built
                with ``use_node_score=True``.
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
            pooled = self._pool(hidden, mask) if pool else None
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
        graph = GraphInputs(edge_index, edge_type, node_type, node_batch, S, paths, path_rels, path_len, node_score)
        x = self.node_embeddings(node_concept_ids)
        if not self.num_fused:  # late fusion
            hidden = self._text_forward(ids, mask, tt).last_hidden_state
            pooled = self._pool(hidden, mask)
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
        pooled = self._pool(hidden, mask) if pool else None
        return FusedEncoderOutput(last_hidden_state=hidden, pooled_text=pooled, graph_vector=graph_vec,
                                  entity_states=ents, entity_mask=ent_mask, node_states=node_states)

    def _pool(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        """The text vector of ``hidden`` by the configuration's ``text_pooling``."""
        return backbone.pooled_text(self.text_encoder, hidden, mask, getattr(self.config, "text_pooling", "model"))

    def summary(self, enc: FusedEncoderOutput) -> Tensor:
        """The summary vector ``[pooled text ; graph vector ; mean fused entity state]`` ``[S,
        summary_dim]`` of an :meth:`encode` output (pooled, the default)."""
        text_vec = enc.pooled_text
        parts = {"text": text_vec}
        if enc.graph_vector is not None:
            parts["graph"] = enc.graph_vector.to(text_vec.dtype)
        if enc.entity_states is not None:  # mean over each statement's fused entities
            m = enc.entity_mask.unsqueeze(-1).to(enc.entity_states.dtype)
            parts["entities"] = (enc.entity_states * m).sum(1) / m.sum(1).clamp(min=1.0)
        norms = getattr(self, "summary_norms", None)
        if norms is not None:
            parts = {k: norms[k](v) for k, v in parts.items()}
        return torch.cat(list(parts.values()), dim=-1)

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
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> FusedEncoderOutput | tuple:
        """:meth:`encode` plus the summary vector (``pooler_output``); ``[B, C, L]`` inputs
        are flattened to ``B * C`` sequences."""
        if input_ids is None:
            raise ValueError("input_ids is required")
        if input_ids.dim() == 3:
            S = input_ids.shape[0] * input_ids.shape[1]
            flat = lambda t: None if t is None else t.reshape(S, -1)  # noqa: E731
            input_ids, attention_mask, token_type_ids, entity_index = map(
                flat, (input_ids, attention_mask, token_type_ids, entity_index))
        enc = self.encode(input_ids, attention_mask, token_type_ids, entity_index, node_concept_ids, node_type,
                          node_batch, edge_index, edge_type, paths, path_rels, path_len, node_score)
        enc["pooler_output"] = self.summary(enc)
        return enc if return_dict is not False else enc.to_tuple()


AutoModel.register(KGFusedConfig, KGFusedModel, exist_ok=True)
