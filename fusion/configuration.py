"""The configuration of every kgfuse model: :class:`KGFusedConfig` (saved as ``config.json``).

One configuration serves the base model (:class:`~kgfuse.fusion.base.KGFusedModel`) and its
heads (:class:`~kgfuse.fusion.modeling.KGFusedForMultipleChoice`,
:class:`~kgfuse.fusion.pretraining.KGFusedForPreTraining`): a folder saved by one loads into
the others. Importing this module registers ``"kgfuse"`` with ``AutoConfig``.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig

__all__ = ["KGFusedConfig", "NODE_FEATURE_KINDS", "TEXT_POOLINGS", "TEXT_POOLING_CHOICES"]
NODE_FEATURE_KINDS = ("learned", "kge", "name")
TEXT_POOLINGS = ("model", "cls", "mean")
# what a user may ask for: ``"auto"`` is resolved to one of TEXT_POOLINGS when the pretrained
# text encoder is loaded (KGFusedModel.from_text_pretrained), so a saved config never holds it
TEXT_POOLING_CHOICES = (*TEXT_POOLINGS, "auto")


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
    """Configuration of the kgfuse models (saved with the weights).

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
            every other concept); see :meth:`~kgfuse.fusion.base.KGFusedModel.restrict_node_table`.
        fusion_zero_init: zero-initialise the entity-to-token fusion matrix, so that the
            fused model starts exactly as the pretrained LM.
        classifier_dropout: dropout before the scorer.
        text_pooling: how the text vector of the scorer is made from the last text layer:
            ``"model"`` (default) the text model's own pooler over ``[CLS]`` where it has one
            (BERT, RoBERTa, ALBERT), the ``[CLS]`` state for ELECTRA and DistilBERT, the mean
            of the tokens otherwise; ``"cls"`` the ``[CLS]`` (first-token) state;
            ``"mean"`` the mean over the non-padding tokens, the pooling that
            sentence-transformers checkpoints such as all-MiniLM-L6-v2 were trained with.
            ``"auto"`` is accepted by the constructors, not here: ``from_text_pretrained``
            replaces it by the checkpoint's own sentence-transformers pooling
            (:func:`~kgfuse.encoders.text.checkpoint_pooling`), or ``"model"`` when it has none.
        summary_norm: ``True`` puts a LayerNorm on each part of the summary vector (pooled text,
            graph vector, mean fused entity state) before the scorer, so that the parts enter it
            at one scale. Without it their scales differ: in fused all-MiniLM-L6-v2 models trained
            on CommonsenseQA the pooler's text vector has a norm of about 2, the token mean about
            6, the graph vector 10 to 14 and the entity mean 19. The norms start as weight 1,
            bias 0 and draw no random numbers, so the other weights of a seed are the same with
            and without them.
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
        text_pooling: str = "model",
        summary_norm: bool = False,
        graph_hash: str | None = None,
        **kwargs: Any,
    ) -> None:
        if node_feature_kind not in NODE_FEATURE_KINDS:
            raise ValueError(f"node_feature_kind must be one of {NODE_FEATURE_KINDS}, not {node_feature_kind!r}")
        if text_pooling == "auto":
            raise ValueError("text_pooling='auto' is resolved when a pretrained text encoder is loaded "
                             "(KGFusedModel.from_text_pretrained); a KGFusedConfig takes model, cls or mean")
        if text_pooling not in TEXT_POOLINGS:
            raise ValueError(f"text_pooling must be one of {TEXT_POOLING_CHOICES}, not {text_pooling!r}")
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
        self.text_pooling = text_pooling
        self.summary_norm = bool(summary_norm)
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



AutoConfig.register("kgfuse", KGFusedConfig, exist_ok=True)
