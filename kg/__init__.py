"""kgfuse.kg: graph store, loaders, entity linking, retrieval and KG embeddings.

Names are imported lazily, so ``import kgfuse.kg`` loads neither numpy-heavy code,
torch nor spaCy until a class is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_EXPORTS = {
    "KnowledgeGraph": "graph",
    "GraphBuilder": "graph",
    "Neighbors": "graph",
    "KGFormatError": "store",
    "LoadReport": "loaders",
    "MERGED17": "loaders",
    "EntityLinker": "linking",
    "Mention": "linking",
    "Grounding": "linking",
    "PathRetriever": "retrieval",
    "SubgraphRetriever": "retrieval",
    "KGData": "retrieval",
    "preprocess_dataset": "preprocess",
    "PreprocessedDataset": "preprocess",
    "train_kg_embeddings": "embeddings",
    "KGEmbeddingResult": "embeddings",
    "KGEPathScorer": "embeddings",
    "concept_name_embeddings": "embeddings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'kgfuse.kg' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
