"""KagNet's GCN-LSTM-HPA path encoder.

Lin et al., "KagNet: Knowledge-Aware Graph Networks for Commonsense Reasoning", EMNLP 2019.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch_geometric.nn import GCNConv
from torch_geometric.utils import scatter, softmax

from .base import GraphEncoder, mean_pool
from .registry import register_graph_encoder

__all__ = ["KagNetEncoder"]


@register_graph_encoder("kagnet")
class KagNetEncoder(GraphEncoder):
    r"""GCN over the subgraph, LSTM over the retrieved paths, hierarchical path attention.

    1. **GCN** (relation-agnostic, as in KagNet): :math:`h^{(l+1)} = \mathrm{LN}(h^{(l)} +
       \mathrm{GELU}(\mathrm{GCN}(h^{(l)})))`, :math:`h^{(0)} = W_{in} x + t_{type}`.
    2. **Path LSTM**: a path :math:`c_0 \xrightarrow{r_1} c_1 \cdots \xrightarrow{r_k} c_k`
       is read as the sequence :math:`[h_{c_0}; \rho_{r_1}], \ldots, [h_{c_{k-1}}; \rho_{r_k}],
       [h_{c_k}; \rho_{\mathrm{end}}]` (:math:`\rho` = relation embeddings, with separate
       entries for edges followed backward); the path vector :math:`p` is the last LSTM state.
    3. **Hierarchical path attention**, conditioned on the statement vector :math:`s`:
       paths are grouped by concept pair :math:`(c_0, c_k)`;
       :math:`\alpha_p = \mathrm{softmax}_{p \in \text{pair}}((W_1 s)^\top p/\sqrt d)`,
       :math:`T_{pair} = \sum_p \alpha_p p`; then
       :math:`\beta = \mathrm{softmax}_{pair \in G}((W_2 s)^\top T_{pair}/\sqrt d)`,
       :math:`g_{path} = \sum \beta\, T_{pair}`.

    The graph vector is :math:`W_o [g_{path} ; \mathrm{mean}(h)]`. Without paths (or for a
    statement with none) :math:`g_{path} = 0`. Path inputs follow
    :class:`kgfuse.kg.retrieval.KGData`: ``paths [P, H+1]`` batch-global node indices
    padded by repeating the last node, ``path_rels [P, H]`` (``r + num_relations`` = backward),
    ``path_len [P]``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_relations: int, **kwargs) -> None:
        super().__init__(in_dim, hidden_dim, num_relations, **kwargs)
        d = hidden_dim
        self.input = nn.Linear(in_dim, d)
        self.type_emb = nn.Embedding(self.num_node_types, d)
        self.convs = nn.ModuleList(GCNConv(d, d) for _ in range(self.num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(self.num_layers))
        self.end_relation = 2 * num_relations
        self.rel_emb = nn.Embedding(2 * num_relations + 1, d)
        self.lstm = nn.LSTM(2 * d, d, batch_first=True)
        qdim = self.context_dim or d
        self.path_query = nn.Linear(qdim, d)
        self.pair_query = nn.Linear(qdim, d)
        self.query_vec = None if self.context_dim else nn.Parameter(torch.zeros(qdim))
        self.out = nn.Linear(2 * d, d)

    def encode_paths(self, h: Tensor, paths: Tensor, path_rels: Tensor, path_len: Tensor) -> Tensor:
        """LSTM path vectors ``[P, d]``."""
        P, W = paths.shape
        steps = h[paths]  # [P, H+1, d]
        rels = torch.full((P, W), self.end_relation, dtype=torch.long, device=paths.device)
        if W > 1:
            rels[:, : W - 1] = path_rels
        pos = torch.arange(W, device=paths.device).unsqueeze(0)
        rels = torch.where(pos == path_len.unsqueeze(1), torch.full_like(rels, self.end_relation), rels)
        seq = torch.cat((steps, self.rel_emb(rels)), -1)
        packed = pack_padded_sequence(seq, (path_len + 1).cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return h_n[-1]

    def forward(self, graph, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check_inputs(graph, x)
        G, d = int(graph.num_graphs), self.hidden_dim
        h = self.input(x) + self.type_emb(graph.node_type)
        for conv, norm in zip(self.convs, self.norms):
            h = norm(h + self.dropout(F.gelu(conv(h, graph.edge_index))))
        if context is not None and self.context_dim:
            s = context
        elif self.query_vec is not None:
            s = self.query_vec.unsqueeze(0).expand(G, -1)
        else:
            s = h.new_zeros(G, self.context_dim)
        paths = getattr(graph, "paths", None)
        g_path = h.new_zeros(G, d)
        if paths is not None and paths.shape[0] > 0:
            path_rels, path_len = graph.path_rels, graph.path_len
            if path_rels.numel() and int(path_rels.max()) >= 2 * self.num_relations:
                raise ValueError(
                    f"KagNetEncoder: path_rels contains {int(path_rels.max())} >= 2 * num_relations "
                    f"({2 * self.num_relations})"
                )
            p = self.encode_paths(h, paths, path_rels, path_len)  # [P, d]
            P = p.shape[0]
            start = paths[:, 0]
            end = paths[torch.arange(P, device=paths.device), path_len]
            pg = graph.batch[start]
            _, pair = torch.unique(start * max(h.shape[0], 1) + end, return_inverse=True)
            Q = int(pair.max()) + 1
            pair_graph = scatter(pg, pair, dim=0, dim_size=Q, reduce="max")
            q1 = self.path_query(s)[pg]
            alpha = softmax((q1 * p).sum(-1) / math.sqrt(d), pair, num_nodes=Q)
            T = scatter(alpha.unsqueeze(-1) * p, pair, dim=0, dim_size=Q, reduce="sum")
            q2 = self.pair_query(s)[pair_graph]
            beta = softmax((q2 * T).sum(-1) / math.sqrt(d), pair_graph, num_nodes=G)
            g_path = scatter(beta.unsqueeze(-1) * T, pair_graph, dim=0, dim_size=G, reduce="sum")
        return h, self.out(torch.cat((g_path, mean_pool(h, graph.batch, G)), -1))
