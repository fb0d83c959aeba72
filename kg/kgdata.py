"""The retrieved-subgraph data class, :class:`KGData` (a ``torch_geometric.data.Data``).

Kept apart from :mod:`kgfuse.kg.retrieval` so that the search and the retriever registry
import without torch; ``kgfuse.kg.retrieval.KGData`` is this class.
"""

from __future__ import annotations

from typing import Any

from torch_geometric.data import Data

__all__ = ["KGData"]


class KGData(Data):
    """A retrieved subgraph (``torch_geometric.data.Data``).

    Attributes:
        concept_ids: ``[n]`` global concept ids (question concepts, answer concepts, others).
        node_type: ``[n]`` :data:`NODE_QUESTION` / :data:`NODE_ANSWER` / :data:`NODE_OTHER`.
        edge_index: ``[2, e]`` local node indices (row 0 = head of the graph edge).
        edge_type: ``[e]`` relation ids of the graph.
        paths: ``[P, max_hops + 1]`` local node indices of each path (PathRetriever only),
            padded by repeating the last real node.
        path_rels: ``[P, max_hops]`` relation id ``r`` when the edge was followed forward,
            ``r + num_relations`` when followed backward; padding 0.
        path_len: ``[P]`` number of edges of each path.
        node_score: optional ``[n]`` float32 relevance of each node to the statement
            (``SubgraphRetriever(ranking="relevance")``), aligned with ``concept_ids``;
            absent for the other rankings and retrievers.

    ``Batch.from_data_list`` offsets ``paths`` by the number of nodes, like ``edge_index``.
    """

    def __inc__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key == "paths":
            return self.num_nodes
        if key in ("path_rels", "path_len"):
            return 0
        return super().__inc__(key, value, *args, **kwargs)
