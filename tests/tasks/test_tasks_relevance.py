"""QA-GNN relevance scoring from a config: relevance-ranked subgraphs, the score as a QA-GNN
node feature, recorded with the model so that inference on raw text ranks the same way."""

from __future__ import annotations

import pytest
import torch

from kgfuse.tasks.cli import data_dir
from kgfuse.tasks.config import ConfigError, TrainConfig
from kgfuse.tasks.train import train

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}


def _cfg(tmp_path, *, retriever=None, kwargs=None, **model):
    d = data_dir()
    return TrainConfig.from_dict({
        "data": {"format": "csqa", "train": str(d / "sample_csqa/train.jsonl"), "dev": str(d / "sample_csqa/dev.jsonl"),
                 "max_train": 16},
        "graph": {"path": str(d / "sample_kg/assertions.csv")},
        "retriever": retriever or {"type": "subgraph", "max_nodes": 6, "ranking": "relevance"},
        "model": {"options": {"text_config": TINY, "graph_encoder": "qagnn", "num_fusion_layers": 1, "node_dim": 16,
                              "graph_hidden_dim": 16,
                              "graph_encoder_kwargs": kwargs if kwargs is not None else {"use_node_score": True}},
                  **model},
        "train": {"epochs": 1, "batch_size": 8, "max_length": 40, "mixed_precision": "no"},
        "output_dir": str(tmp_path / "run"), "cache_dir": str(tmp_path / "cache"),
    })


def test_relevance_ranked_run_trains_the_score_feature_and_predicts_on_raw_text(tmp_path):
    from kgfuse.tasks.inference import KGFusePredictor
    from kgfuse.tasks.pipeline import build_run

    cfg = _cfg(tmp_path)
    run = build_run(cfg, progress=False)
    assert run.retriever.config["ranking"] == "relevance" and run.retriever.config["scorer"]
    # every statement's subgraph carries one score per node, in [-1, 1]
    pre = run.datasets["train"].pre
    arrays = [pre.arrays(i, j) for i in range(len(pre)) for j in range(pre.num_choices(i))]
    scored = [a for a in arrays if a is not None and a["concept_ids"].size]
    assert scored and all(a["node_score"].shape == a["concept_ids"].shape for a in scored)
    assert all(-1.0 <= float(a["node_score"].min()) and float(a["node_score"].max()) <= 1.0 for a in scored)
    before = {k: v.clone() for k, v in run.model.state_dict().items() if "score_emb" in k}
    assert before, "the QA-GNN encoder has no score parameters"

    res = train(cfg, progress=False)
    after = {k: v for k, v in res.model.state_dict().items() if "score_emb" in k}
    assert any(not torch.equal(before[k], after[k]) for k in before), "the score feature got no gradient"
    pred = KGFusePredictor.from_pretrained(res.output_dir / "model")
    assert pred.retriever.config == run.retriever.config
    p = pred.predict("Where would you put a plate after washing it?", ["cupboard", "oven", "floor"])
    assert len(p.scores) == 3
    # a recorded retriever that the settings no longer rebuild (here: another node budget) is refused
    import json
    import shutil

    from kgfuse.integrity import write_model_manifest
    from kgfuse.tasks.pipeline import PIPELINE_FILE

    other = tmp_path / "other"
    shutil.copytree(res.output_dir / "model", other)
    info = json.loads((other / PIPELINE_FILE).read_text())
    info["retriever"]["options"]["max_nodes"] = 5
    (other / PIPELINE_FILE).write_text(json.dumps(info))
    write_model_manifest(other)
    with pytest.raises(ValueError, match=r"differs from the one the model was trained with in \['max_nodes'\] "
                                         r"\(recorded \[6\], built \[5\]\)"):
        KGFusePredictor.from_pretrained(other)


@pytest.mark.parametrize("change, message", [
    ({"retriever": {"type": "subgraph", "max_nodes": 6}}, "retriever.ranking must be relevance"),
    ({"retriever": {"type": "path", "max_hops": 2}}, "retriever.type must be subgraph"),
    ({"lm_only": True}, "model.lm_only must be false"),
    ({"graph_input": "none"}, "model.graph_input must be not none"),
])
def test_node_score_feature_needs_relevance_subgraphs(tmp_path, change, message):
    from kgfuse.tasks.config import validate_config

    with pytest.raises(ConfigError, match=message):
        validate_config(_cfg(tmp_path, **change), "cfg.yaml")


def test_relevance_ranking_without_the_score_feature_is_valid(tmp_path):
    from kgfuse.tasks.config import validate_config

    validate_config(_cfg(tmp_path, kwargs={}), "cfg.yaml")
