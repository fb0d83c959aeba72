"""Relational graph convolutional network (R-GCN) encoder.

Schlichtkrull et al., "Modeling Relational Data with Graph Convolutional Networks", ESWC 2018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import RGCNConv

from .base import AttentionPooling, GraphEncoder, mean_pool
from .registry import register_graph_encoder

__all__ = ["RGCNEncoder"]


@register_graph_encoder("rgcn")
class RGCNEncoder(GraphEncoder):
    r"""R-GCN over the retrieved subgraph, with basis decomposition.

    Each layer (:class:`torch_geometric.nn.RGCNConv`) computes

    .. math::
        h_i^{(l+1)} = \mathrm{LN}\Big(h_i^{(l)} + \mathrm{GELU}\big(W_0 h_i^{(l)} + \sum_{r} \sum_{j \in N_r(i)}
        \tfrac{1}{|N_r(i)|} W_r h_j^{(l)}\big)\Big), \qquad W_r = \sum_{b=1}^{B} a_{rb} V_b

    (residual and LayerNorm around the convolution). Input: ``h^{(0)} = W_{in} x + t_{type(i)}`` with a
    learned node-type embedding. The graph vector is the attention pooling of the final
    states queried by the statement vector (a learned query without context), concatenated
    with the mean pooling and projected back to ``hidden_dim``.

    Args:
        num_bases: number of bases ``B`` (capped at ``num_relations``).
        (others: see :class:`~kgfuse.encoders.base.GraphEncoder`)

    Shapes:
        x: ``[N, in_dim]``; returns ``([N, hidden_dim], [G, hidden_dim])``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_relations: int, *, num_bases: int = 8, **kwargs) -> None:
        super().__init__(in_dim, hidden_dim, num_relations, **kwargs)
        self.num_bases = max(1, min(num_bases, num_relations))
        self.input = nn.Linear(in_dim, hidden_dim)
        self.type_emb = nn.Embedding(self.num_node_types, hidden_dim)
        self.convs = nn.ModuleList(
            RGCNConv(hidden_dim, hidden_dim, num_relations, num_bases=self.num_bases) for _ in range(self.num_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim) for _ in range(self.num_layers))
        self.pool = AttentionPooling(hidden_dim, self.context_dim)
        self.out = nn.Linear(2 * hidden_dim, hidden_dim)

    def forward(self, graph, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check_inputs(graph, x)
        h = self.input(x) + self.type_emb(graph.node_type)
        for conv, norm in zip(self.convs, self.norms):
            h = norm(h + self.dropout(F.gelu(conv(h, graph.edge_index, graph.edge_type))))
        G = int(graph.num_graphs)
        att, _ = self.pool(h, graph.batch, G, context)
        return h, self.out(torch.cat((att, mean_pool(h, graph.batch, G)), dim=-1))
