"""Retrieved training examples as knowledge text (``knowledge_text.examples``): BM25 ranking,
a question never retrieving itself, the saved examples file, and a tiny end-to-end run whose
predictor retrieves the same examples on raw text. Real tokenizer, linker and models."""

from __future__ import annotations

import json
import pickle

import pytest

from kgfuse.tasks.data_types import DataFormatError, MCExample
from kgfuse.tasks.retrieved_examples import EXAMPLES_FILE, ExampleRetriever, example_terms


def _ex(i, q, answer, label=0):
    return MCExample(id=f"q{i}", question=q, choices=[answer, "other"], label=label)


BANK = [
    _ex(0, "Where would you put a plate after drying it?", "cupboard"),
    _ex(1, "Where do you keep a toothbrush?", "bathroom"),
    _ex(2, "Where would you put a dirty plate?", "sink"),
    _ex(3, "What do you use to cut bread?", "knife"),
    _ex(4, "Where would you put a plate after drying it?", "shelf"),  # same text as q0
    MCExample(id="q5", question="Where would you put a plate?", choices=["a", "b"], label=None),  # unlabelled
]


def test_terms_drop_stop_words_and_case():
    assert example_terms("Where would YOU put a Plate, after drying it?") == ["would", "put", "plate", "drying"]


def test_bm25_ranks_by_shared_rare_words_and_skips_unlabelled():
    r = ExampleRetriever(BANK, k=2)
    assert len(r) == 5  # the unlabelled question is not indexed
    s = r.scores("Where should a plate go when it is dirty?")
    # q2 shares "plate" and "dirty" (rare), q0/q4 only "plate"; q1 and q3 nothing
    assert s[2] > s[0] == s[4] > 0 and 1 not in s and 3 not in s
    assert r.units("Where should a plate go when it is dirty?") == [
        "Where would you put a dirty plate? sink.", "Where would you put a plate after drying it? cupboard."]
    # a longer question dilutes a term (length normalisation b)
    long_q = ExampleRetriever([("a", "plate " + "word " * 20, "x"), ("b", "plate", "y")], k=2)
    assert long_q.scores("plate")[1] > long_q.scores("plate")[0]
    assert ExampleRetriever(BANK, k=1).units("nothing in common here zzz") == []


def test_a_question_never_retrieves_itself_nor_a_copy_of_itself():
    r = ExampleRetriever(BANK, k=3)
    got = r.retrieve("Where would you put a plate after drying it?", "q0")
    # neither q0 (its id) nor q4 (its text): a training question cannot read its own answer
    assert 0 not in got and 4 not in got and got[0] == 2
    # by id even when the text differs, and by text even without an id (raw-text inference)
    assert 2 not in r.retrieve("Where would you put a dirty plate today?", "q2")
    assert 0 not in r.retrieve("where would you put a plate  after drying it?") and 4 not in r.retrieve(
        "where would you put a plate  after drying it?")
    # two records with one question text are retrieved once
    other = r.retrieve("plate after drying", None)
    assert not {0, 4} <= set(other)


def test_save_load_hash_and_pickle(tmp_path):
    r = ExampleRetriever(BANK, k=2)
    p = r.save(tmp_path / EXAMPLES_FILE)
    back = ExampleRetriever.load(p, k=2)
    assert back.records == r.records and back.content_hash == r.content_hash == r.config["hash"]
    q = "Where should a plate go when it is dirty?"
    assert back.units(q) == r.units(q)
    assert ExampleRetriever(BANK[:3], k=2).content_hash != r.content_hash
    clone = pickle.loads(pickle.dumps(r))  # data-loader workers
    assert clone.units(q) == r.units(q)
    p.write_text('{"id": "a", "question": "q?", "answer": "x"}\n{"id": "b", "question": 3, "answer": "y"}\n')
    with pytest.raises(DataFormatError, match=r"knowledge_examples.jsonl, line 2, id 'b', field 'question'"):
        ExampleRetriever.load(p)
    with pytest.raises(ValueError, match="k must be >= 1"):
        ExampleRetriever(BANK, k=0)


def test_config_section(tmp_path, tiny_config):
    from kgfuse.tasks.config import ConfigError

    cfg = tiny_config(tmp_path / "o", tmp_path / "c")
    assert cfg.knowledge_text.examples == 0
    on = cfg.with_overrides(["knowledge_text.enabled=true", "knowledge_text.triples=0", "knowledge_text.definitions=none",
                             "knowledge_text.examples=2"])
    assert on.knowledge_text.examples == 2  # examples alone are knowledge enough
    with pytest.raises(ConfigError, match="knowledge_text.examples must be >= 0"):
        cfg.with_overrides(["knowledge_text.examples=-1"])


@pytest.fixture(scope="module")
def examples_run(tmp_path_factory, tiny_config):
    from kgfuse.tasks.config import TrainConfig
    from kgfuse.tasks.train import train

    root = tmp_path_factory.mktemp("examples")
    d = tiny_config(root / "run", root / "cache", epochs=1, max_length=64).to_dict()
    d["model"]["lm_only"] = True
    d["knowledge_text"] = {"enabled": True, "triples": 1, "definitions": "none", "examples": 2}
    return train(TrainConfig.from_dict(d), progress=False)


def test_train_with_examples_and_predict_on_raw_text(examples_run, tmp_path):
    import shutil

    from kgfuse.tasks.cli import data_dir
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.inference import KGFusePredictor

    res = examples_run
    model_dir = res.output_dir / "model"
    info = json.loads((model_dir / "kgfuse_pipeline.json").read_text())["knowledge_text"]
    train_exs, _ = load_examples(data_dir() / "sample_csqa/train.jsonl")
    saved_examples = ExampleRetriever.load(model_dir / EXAMPLES_FILE, k=2)
    assert len(saved_examples) == len(train_exs) and info["examples"]["hash"] == saved_examples.content_hash
    assert info["options"]["examples"] == 2 and info["examples"]["k"] == 2

    p = KGFusePredictor.from_pretrained(model_dir)
    assert p.example_retriever is not None and p.example_retriever.content_hash == saved_examples.content_hash
    dev, _ = load_examples(data_dir() / "sample_csqa/dev.jsonl")
    saved = [json.loads(l) for l in (res.output_dir / "predictions-dev.jsonl").read_text().splitlines()]
    j = max(range(len(dev)), key=lambda i: len(saved_examples.units(dev[i].question)))
    ex = dev[j]
    out = p.predict(ex.question, ex.choices)
    assert out.scores == pytest.approx(saved[j]["scores"], abs=1e-4)  # the run's input, rebuilt from raw text
    want = saved_examples.units(ex.question)
    assert len(want) == 2 and all(want[0] in k and want[1] in k for k in out.knowledge_per_choice)  # every choice
    # a training item never reads its own question
    from kgfuse.tasks.config import TrainConfig
    from kgfuse.tasks.pipeline import build_run

    run = build_run(TrainConfig.from_file(res.output_dir / "config.yaml"), progress=False)
    for i, tex in enumerate(run.examples["train"]):
        own = f"{' '.join(tex.question.split())} "
        assert not any(k.startswith(own) or f" {own}" in k for k in run.datasets["train"][i]["knowledge"]), tex.id
    # the examples file belongs to the model: missing or changed, loading says so
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / EXAMPLES_FILE).write_text((copy / EXAMPLES_FILE).read_text().replace("?", "!", 1))
    with pytest.raises(ValueError, match="holds other examples"):
        KGFusePredictor.from_pretrained(copy, verify=False)
    (copy / EXAMPLES_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="knowledge_text.examples=2"):
        KGFusePredictor.from_pretrained(copy, verify=False)


def test_knowledge_input_views_split_facts_from_examples(examples_run):
    """A model trained with one fact and two examples: ``examples`` keeps only the examples,
    ``triples`` only the fact sentences; the saved model folder keeps its examples."""
    from kgfuse.tasks.cli import data_dir
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.inference import KGFusePredictor

    model_dir = examples_run.output_dir / "model"
    p = KGFusePredictor.from_pretrained(model_dir)
    assert p.knowledge_parts == ["triples", "examples"]
    dev, _ = load_examples(data_dir() / "sample_csqa/dev.jsonl")
    ex = max(dev, key=lambda e: len(p.example_retriever.units(e.question)))
    want = p.example_retriever.units(ex.question)
    full = p.predict(ex.question, ex.choices)
    p.knowledge_input = "examples"
    only_examples = p.predict(ex.question, ex.choices)
    assert all(k == " ".join(want) for k in only_examples.knowledge_per_choice)
    p.knowledge_input = "triples"
    only_facts = p.predict(ex.question, ex.choices)
    pairs = p._pairs(ex.question, ex.choices)
    for k, (g, d) in zip(only_facts.knowledge_per_choice, pairs):
        assert k == " ".join(p.verbalizer(g, d)) and not any(u in k for u in want)
    assert only_facts.scores != pytest.approx(full.scores, abs=1e-6)
    assert only_examples.scores != pytest.approx(full.scores, abs=1e-6)
    with pytest.raises(ValueError, match="has no definitions"):
        p.knowledge_input = "definitions"
    assert p.knowledge_input == "triples"  # a refused view leaves the one set before
    # saving an ablated predictor writes the model as trained, examples included
    out = p.save_pretrained(examples_run.output_dir / "resaved")
    assert KGFusePredictor.from_pretrained(out).predict(ex.question, ex.choices).scores == pytest.approx(full.scores, abs=1e-6)
