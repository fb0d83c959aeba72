"""``model.graph_input``: the experiment controls reach the model as described (same nodes and
alignments without edges, question/answer nodes only, or nothing), from a config."""

from __future__ import annotations

import pytest
import torch

from kgfuse.kg.retrieval import NODE_ANSWER, NODE_QUESTION
from kgfuse.tasks.cli import data_dir
from kgfuse.tasks.config import ConfigError, TrainConfig

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}


def _run(tmp_path, mode):
    from kgfuse.tasks.pipeline import build_run

    d = data_dir()
    cfg = TrainConfig.from_dict({
        "data": {"format": "csqa", "train": str(d / "sample_csqa/train.jsonl"), "max_train": 12},
        "graph": {"path": str(d / "sample_kg/assertions.csv")},
        "retriever": {"type": "subgraph", "max_nodes": 16},
        "model": {"graph_input": mode, "options": {"text_config": TINY, "num_fusion_layers": 1, "node_dim": 16,
                                                   "graph_hidden_dim": 16}},
        "train": {"max_length": 40, "mixed_precision": "no"},
        "output_dir": str(tmp_path / mode), "cache_dir": str(tmp_path / "cache"),
    })
    run = build_run(cfg, progress=False)
    ds = run.datasets["train"]
    return run.collator([ds[i] for i in range(len(ds))])


def test_graph_inputs(tmp_path):
    full = _run(tmp_path, "full")
    assert full["edge_index"].shape[1] > 0 and (full["node_type"] > NODE_ANSWER).any()
    noedges = _run(tmp_path, "no_edges")
    assert noedges["edge_index"].shape[1] == 0
    for k in ("node_concept_ids", "node_type", "node_batch", "entity_index", "input_ids"):
        assert torch.equal(noedges[k], full[k]), k
    qa = _run(tmp_path, "qa_only")
    assert ((qa["node_type"] == NODE_QUESTION) | (qa["node_type"] == NODE_ANSWER)).all()
    keep = (full["node_type"] == NODE_QUESTION) | (full["node_type"] == NODE_ANSWER)
    assert torch.equal(qa["node_concept_ids"], full["node_concept_ids"][keep])
    assert 0 < qa["edge_index"].shape[1] < full["edge_index"].shape[1]
    # the same tokens point at the same concepts (entity_index indexes the batch's nodes)
    def aligned(b):
        ei = b["entity_index"]
        return torch.where(ei >= 0, b["node_concept_ids"][ei.clamp(min=0)], torch.full_like(ei, -1))
    assert (full["entity_index"] >= 0).any() and torch.equal(aligned(qa), aligned(full))
    none = _run(tmp_path, "none")
    assert none["node_concept_ids"].numel() == 0 and none["edge_index"].shape[1] == 0
    assert torch.equal(none["input_ids"], full["input_ids"])


def test_graph_input_is_checked():
    with pytest.raises(ConfigError, match="model.graph_input must be one of"):
        TrainConfig.from_dict({"model": {"graph_input": "edges_only"}})


def test_kge_node_features_from_a_config(tmp_path, monkeypatch):
    """model.options.node_features: {kge: ...} trains TransE on the graph (cached) and starts the
    node table from it."""
    from kgfuse.kg.embeddings import train_kg_embeddings
    from kgfuse.tasks.pipeline import build_model, load_graph

    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path / "home"))
    d = data_dir()
    spec = {"kge": "transe", "dim": 12, "epochs": 2, "batch_size": 64}
    cfg = TrainConfig.from_dict({
        "graph": {"path": str(d / "sample_kg/assertions.csv")},
        "model": {"options": {"text_config": TINY, "num_fusion_layers": 1, "graph_hidden_dim": 16,
                              "node_features": spec}},
    })
    graph = load_graph(cfg.graph)
    model, _ = build_model(cfg.model, graph)
    ref = train_kg_embeddings(graph, model="transe", dim=12, epochs=2, batch_size=64,
                              cache_dir=str(tmp_path / "home" / "cache" / "kge"))
    assert model.config.node_feature_kind == "kge" and model.config.node_dim == 12
    assert torch.equal(model.node_embeddings.weight.detach(), ref.entity_embeddings())
    with pytest.raises(ConfigError, match="node_features.kge must be transe"):
        TrainConfig.from_dict({"model": {"options": {"node_features": {"kge": "complex"}}}})
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        TrainConfig.from_dict({"model": {"options": {"node_features": {"kge": "transe", "epoch": 2}}}})
    with pytest.raises(ConfigError, match="must be learned, name or"):
        TrainConfig.from_dict({"model": {"options": {"node_features": "transe"}}})


def test_node_dim_must_match_table_node_features_before_computing_them(tmp_path, monkeypatch):
    """A node_dim that does not fit name or KGE node features is refused before the table is
    computed (embedding every concept name or training TransE can take many CPU-minutes)."""
    from kgfuse.tasks.pipeline import build_model, load_graph

    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path / "home"))
    d = data_dir()
    base = {"graph": {"path": str(d / "sample_kg/assertions.csv")}}
    graph = load_graph(TrainConfig.from_dict(base).graph)

    def model(**options):
        cfg = TrainConfig.from_dict({**base, "model": {"options": {"text_config": TINY, "num_fusion_layers": 1,
                                                                   "graph_hidden_dim": 16, **options}}})
        return build_model(cfg.model, graph)

    with pytest.raises(ConfigError, match=r"node_dim is 16, but node_features \{kge: transe\} gives 12-dimensional "
                                          r"node features \(its 'dim'\): set node_dim: 12, leave node_dim out, or set "
                                          r"node_features.dim: 16"):
        model(node_dim=16, node_features={"kge": "transe", "dim": 12, "epochs": 2})
    assert not (tmp_path / "home" / "cache" / "kge").exists()  # nothing was trained
    with pytest.raises(ConfigError, match=r"node_dim is 100, but node_features \{kge: transe\} gives 50"):
        model(node_dim=100, node_features={"kge": "transe", "dim": 50})
    with pytest.raises(ConfigError, match=r"node_dim is 16, but node_features 'name' gives 32-dimensional node "
                                          r"features \(the text encoder's width\)"):
        model(node_dim=16, node_features="name")
    # a matching node_dim, or none, is accepted; learned features take any node_dim
    m, _ = model(node_dim=12, node_features={"kge": "transe", "dim": 12, "epochs": 1, "batch_size": 64})
    assert m.config.node_dim == 12 and m.config.node_feature_kind == "kge"
    m, _ = model(node_dim=24, node_features="learned")
    assert m.config.node_dim == 24


def test_name_node_features_from_a_config_are_cached(tmp_path, monkeypatch):
    """model.options.node_features: name embeds every concept name with the shipped MiniLM,
    once: the table is cached under $KGFUSE_HOME/cache/names and the node table starts from it."""
    from kgfuse.encoders.names import concept_name_embeddings
    from kgfuse.tasks.pipeline import build_model, load_graph

    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path / "home"))
    d = data_dir()
    cfg = TrainConfig.from_dict({"graph": {"path": str(d / "sample_kg/assertions.csv")},
                                 "model": {"options": {"num_fusion_layers": 1, "graph_hidden_dim": 16,
                                                       "node_features": "name"}}})
    graph = load_graph(cfg.graph)
    model, _ = build_model(cfg.model, graph)
    cached = sorted((tmp_path / "home" / "cache" / "names").glob("names-*.safetensors"))
    assert len(cached) == 1 and model.config.node_dim == 384 and model.config.node_feature_kind == "name"
    ref = concept_name_embeddings(graph)  # computed again, no cache
    assert torch.allclose(model.node_embeddings.weight.detach(), ref, atol=1e-5)
    stamp = cached[0].stat().st_mtime_ns
    build_model(cfg.model, graph)  # a second model reads the table instead of embedding again
    assert cached[0].stat().st_mtime_ns == stamp
    # the shipped MiniLM is 384 wide: another node_dim is refused before any embedding
    bad = TrainConfig.from_dict({"graph": {"path": str(d / "sample_kg/assertions.csv")},
                                 "model": {"options": {"node_dim": 100, "node_features": "name"}}})
    with pytest.raises(ConfigError, match="node_dim is 100, but node_features 'name' gives 384-dimensional"):
        build_model(bad.model, graph)
