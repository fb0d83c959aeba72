"""KGFusedForMultipleChoice.predict on raw text: a tiny model trained and saved through the real
pipeline (bundled sample KG + questions, real linker and retriever) answers with the graph, linker
and retriever recorded in its folder, exactly like KGFusePredictor."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoModelForMultipleChoice

from kgfuse.fusion import KGFusedForMultipleChoice, KGFusedForPreTraining
from kgfuse.fusion.modeling import ModelLoadError
from kgfuse.integrity import write_model_manifest
from kgfuse.tasks.cli import data_dir
from kgfuse.tasks.inference import GraphMismatchError, KGFusePredictor, Prediction


@pytest.fixture()
def model_dir(trained_run):
    """The exported model of the session's tiny run (tests/conftest.py); copy it before changing it."""
    _, res = trained_run
    return res.output_dir / "model"


def _first_dev(n: int = 0):
    from kgfuse.tasks.datasets import load_examples

    exs, _ = load_examples(data_dir() / "sample_csqa/dev.jsonl")
    return exs[n]


def test_predict_uses_the_recorded_pipeline(model_dir):
    ex = _first_dev()
    model = KGFusedForMultipleChoice.from_pretrained(model_dir)
    p = KGFusePredictor.for_loaded_model(model)
    out = p.predict(ex.question, ex.choices)
    assert isinstance(out, Prediction) and len(out.scores) == len(ex.choices)
    assert out.choice == ex.choices[out.predicted] and abs(sum(out.probs) - 1) < 1e-5
    ref = KGFusePredictor.from_pretrained(model_dir).predict(ex.question, ex.choices)
    assert out.scores == pytest.approx(ref.scores, abs=1e-6)
    assert out.explanation == ref.explanation and out.explanation and "--" in out.explanation[0]
    assert out.concepts == ref.concepts == {"question": ["toothbrush"], "answer": [out.choice]}
    saved = json.loads((model_dir.parent / "predictions-dev.jsonl").read_text().splitlines()[0])
    assert out.scores == pytest.approx(saved["scores"], abs=1e-4)

    assert p.model is model and p.graph.hash == model.config.graph_hash  # wraps this very model
    # the predictor scores with the in-memory weights (no reload): a zero scorer gives its bias
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(0.25)
    assert p.predict(ex.question, ex.choices).scores == pytest.approx([0.25] * len(ex.choices))
    with pytest.raises(ValueError, match="at least two"):
        p.predict(ex.question, ["one"])


def test_predict_through_the_auto_class_and_a_given_graph(model_dir):
    from kgfuse.kg import KnowledgeGraph

    ex = _first_dev(1)
    model = AutoModelForMultipleChoice.from_pretrained(model_dir)
    ref = KGFusePredictor.from_pretrained(model_dir).predict(ex.question, ex.choices)
    p = KGFusePredictor.for_loaded_model(model)
    assert p.predict(ex.question, ex.choices).scores == pytest.approx(ref.scores, abs=1e-6)
    # the same graph given explicitly: same answers
    p2 = KGFusePredictor.for_loaded_model(model, graph=data_dir() / "sample_kg/assertions.csv")
    assert p2.graph.hash == p.graph.hash
    assert p2.predict(ex.question, ex.choices).scores == pytest.approx(ref.scores, abs=1e-6)
    other = KnowledgeGraph(["a", "b"], ["r"], [0], [0], [1])
    with pytest.raises(GraphMismatchError, match="hash"):
        KGFusePredictor.for_loaded_model(model, graph=other)


def test_clear_errors_without_a_trained_model_folder(model_dir, tmp_path, tiny_bert):
    ex = _first_dev()
    fresh = KGFusedForMultipleChoice.from_text_config(dict(tiny_bert, model_type="bert", vocab_size=99), num_concepts=5,
                                                      num_relations=2, node_dim=8, graph_hidden_dim=8)
    with pytest.raises(ValueError, match=r"not loaded from a saved folder.*KGFusePredictor\.from_pretrained\(folder, graph="):
        KGFusePredictor.for_loaded_model(fresh)
    # saved with save_pretrained only: no pipeline file
    fresh.save_pretrained(tmp_path / "bare")
    bare = KGFusedForMultipleChoice.from_pretrained(tmp_path / "bare")
    with pytest.raises(ValueError, match="has no kgfuse_pipeline.json"):
        KGFusePredictor.for_loaded_model(bare)
    # the recorded graph moved away: the error says to pass graph=
    moved = tmp_path / "moved"
    shutil.copytree(model_dir, moved)
    info = json.loads((moved / "kgfuse_pipeline.json").read_text())
    info["graph"]["path"] = str(tmp_path / "gone.csv")
    (moved / "kgfuse_pipeline.json").write_text(json.dumps(info))
    # the manifest records the pipeline file: an edited one is refused until re-recorded
    with pytest.raises(ModelLoadError, match="kgfuse_pipeline.json"):
        KGFusedForMultipleChoice.from_pretrained(moved)
    write_model_manifest(moved)
    m = KGFusedForMultipleChoice.from_pretrained(moved)
    with pytest.raises(FileNotFoundError, match="pass graph="):
        KGFusePredictor.for_loaded_model(m)
    ref = KGFusePredictor.from_pretrained(model_dir).predict(ex.question, ex.choices)
    got = KGFusePredictor.for_loaded_model(m, graph=data_dir() / "sample_kg/assertions.csv").predict(ex.question, ex.choices)
    assert got.scores == pytest.approx(ref.scores, abs=1e-6) and got.explanation == ref.explanation
    # raw-text inference lives in tasks/, not on the model classes
    assert not hasattr(KGFusedForMultipleChoice, "predict") and not hasattr(KGFusedForPreTraining, "predict")
