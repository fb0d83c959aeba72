"""Graph encoders on hand-made small graphs; the registry and its meta-test."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from kgfuse.encoders import build_graph_encoder, graph_encoder_names, register_graph_encoder
from kgfuse.encoders.base import GraphEncoder, GraphInputs
from kgfuse.encoders.registry import GRAPH_ENCODERS

# every registered built-in must have a test in this file
TESTED = {"rgcn", "qagnn", "kagnet"}
R, D_IN, D, CTX = 3, 6, 8, 5


def _graphs():
    """Graph 0: 4-node cycle (q, a, other, other) with paths; graph 1: empty; graph 2: 2 nodes."""
    g0 = Data(edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]), edge_type=torch.tensor([0, 1, 2, 0]),
              node_type=torch.tensor([0, 1, 2, 2]), num_nodes=4,
              paths=torch.tensor([[0, 1, 1], [0, 3, 1]]), path_rels=torch.tensor([[0, 0], [3, 4]]),
              path_len=torch.tensor([1, 2]))
    g1 = Data(edge_index=torch.zeros(2, 0, dtype=torch.long), edge_type=torch.zeros(0, dtype=torch.long),
              node_type=torch.zeros(0, dtype=torch.long), num_nodes=0, paths=torch.zeros(0, 3, dtype=torch.long),
              path_rels=torch.zeros(0, 2, dtype=torch.long), path_len=torch.zeros(0, dtype=torch.long))
    g2 = Data(edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([1]), node_type=torch.tensor([0, 1]),
              num_nodes=2, paths=torch.tensor([[0, 1, 1]]), path_rels=torch.tensor([[1, 0]]), path_len=torch.tensor([1]))
    return [g0, g1, g2]


def _inputs(graphs=None):
    graphs = graphs or _graphs()
    b = Batch.from_data_list([Data(edge_index=g.edge_index, edge_type=g.edge_type, node_type=g.node_type,
                                   num_nodes=g.num_nodes) for g in graphs])
    offs = torch.tensor([0] + [g.num_nodes for g in graphs]).cumsum(0)
    paths = torch.cat([g.paths + offs[i] for i, g in enumerate(graphs)])
    return GraphInputs(b.edge_index, b.edge_type, b.node_type, b.batch, len(graphs), paths,
                       torch.cat([g.path_rels for g in graphs]), torch.cat([g.path_len for g in graphs]))


def _build(name, **kw):
    torch.manual_seed(0)
    return build_graph_encoder(name, in_dim=D_IN, hidden_dim=D, num_relations=R, context_dim=CTX, dropout=0.0, **kw).eval()


def test_meta_every_registered_encoder_is_tested():
    assert set(graph_encoder_names()) >= TESTED
    untested = set(n for n, c in GRAPH_ENCODERS.items() if c.__module__.startswith("kgfuse.")) - TESTED
    assert not untested, f"registered encoders without a test: {untested}"


@pytest.mark.parametrize("name", sorted(TESTED))
def test_shapes_empty_graph_and_gradients(name):
    enc = _build(name)
    assert isinstance(enc, GraphEncoder) and enc.encoder_name == name
    g = _inputs()
    x = torch.randn(g.num_nodes, D_IN, requires_grad=True)
    ctx = torch.randn(3, CTX, requires_grad=True)
    h, v = enc(g, x, ctx)
    assert h.shape == (6, D) and v.shape == (3, D)
    assert torch.isfinite(h).all() and torch.isfinite(v).all()
    (h.sum() + v.sum()).backward()
    assert x.grad.abs().sum() > 0 and ctx.grad.abs().sum() > 0
    # without context as well: same shapes, and the context did reach the graph vectors
    h2, v2 = enc(g, x.detach())
    assert h2.shape == h.shape and v2.shape == v.shape and torch.isfinite(v2).all()
    assert not torch.allclose(v2, v.detach())


@pytest.mark.parametrize("name", sorted(TESTED))
def test_graphs_are_independent_and_relations_matter(name):
    enc = _build(name)
    g = _inputs()
    x = torch.randn(g.num_nodes, D_IN)
    ctx = torch.randn(3, CTX)
    with torch.no_grad():
        _, v = enc(g, x, ctx)
        x2 = x.clone()
        x2[4:] += 1.0  # graph 2's nodes
        _, v2 = enc(g, x2, ctx)
        assert torch.equal(v[0], v2[0]) and not torch.allclose(v[2], v2[2])
        g3 = _inputs()
        g3.edge_type = (g3.edge_type + 1) % R
        g3.path_rels = torch.where(g3.path_len.unsqueeze(1) > torch.arange(2), (g3.path_rels + 1) % (2 * R), g3.path_rels)
        _, v3 = enc(g3, x, ctx)
        assert not torch.allclose(v[0], v3[0])


def test_rgcn_uses_basis_decomposition():
    enc = _build("rgcn", num_bases=2)
    conv = enc.convs[0]
    assert conv.num_bases == 2 and conv.weight.shape[0] == 2 and conv.comp.shape == (R, 2)
    assert _build("rgcn", num_bases=50).num_bases == R


def test_qagnn_context_node_carries_the_statement():
    enc = _build("qagnn")
    g = _inputs()
    x = torch.randn(g.num_nodes, D_IN)
    with torch.no_grad():
        _, v1 = enc(g, x, torch.zeros(3, CTX))
        _, v2 = enc(g, x, torch.ones(3, CTX))
    assert not torch.allclose(v1[1], v2[1])  # the empty graph has only its context node
    assert enc.num_edge_types == R + 4


def test_kagnet_paths_change_the_vector_and_order_does_not():
    enc = _build("kagnet")
    g = _inputs()
    x = torch.randn(g.num_nodes, D_IN)
    ctx = torch.randn(3, CTX)
    with torch.no_grad():
        _, v = enc(g, x, ctx)
        nopaths = _inputs()
        nopaths.paths = None
        _, v0 = enc(nopaths, x, ctx)
        perm = _inputs()
        perm.paths, perm.path_rels, perm.path_len = perm.paths.flip(0), perm.path_rels.flip(0), perm.path_len.flip(0)
        _, vp = enc(perm, x, ctx)
    assert not torch.allclose(v[0], v0[0])
    assert torch.allclose(v, vp, atol=1e-6)
    assert torch.allclose(v[1], v0[1])  # empty graph: no paths either way
    with pytest.raises(ValueError, match="path_rels"):
        bad = _inputs()
        bad.path_rels = bad.path_rels + 2 * R
        enc(bad, x, ctx)


def test_registry_resolution_and_errors():
    with pytest.raises(ValueError, match="valid names: .*kagnet.*qagnn.*rgcn"):
        build_graph_encoder("gat-x", in_dim=2, hidden_dim=2, num_relations=1)
    inst = _build("rgcn")
    assert build_graph_encoder(inst) is inst
    cls = type(inst)
    built = build_graph_encoder(cls, in_dim=2, hidden_dim=4, num_relations=1)
    assert type(built) is cls and (built.in_dim, built.hidden_dim) == (2, 4)
    with pytest.raises(ValueError, match="edge_type contains relation id"):
        g = _inputs()
        g.edge_type = g.edge_type + R
        inst(g, torch.randn(g.num_nodes, D_IN))

    @register_graph_encoder("third-party-mean")
    class MeanEncoder(GraphEncoder):
        def __init__(self, in_dim, hidden_dim, num_relations, **kw):
            super().__init__(in_dim, hidden_dim, num_relations, **kw)
            self.lin = nn.Linear(in_dim, hidden_dim)

    try:
        mine = build_graph_encoder("third-party-mean", in_dim=2, hidden_dim=3, num_relations=1)
        assert type(mine) is MeanEncoder and mine.lin.weight.shape == (3, 2)
        with pytest.raises(ValueError, match="already registered"):
            register_graph_encoder("third-party-mean")(type("Other", (GraphEncoder,), {}))
    finally:
        GRAPH_ENCODERS.pop("third-party-mean")


def test_qagnn_conv_matches_its_equations_values_and_gradients():
    """QAGNNConv computes W [h; u; e] per edge through per-node and per-edge-type parts; check
    it against the docstring's equations evaluated edge by edge, values and gradients."""
    import math

    from torch_geometric.utils import softmax

    from kgfuse.encoders.qagnn import QAGNNConv

    torch.manual_seed(0)
    d, H, R, T, N, E = 8, 2, 5, 4, 9, 30
    conv = QAGNNConv(d, R, T, heads=H, dropout=0.0)
    x = torch.randn(N, d, requires_grad=True)
    node_type = torch.randint(0, T, (N,))
    edge_index = torch.randint(0, N, (2, E))
    edge_type = torch.randint(0, R, (E,))
    got = conv(x, edge_index, edge_type, node_type)

    src, dst = edge_index
    u = conv.type_emb(node_type)
    e = conv.edge_mlp(conv.rel_emb(edge_type) + conv.src_type_emb(node_type[src]) + conv.dst_type_emb(node_type[dst]))
    q = conv.query(torch.cat((x[dst], u[dst]), -1)).view(-1, H, d // H)
    k = conv.key(torch.cat((x[src], u[src], e), -1)).view(-1, H, d // H)
    m = conv.msg(torch.cat((x[src], e), -1)).view(-1, H, d // H)
    alpha = softmax((q * k).sum(-1) / math.sqrt(d // H), dst, num_nodes=N)
    agg = torch.zeros(N, d).index_add(0, dst, (m * alpha.unsqueeze(-1)).view(-1, d))
    ref = conv.norm(x + conv.update_mlp(agg))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    probe = torch.randn_like(got)
    params = [x] + list(conv.parameters())
    g_got = torch.autograd.grad((got * probe).sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad((ref * probe).sum(), params, allow_unused=True)
    for a, b in zip(g_got, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # no edges: only the update of the residual path
    out = conv(x, torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long), node_type)
    torch.testing.assert_close(out, conv.norm(x + conv.update_mlp(torch.zeros(N, d))))
