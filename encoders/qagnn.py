"""QA-GNN's relation-aware graph attention encoder.

Yasunaga et al., "QA-GNN: Reasoning with Language Models and Knowledge Graphs for
Question Answering", NAACL 2021.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from .base import AttentionPooling, GraphEncoder
from .registry import register_graph_encoder

__all__ = ["QAGNNEncoder", "QAGNNConv", "NodeScoreEmbedding", "edge_type_groups"]

NODE_CONTEXT = 3  # node type of the per-graph context node (after question=0, answer=1, other=2)


class QAGNNConv(MessagePassing):
    r"""One QA-GNN layer: multi-head attention over incoming edges whose keys and
    messages carry node-type and edge-type embeddings.

    For an edge :math:`j \to i` with relation :math:`r_{ji}`, node types :math:`t_j, t_i`:

    .. math::
        e_{ji} &= f_r([\mathrm{onehot}(r_{ji}); \mathrm{onehot}(t_j); \mathrm{onehot}(t_i)]),
            \qquad u_i = f_u(\mathrm{onehot}(t_i))\\
        q_i &= W_q [h_i; u_i], \quad k_{ji} = W_k [h_j; u_j; e_{ji}], \quad m_{ji} = W_m [h_j; e_{ji}]\\
        \alpha_{ji} &= \mathrm{softmax}_{j \in N(i)}\big(q_i^\top k_{ji} / \sqrt{d}\big)
            \quad \text{(per head)}\\
        h_i' &= \mathrm{LN}\big(h_i + f_n(\textstyle\sum_j \alpha_{ji} m_{ji})\big)

    (:math:`f_r`, :math:`f_n` are 2-layer MLPs; the one-hot concatenation through the first
    linear map of :math:`f_r` is implemented as a sum of three embeddings.) With
    ``node_extra`` (``[N, d]``, the relevance-score embedding of
    :class:`NodeScoreEmbedding`), :math:`u_i = f_u(\mathrm{onehot}(t_i)) + \mathrm{node\_extra}_i`.

    Shapes:
        x: ``[N, d]``, edge_index ``[2, E]``, edge_type ``[E]``, node_type ``[N]`` -> ``[N, d]``.
    """

    def __init__(self, dim: int, num_edge_types: int, num_node_types: int, heads: int = 2, dropout: float = 0.1):
        super().__init__(aggr="add", node_dim=0)
        if dim % heads:
            raise ValueError(f"hidden_dim={dim} is not divisible by num_heads={heads}")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.rel_emb = nn.Embedding(num_edge_types, dim)
        self.src_type_emb = nn.Embedding(num_node_types, dim)
        self.dst_type_emb = nn.Embedding(num_node_types, dim)
        self.edge_mlp = nn.Sequential(nn.GELU(), nn.Linear(dim, dim))
        self.type_emb = nn.Embedding(num_node_types, dim)  # f_u
        self.query = nn.Linear(2 * dim, dim)
        self.key = nn.Linear(3 * dim, dim)
        self.msg = nn.Linear(2 * dim, dim)
        self.update_mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.norm = nn.LayerNorm(dim)
        self.att_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, node_type: Tensor,
                edge_groups: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
                node_extra: Tensor | None = None) -> Tensor:
        """``edge_groups``: :func:`edge_type_groups` of the same edges (computed here when None;
        pass it to share it between layers). ``node_extra``: ``[N, d]`` added to the node-type
        embedding :math:`u` (the node-score embedding; ``None``: none)."""
        d = self.dim
        src, dst = edge_index
        if edge_groups is None:
            edge_groups = edge_type_groups(edge_type, node_type, src, dst, self.type_emb.num_embeddings)
        inverse, rel_g, src_t, dst_t = edge_groups
        u = self.type_emb(node_type)
        if node_extra is not None:
            u = u + node_extra
        # Every linear map over a concatenation is a sum of maps over its parts: the node
        # parts are computed once per node ([N, d]) and the edge part e_ji once per distinct
        # (relation, source type, target type) ([G, d]), then gathered per edge. Same values as
        # W [h; u; e] per edge, without the [E, 3d] inputs kept for backward.
        wq, wk, wm = self.query.weight, self.key.weight, self.msg.weight
        q_node = torch.addmm(self.query.bias, x, wq[:, :d].t()) + u @ wq[:, d:].t()
        k_node = x @ wk[:, :d].t() + u @ wk[:, d:2 * d].t()
        m_node = x @ wm[:, :d].t()
        e = self.edge_mlp(self.rel_emb(rel_g) + self.src_type_emb(src_t) + self.dst_type_emb(dst_t))  # [G, d]
        k_edge = torch.addmm(self.key.bias, e, wk[:, 2 * d:].t())[inverse]
        m_edge = torch.addmm(self.msg.bias, e, wm[:, d:].t())[inverse]
        agg = self.propagate(edge_index, q=q_node, k=k_node, m=m_node, k_edge=k_edge, m_edge=m_edge,
                             size=(x.shape[0], x.shape[0]))
        return self.norm(x + self.update_mlp(agg))

    def message(self, q_i: Tensor, k_j: Tensor, m_j: Tensor, k_edge: Tensor, m_edge: Tensor, index: Tensor,
                ptr: Tensor | None, size_i: int | None) -> Tensor:
        H, D = self.heads, self.head_dim
        q = q_i.view(-1, H, D)
        k = (k_j + k_edge).view(-1, H, D)
        m = (m_j + m_edge).view(-1, H, D)
        alpha = softmax((q * k).sum(-1) / math.sqrt(D), index, ptr, size_i)  # [E, H]
        alpha = self.att_dropout(alpha)
        return (m * alpha.unsqueeze(-1)).view(-1, H * D)


class NodeScoreEmbedding(nn.Module):
    r"""QA-GNN's embedding of a node's relevance score.

    .. math::
        \phi(s)_j = \sin(1.1^{j} s), \quad j = 0 \dots B-1, \qquad
        f_s(s) = \mathrm{GELU}(W_s \phi(s) + b_s) \in \mathbb{R}^{d}

    (``B = num_basis``; QA-GNN's sinusoidal basis with base 1.1 and ``B = d/2``).

    Shapes:
        score: ``[N]`` -> ``[N, dim]``.
    """

    def __init__(self, dim: int, num_basis: int | None = None) -> None:
        super().__init__()
        self.num_basis = int(num_basis or max(1, dim // 2))
        self.proj = nn.Linear(self.num_basis, dim)
        self.act = nn.GELU()

    def forward(self, score: Tensor) -> Tensor:
        dtype = self.proj.weight.dtype
        freq = torch.pow(1.1, torch.arange(self.num_basis, device=score.device, dtype=torch.float32))
        basis = torch.sin(score.float().unsqueeze(-1) * freq).to(dtype)
        return self.act(self.proj(basis))


def edge_type_groups(edge_type: Tensor, node_type: Tensor, src: Tensor, dst: Tensor,
                     num_node_types: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The distinct ``(relation, source node type, target node type)`` triples of the edges:
    ``(inverse [E], relation [G], source type [G], target type [G])`` with
    ``triple[inverse[k]]`` the triple of edge ``k`` (node types in ``0..num_node_types-1``)."""
    ts, td = node_type[src], node_type[dst]
    nt = int(num_node_types)
    key = (edge_type * nt + ts) * nt + td
    uniq, inverse = torch.unique(key, return_inverse=True)
    return inverse, uniq // (nt * nt), (uniq // nt) % nt, uniq % nt


@register_graph_encoder("qagnn")
class QAGNNEncoder(GraphEncoder):
    r"""QA-GNN working graph: the retrieved subgraph plus one context node per statement.

    The context node :math:`z` is initialised from the statement's text vector
    (:math:`W_z s`; a learned vector without context) and joined to every question node by
    relations ``ctx->q`` / ``q->ctx`` and to every answer node by ``ctx->a`` / ``a->ctx``
    (4 extra edge types after the graph's ``num_relations``). ``num_layers``
    :class:`QAGNNConv` layers run over the joint graph. The graph vector is
    :math:`W_o [h_z ; \mathrm{AttPool}(h, s)]`: the final context-node state with the
    statement-queried attention pooling of the concept nodes (QA-GNN's scorer input).
    A statement with zero concepts still has its context node, so its vector is finite.

    **Relevance scores as a node feature** (``use_node_score=True``). QA-GNN scores every
    node against the statement with a language model and feeds the score to the GNN with
    the node type. Here, when the graph batch carries ``node_score`` :math:`s_i`
    (``SubgraphRetriever(ranking="relevance")``, cosine relevance in ``[-1, 1]``), the
    node-type embedding that enters every layer's query and key becomes

    .. math::
        u_i = f_u(\mathrm{onehot}(t_i)) + f_s(s_i), \qquad
        f_s(s) = \mathrm{GELU}\big(W_s [\sin(1.1^{j} s)]_{j=0}^{d/2-1} + b_s\big)

    (:class:`NodeScoreEmbedding`, shared by all layers as in QA-GNN; adding :math:`f_s` to
    :math:`u` equals QA-GNN's concatenation ``[type ; score]`` through the layer's linear
    maps). Context nodes get :math:`f_s(0)`, QA-GNN's score of the context node. The cosine
    scores share one bounded scale, so QA-GNN's per-graph rescaling of LM log-probabilities
    is not applied. The flag is off by default; then the encoder has no score parameters and
    ignores ``node_score``, and its outputs are exactly those of the encoder without the
    option. With the flag on, a batch with nodes but no ``node_score`` is an error.

    Args:
        num_heads: attention heads per layer.
        use_node_score: add the relevance-score embedding :math:`f_s` (see above).
        (others: see :class:`~kgfuse.encoders.base.GraphEncoder`)
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_relations: int, *, num_heads: int = 2,
                 use_node_score: bool = False, **kwargs) -> None:
        super().__init__(in_dim, hidden_dim, num_relations, **kwargs)
        self.input = nn.Linear(in_dim, hidden_dim)
        self.context_input = nn.Linear(self.context_dim, hidden_dim) if self.context_dim else None
        self.context_vec = None if self.context_dim else nn.Parameter(torch.zeros(hidden_dim))
        self.num_edge_types = num_relations + 4
        nt = self.num_node_types + 1
        self.convs = nn.ModuleList(
            QAGNNConv(hidden_dim, self.num_edge_types, nt, heads=num_heads, dropout=self.dropout.p)
            for _ in range(self.num_layers)
        )
        self.pool = AttentionPooling(hidden_dim, self.context_dim)
        self.out = nn.Linear(2 * hidden_dim, hidden_dim)
        self.use_node_score = bool(use_node_score)
        # created after the encoder's other modules, which thus draw the same initial weights with or without it
        self.score_emb = NodeScoreEmbedding(hidden_dim) if self.use_node_score else None

    def forward(self, graph, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check_inputs(graph, x)
        N, G, R = x.shape[0], int(graph.num_graphs), self.num_relations
        batch, node_type = graph.batch, graph.node_type
        h = self.input(x)
        if context is not None and self.context_input is not None:
            z = self.context_input(context)
        elif self.context_vec is not None:
            z = self.context_vec.unsqueeze(0).expand(G, -1)
        else:
            z = x.new_zeros(G, self.hidden_dim)
        h_all = torch.cat((h, z), 0)
        type_all = torch.cat((node_type, node_type.new_full((G,), NODE_CONTEXT)))
        # Context edges: z -> q/a and q/a -> z.
        qa = (node_type == 0) | (node_type == 1)
        qa_nodes = torch.nonzero(qa, as_tuple=False).view(-1)
        ctx = N + batch[qa_nodes]
        is_ans = (node_type[qa_nodes] == 1).long()
        ei = torch.cat(
            (graph.edge_index, torch.stack((ctx, qa_nodes)), torch.stack((qa_nodes, ctx))), dim=1
        )
        et = torch.cat((graph.edge_type, R + is_ans, R + 2 + is_ans))
        groups = edge_type_groups(et, type_all, ei[0], ei[1], self.num_node_types + 1)
        extra = self._score_features(graph, N, G, x) if self.score_emb is not None else None
        for conv in self.convs:
            h_all = self.dropout(conv(h_all, ei, et, type_all, groups, extra))
        h, z = h_all[:N], h_all[N:]
        att, _ = self.pool(h, batch, G, context)
        return h, self.out(torch.cat((z, att), -1))

    def _score_features(self, graph, N: int, G: int, x: Tensor) -> Tensor:
        """:math:`f_s` of every node's score, then of score 0 for the ``G`` context nodes: ``[N + G, d]``."""
        score = getattr(graph, "node_score", None)
        if score is None:
            if N:
                raise ValueError(
                    "QAGNNEncoder(use_node_score=True) needs node_score in the graph batch: retrieve with "
                    "SubgraphRetriever(ranking='relevance', scorer=...) (the collator then carries it), or build the "
                    "encoder with use_node_score=False"
                )
            score = x.new_zeros(0)
        score = score.reshape(-1)
        if score.shape[0] != N:
            raise ValueError(f"QAGNNEncoder: node_score has {score.shape[0]} entries but the graph has {N} nodes")
        return self.score_emb(torch.cat((score.to(x.dtype), x.new_zeros(G))))
