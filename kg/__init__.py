"""kgfuse.kg: graph store, loaders, entity linking, retrieval, KG embeddings and knowledge as text.

Names are imported lazily, so ``import kgfuse.kg`` loads neither numpy-heavy code,
torch nor spaCy until a class is used.
"""

from __future__ import annotations

from kgfuse._lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "KnowledgeGraph": "graph",
    "GraphBuilder": "graph",
    "Neighbors": "graph",
    "KGFormatError": "store",
    "GraphFormatError": "formats",
    "open_graph": "formats",
    "LoadReport": "loaders",
    "MERGED17": "loaders",
    "EntityLinker": "linking",
    "Mention": "linking",
    "Grounding": "linking",
    "PathRetriever": "retrieval",
    "SubgraphRetriever": "retrieval",
    "KGData": "retrieval",
    "EdgeRebuilder": "retrieval",
    "preprocess_dataset": "preprocess",
    "PreprocessedDataset": "preprocess",
    "CacheFormatError": "preprocess",
    "train_kg_embeddings": "embeddings",
    "KGEmbeddingResult": "embeddings",
    "KGEPathScorer": "embeddings",
    "Verbalizer": "verbalize",
    "RelationTemplates": "verbalize",
    "register_definition_source": "verbalize",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
