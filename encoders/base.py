"""Common interface of graph encoders.

A graph encoder reads a batch of per-statement subgraphs (concatenated PyG-style, never
padded) plus node features and returns node states and one vector per graph:

.. code-block:: text

    forward(graph, x, context=None) -> (node_states [N, hidden_dim], graph_vec [G, hidden_dim])

``graph`` is a :class:`torch_geometric.data.Batch` of :class:`kgfuse.kg.retrieval.KGData`
or a :class:`GraphInputs` with the same fields (what the fused model builds from its flat
tensor inputs). ``context`` is an optional statement vector ``[G, context_dim]`` (the pooled
text of the statement). Graphs with zero nodes are allowed: their graph vector is finite
(built from the context alone, or zeros).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

__all__ = ["GraphInputs", "GraphEncoder", "AttentionPooling", "mean_pool"]


@dataclass
class GraphInputs:
    """A batch of subgraphs as flat tensors (PyG ``Batch`` field names).

    Attributes:
        edge_index: ``[2, E]`` long, batch-global node indices (row 0 = source).
        edge_type: ``[E]`` long relation ids.
        node_type: ``[N]`` long (0 question, 1 answer, 2 other).
        batch: ``[N]`` long graph index of each node, non-decreasing.
        num_graphs: number of graphs ``G`` (graphs may be empty).
        paths: optional ``[P, H+1]`` batch-global node indices (KagNet paths).
        path_rels: optional ``[P, H]`` relation ids (``r + num_relations`` = followed backward).
        path_len: optional ``[P]`` number of edges of each path.
        node_score: optional ``[N]`` float relevance of each node to its statement
            (``SubgraphRetriever(ranking="relevance")``); read by
            ``QAGNNEncoder(use_node_score=True)``, ignored by the other encoders.
    """

    edge_index: Tensor
    edge_type: Tensor
    node_type: Tensor
    batch: Tensor
    num_graphs: int
    paths: Tensor | None = None
    path_rels: Tensor | None = None
    path_len: Tensor | None = None
    node_score: Tensor | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.batch.shape[0])


def mean_pool(x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """Mean of node states per graph; zeros for empty graphs. ``[G, d]``."""
    return scatter(x, batch, dim=0, dim_size=num_graphs, reduce="mean")


class AttentionPooling(nn.Module):
    r"""Attention pooling of node states per graph, queried by the statement vector.

    .. math::
        \alpha_i = \mathrm{softmax}_{i \in G}\left(\frac{(W_q s_G)^\top W_k h_i}{\sqrt{d}}\right),\qquad
        g_G = \sum_{i \in G} \alpha_i W_v h_i

    Built without ``context_dim``, the query is a learned vector. Empty graphs pool to zeros.
    """

    def __init__(self, dim: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.query = nn.Linear(context_dim, dim) if context_dim else None
        # A learned query only when there is no context (no unused parameters under DDP).
        self.query_vec = None if context_dim else nn.Parameter(torch.zeros(dim))
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(pooled [G, d], attention [N])``."""
        if self.query is not None and context is not None:
            q = self.query(context)  # [G, d]
        elif self.query_vec is not None:
            q = self.query_vec.unsqueeze(0).expand(num_graphs, -1)
        else:  # built for a context but called without one: uniform attention (mean)
            q = x.new_zeros(num_graphs, self.dim)
        k = self.key(x)
        score = (q[batch] * k).sum(-1) / math.sqrt(self.dim)  # [N]
        alpha = softmax(score, batch, num_nodes=num_graphs)
        pooled = scatter(alpha.unsqueeze(-1) * self.value(x), batch, dim=0, dim_size=num_graphs, reduce="sum")
        return pooled, alpha


class GraphEncoder(nn.Module):
    """Base class of registered graph encoders.

    Args:
        in_dim: width of the input node features.
        hidden_dim: width of node states and of the graph vector.
        num_relations: number of relation ids in ``edge_type`` (derived from the graph).
        context_dim: width of the optional statement vector (``None``: no context).
        num_node_types: node types in ``node_type`` (3: question, answer, other).
        num_layers: message-passing layers.
        dropout: dropout on node states between layers.
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_relations: int, *, context_dim: int | None = None,
                 num_node_types: int = 3, num_layers: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if num_relations < 1:
            raise ValueError(f"num_relations must be >= 1, got {num_relations}")
        self.in_dim = in_dim
        self.hidden_dim = hidden_dim
        self.num_relations = num_relations
        self.context_dim = context_dim
        self.num_node_types = num_node_types
        self.num_layers = num_layers
        self.dropout = nn.Dropout(dropout)

    def check_inputs(self, graph, x: Tensor) -> None:
        """Raise a clear error on inconsistent inputs."""
        n = int(graph.batch.shape[0])
        if x.shape[0] != n:
            raise ValueError(f"{type(self).__name__}: x has {x.shape[0]} rows but the graph has {n} nodes")
        if graph.edge_type.numel() and int(graph.edge_type.max()) >= self.num_relations:
            raise ValueError(
                f"{type(self).__name__}: edge_type contains relation id {int(graph.edge_type.max())} but the "
                f"encoder was built for num_relations={self.num_relations}"
            )

    def forward(self, graph, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError
