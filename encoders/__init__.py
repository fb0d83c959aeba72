"""kgfuse.encoders: graph encoders (PyG modules) and the text-encoder wrapper.

Names are imported lazily, so ``import kgfuse.encoders`` loads neither torch nor
transformers until a name is used. Graph encoders are registered by name
(:func:`register_graph_encoder`) and built with :func:`build_graph_encoder`:

- ``"rgcn"``   relational GCN with basis decomposition (Schlichtkrull et al., 2018)
- ``"qagnn"``  QA-GNN's relation-aware GAT with a context node (Yasunaga et al., 2021)
- ``"kagnet"`` KagNet's GCN-LSTM-HPA path encoder (Lin et al., 2019)

:class:`TextRelevanceScorer` scores concepts against a statement with the text encoder
(QA-GNN's node relevance) for ``SubgraphRetriever(ranking="relevance")``.
"""

from __future__ import annotations

from kgfuse._lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "GraphEncoder": "base",
    "GraphInputs": "base",
    "register_graph_encoder": "registry",
    "build_graph_encoder": "registry",
    "graph_encoder_names": "registry",
    "GRAPH_ENCODERS": "registry",
    "RGCNEncoder": "rgcn",
    "QAGNNEncoder": "qagnn",
    "KagNetEncoder": "kagnet",
    "DEFAULT_TEXT_ENCODER": "text",
    "resolve_text_encoder": "text",
    "load_text_encoder": "text",
    "load_tokenizer": "text",
    "concept_name_embeddings": "names",
    "TextRelevanceScorer": "relevance",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
