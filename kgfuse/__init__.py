"""kgfuse: knowledge-graph-augmented language models.

Importing this package loads nothing heavy: no torch, no spaCy pipeline, no model,
no data. Sub-packages:

- :mod:`kgfuse.kg`        graph store, loaders, entity linking, retrieval, KG embeddings
- :mod:`kgfuse.encoders`  graph encoders (PyG modules)
- :mod:`kgfuse.fusion`    ERNIE-style fusion layers and the multiple-choice model
- :mod:`kgfuse.tasks`     datasets, features, training, evaluation, CLI
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
