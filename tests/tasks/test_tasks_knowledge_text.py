"""Knowledge as text in the model input: the ``knowledge_text`` config section, the
``[CLS] question [SEP] choice [SEP] knowledge [SEP]`` features (pair never cut, alignments
unchanged), the saved pipeline, and tiny end-to-end runs (LM only and fused) whose predictor
rebuilds the same input on raw text. Real linker, retriever, tokenizers and models."""

from __future__ import annotations

import json

import pytest
import yaml

from kgfuse.tasks.cli import data_dir
from kgfuse.tasks.config import ConfigError, TrainConfig



@pytest.fixture(scope="module")
def tok():
    from kgfuse.encoders.text import load_tokenizer

    return load_tokenizer("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def sample():
    """Graph, linker, retriever and dev examples of the bundled sample."""
    from kgfuse.kg import KnowledgeGraph
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.pipeline import build_linker, build_retriever

    d = data_dir()
    kg = KnowledgeGraph.from_conceptnet(d / "sample_kg/assertions.csv")
    exs, _ = load_examples(d / "sample_csqa/dev.jsonl")
    return kg, build_linker(kg), build_retriever(kg, {"type": "path", "max_hops": 2, "max_paths": 10}), exs


@pytest.fixture(scope="module")
def defs_file(tmp_path_factory, sample):
    """A definitions file for every concept of the sample graph (no WordNet needed)."""
    kg = sample[0]
    p = tmp_path_factory.mktemp("defs") / "defs.json"
    p.write_text(json.dumps({c: f"the thing called {c.replace('_', ' ')}" for c in kg.concepts}))
    return p


def _with_knowledge(cfg: TrainConfig, **section) -> TrainConfig:
    d = cfg.to_dict()
    d["knowledge_text"] = {"enabled": True, **section}
    return TrainConfig.from_dict(d, base_dir=cfg.base_dir)


# ---------------------------------------------------------------- config
def test_config_section_typed_checked_and_off_by_default(tmp_path, defs_file, tiny_config):
    cfg = tiny_config(tmp_path / "o", tmp_path / "c")
    assert cfg.knowledge_text.enabled is False
    on = cfg.with_overrides(["knowledge_text.enabled=true", "knowledge_text.triples=2", "knowledge_text.definitions=all"])
    assert (on.knowledge_text.enabled, on.knowledge_text.triples, on.knowledge_text.definitions) == (True, 2, "all")
    bad = {
        "tripels": r"unknown key 'knowledge_text.tripels'.*did you mean 'triples'",
        "definitions=some": "knowledge_text.definitions must be one of",
        "templates=merged17": "knowledge_text.templates must be a template preset",
        "definition_source=wikipedia": "knowledge_text.definition_source must be one of",
        "max_tokens=0": "knowledge_text.max_tokens must be >= 1",
        "triples=-1": "knowledge_text.triples must be >= 0",
        "enabled=maybe": "knowledge_text.enabled must be true/false",
    }
    for ov, msg in bad.items():
        if "=" not in ov:
            ov += "=1"
        with pytest.raises(ConfigError, match=msg):
            cfg.with_overrides([f"knowledge_text.{ov}"])
    with pytest.raises(ConfigError, match="adds nothing"):
        cfg.with_overrides(["knowledge_text.enabled=true", "knowledge_text.triples=0", "knowledge_text.definitions=none"])
    # a YAML file: a relative definitions file is resolved against the file's folder
    (tmp_path / "defs.tsv").write_text("plate\ta flat dish\n")
    (tmp_path / "c.yaml").write_text("knowledge_text: {enabled: true, definition_source: defs.tsv, max_tokens: null}\n")
    c = TrainConfig.from_file(tmp_path / "c.yaml")
    assert c.knowledge_text.max_tokens is None
    assert c.resolved().knowledge_text.definition_source == str(tmp_path / "defs.tsv")


def test_pipeline_info_records_the_verbaliser_settings(tmp_path, sample, defs_file, tiny_config):
    from kgfuse.tasks.pipeline import build_verbalizer, default_output_dir, pipeline_info

    kg = sample[0]
    base = tiny_config(tmp_path / "o", tmp_path / "c")

    def info(cfg):
        v = build_verbalizer(kg, cfg.knowledge_text, None, base_dir=cfg.base_dir)
        return pipeline_info(cfg, kg, None, None, v)["knowledge_text"]

    a = _with_knowledge(base, triples=3, definition_source=str(defs_file))
    b = _with_knowledge(base, triples=4, definition_source=str(defs_file))
    assert info(base) is None
    ia, ib = info(a), info(b)
    assert ia["options"]["triples"] == 3 and ia["config"]["triples"] == 3 and ia != ib
    assert ia["config"]["definition_source"]["path"] == str(defs_file)
    assert len({str(default_output_dir(c)) for c in (base, a, b)}) == 3
    # the definitions file's content is part of what is recorded
    local = tmp_path / "defs.json"
    local.write_text(json.dumps({"plate": "a flat dish"}))
    c = _with_knowledge(base, definition_source=str(local))
    before = info(c)
    local.write_text(json.dumps({"plate": "a round dish"}))
    assert info(c)["config"]["definition_source"]["sha256"] != before["config"]["definition_source"]["sha256"]
    assert build_verbalizer(kg, base.knowledge_text, None) is None


# ---------------------------------------------------------------- features
def _pairs(sample, ex):
    kg, linker, retriever, _ = sample
    out = []
    for c in ex.choices:
        g = linker.ground(ex.question, c)
        out.append((g, retriever(g)))
    return out


def _split(seq_plain, n_added):
    """Positions of the inserted knowledge: right after the last choice token."""
    at = max(i for i, s in enumerate(seq_plain) if s == 1) + 1
    return at, at + n_added


def test_alignments_identical_with_and_without_knowledge(sample, tok, defs_file):
    from kgfuse.kg.verbalize import Verbalizer
    from kgfuse.tasks.features import AlignmentStats, build_features

    kg, _, _, exs = sample
    v = Verbalizer(kg, triples=5, definitions="all", definition_source=str(defs_file), max_tokens=None, tokenizer=tok)
    added = aligned = 0
    for ex in exs:
        pairs = _pairs(sample, ex)
        gs, ds = [g for g, _ in pairs], [d for _, d in pairs]
        s0, s1 = AlignmentStats(), AlignmentStats()
        plain = build_features(ex.question, ex.choices, gs, ds, tok, max_length=64, stats=s0)
        know = build_features(ex.question, ex.choices, gs, ds, tok, max_length=64, stats=s1,
                              knowledge=[v(g, d) for g, d in pairs])
        assert s0.to_dict() == s1.to_dict()
        for j, choice in enumerate(ex.choices):
            p_ids, k_ids = plain["input_ids"][j], know["input_ids"][j]
            n = len(k_ids) - len(p_ids)
            assert len(k_ids) <= 64 and n >= 0
            seq = tok(ex.question, choice).sequence_ids()
            a, b = _split(seq, n)
            assert k_ids[:a] == p_ids[:a] and k_ids[b:] == p_ids[a:]
            pe, ke = plain["entity_local"][j], know["entity_local"][j]
            assert ke[:a] + ke[b:] == pe and set(ke[a:b]) <= {-1}
            assert know["token_type_ids"][j][a:b] == [1] * n and know["attention_mask"][j] == [1] * len(k_ids)
            if n:
                added += 1
                kept = know["knowledge"][j]
                # [SEP] then the kept sentences, tokenised on their own
                assert k_ids[a:b] == [tok.sep_token_id] + tok(kept, add_special_tokens=False)["input_ids"]
            else:
                assert know["knowledge"][j] == ""
            aligned += sum(1 for e in pe if e >= 0)
    assert added >= len(exs) and aligned > 0


def test_budget_never_cuts_the_question_or_the_choice(sample, tok, defs_file):
    from kgfuse.kg.verbalize import Verbalizer
    from kgfuse.tasks.features import build_features

    kg, _, _, exs = sample
    ex = exs[0]  # Where do you keep a toothbrush? ... bathroom
    pairs = _pairs(sample, ex)
    gs, ds = [g for g, _ in pairs], [d for _, d in pairs]
    units = [Verbalizer(kg, triples=5, definitions="all", definition_source=str(defs_file), max_tokens=None)(g, d)
             for g, d in pairs]
    assert any(len(u) >= 2 for u in units)
    pair_len = [len(tok(ex.question, c)["input_ids"]) for c in ex.choices]
    cut = 0
    for L in (max(pair_len) + 6, max(pair_len) + 12, 48):
        plain = build_features(ex.question, ex.choices, gs, ds, tok, max_length=L)
        know = build_features(ex.question, ex.choices, gs, ds, tok, max_length=L, knowledge=units)
        for j in range(len(ex.choices)):
            ids = know["input_ids"][j]
            assert len(ids) <= L and ids[:pair_len[j] - 1] == plain["input_ids"][j][:pair_len[j] - 1]
            kept = know["knowledge"][j]
            kept_units = [u for u in units[j] if u in kept]
            assert " ".join(kept_units) == kept  # whole sentences, in order
            assert ids[pair_len[j]:-1] == tok(kept, add_special_tokens=False)["input_ids"]
            cut += len(kept_units) < len(units[j])
    assert cut > 0
    # a pair longer than max_length is cut as without knowledge, and gets none
    long_q = ex.question + " " + " ".join(["toothbrush"] * 40)
    plain = build_features(long_q, ex.choices, gs, ds, tok, max_length=24)
    know = build_features(long_q, ex.choices, gs, ds, tok, max_length=24, knowledge=units)
    assert know["input_ids"] == plain["input_ids"] and know["knowledge"] == [""] * len(ex.choices)
    assert know["entity_local"] == plain["entity_local"]


def test_no_retrieved_knowledge_gives_the_plain_input(sample, tok):
    from kgfuse.kg.linking import Grounding
    from kgfuse.kg.verbalize import Verbalizer
    from kgfuse.tasks.features import MultipleChoiceCollator, build_features
    from kgfuse.tasks.pipeline import _empty_kgdata

    kg, _, _, exs = sample
    ex = exs[0]
    v = Verbalizer(kg, triples=5, definitions="none", max_tokens=None, tokenizer=tok)
    gs = [Grounding() for _ in ex.choices]
    ds = [_empty_kgdata() for _ in ex.choices]
    knowledge = [v(g, d) for g, d in zip(gs, ds)]
    assert knowledge == [[]] * len(ex.choices)
    plain = build_features(ex.question, ex.choices, gs, ds, tok, max_length=64)
    know = build_features(ex.question, ex.choices, gs, ds, tok, max_length=64, knowledge=knowledge)
    assert know.pop("knowledge") == [""] * len(ex.choices)
    assert {k: know[k] for k in ("input_ids", "attention_mask", "token_type_ids", "entity_local")} == \
        {k: plain[k] for k in ("input_ids", "attention_mask", "token_type_ids", "entity_local")}
    # the collator tokenises raw features with knowledge the same way
    coll = MultipleChoiceCollator(tok, max_length=64)
    pairs = _pairs(sample, ex)
    raw = {"question": ex.question, "choices": ex.choices, "groundings": [g for g, _ in pairs],
           "subgraphs": [d for _, d in pairs], "knowledge": [["toothbrush is found at bathroom."]] * len(ex.choices)}
    a = coll([raw])
    b = coll([build_features(ex.question, ex.choices, raw["groundings"], raw["subgraphs"], tok, max_length=64,
                             knowledge=raw["knowledge"])])
    assert all(bool((a[k] == b[k]).all()) for k in a)
    assert a["input_ids"].shape[-1] > coll([{k: v for k, v in raw.items() if k != "knowledge"}])["input_ids"].shape[-1]


def test_roberta_style_separators(tmp_path):
    from transformers import RobertaTokenizerFast

    from kgfuse.tasks.features import append_knowledge

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in list("abcdefghijklmnopqrstuvwxyz.?") + ["Ġ"]:
        vocab.setdefault(ch, len(vocab))
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    rt = RobertaTokenizerFast(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    enc = rt("where is a plate?", "cupboard")
    ids, mask, tt, kept = append_knowledge(enc, ["plate is at cupboard."], rt, None)
    toks = rt.convert_ids_to_tokens(ids)
    n = len(enc["input_ids"])
    assert toks[:n - 1] == rt.convert_ids_to_tokens(enc["input_ids"])[:n - 1]
    assert toks[n - 1:n + 1] == ["</s>", "</s>"] and toks[-1] == "</s>" and kept == "plate is at cupboard."
    assert "".join(toks[n + 1:-1]).replace("Ġ", " ") == kept and tt is None and len(mask) == len(ids)
    ids2, _, _, kept2 = append_knowledge(enc, ["plate is at cupboard."], rt, n + 2)  # no room for the sentence
    assert ids2 == list(enc["input_ids"]) and kept2 == ""


def test_users_triples_graph_with_lm_only(tmp_path, tiny_config):
    """A user's graph with its own relation names: default templates, linking and retrieval
    run for the text of an LM-only model (empty graph inputs)."""
    from kgfuse.tasks.pipeline import build_run

    (tmp_path / "g.tsv").write_text("toothbrush\tkept_in\tbathroom\nbaby\tisAbleTo\tcry\nplate\tstored_in\tcupboard\n")
    cfg = tiny_config(tmp_path / "o", tmp_path / "c", max_length=64)
    d = cfg.to_dict()
    d["graph"] = {"path": str(tmp_path / "g.tsv"), "format": "table", "options": {}}
    d["model"]["lm_only"] = True
    d["data"]["max_train"] = 4
    d["knowledge_text"] = {"enabled": True, "triples": 2, "definitions": "none"}
    run = build_run(TrainConfig.from_dict(d), progress=False)
    assert run.linker is not None and run.verbalizer is not None
    item = run.datasets["dev"][0]  # Where do you keep a toothbrush? (B: bathroom)
    assert item["knowledge"][1] == "toothbrush kept in bathroom." and item["knowledge"][0] == ""
    assert all(e == -1 for row in item["entity_local"] for e in row)  # the LM gets no graph
    assert all(int(g.num_nodes) == 0 for g in item["graphs"])
    assert run.datasets["dev"].pairs(0)[1][1].num_nodes > 0  # but retrieval ran
    info = run.pipeline_info()
    assert info["knowledge_text"]["options"]["definitions"] == "none" and info["lm_only"] is True


# ---------------------------------------------------------------- end to end
def _train(tiny_config, root, lm_only: bool, defs_file):
    from kgfuse.tasks.train import train

    cfg = tiny_config(root / "run", root / "cache", epochs=1, max_length=64)
    cfg.model.lm_only = lm_only
    cfg.train.group_by_length = not lm_only  # the fused run also batches real features by length
    cfg = _with_knowledge(cfg, triples=3, definitions="answer", definition_source=str(defs_file), max_tokens=32)
    return train(cfg, progress=False)


@pytest.fixture(scope="module", params=[True, False], ids=["lm_only", "fused"])
def trained(request, tmp_path_factory, defs_file, tiny_config):
    return request.param, _train(tiny_config, tmp_path_factory.mktemp("kt"), request.param, defs_file)


def test_train_and_predict_with_knowledge_text(trained, sample):
    from kgfuse.tasks.inference import KGFusePredictor

    lm_only, res = trained
    assert res.model.config.use_graph is (not lm_only)
    assert yaml.safe_load((res.output_dir / "config.yaml").read_text())["train"]["group_by_length"] is (not lm_only)
    info = json.loads((res.output_dir / "model/kgfuse_pipeline.json").read_text())
    kt = info["knowledge_text"]
    assert kt["options"]["enabled"] and kt["options"]["triples"] == 3 and kt["config"]["max_tokens"] == 32
    assert kt["config"]["templates"]["name"] == "relation_templates"
    saved = [json.loads(l) for l in (res.output_dir / "predictions-dev.jsonl").read_text().splitlines()]
    assert sum(1 for r in saved if r["explanation"]) >= 6  # retrieval ran, also for the LM-only model

    p = KGFusePredictor.from_pretrained(res.output_dir / "model")
    assert p.verbalizer is not None and p.linker is not None and p.uses_graph is (not lm_only)
    ex = sample[3][0]  # Where do you keep a toothbrush?
    out = p.predict(ex.question, ex.choices)
    # raw text is given the input of the run: same scores
    assert out.scores == pytest.approx(saved[0]["scores"], abs=1e-4)
    assert "toothbrush is found at bathroom." in out.knowledge_per_choice[1]
    assert "bathroom: the thing called bathroom." in out.knowledge_per_choice[1]
    assert out.knowledge == out.knowledge_per_choice[out.predicted] == p.knowledge_text(ex.question, out.choice)
    assert out.to_dict()["knowledge"] == out.knowledge
    # the knowledge reaches the model: without it the scores change
    v, p.verbalizer = p.verbalizer, None
    try:
        assert p.predict(ex.question, ex.choices).scores != pytest.approx(out.scores, abs=1e-6)
        assert p.knowledge_text(ex.question, out.choice) == ""
    finally:
        p.verbalizer = v
    # the predictor's dataset (what evaluating a saved model iterates) holds the same input
    ds = p.dataset(sample[3])
    assert ds[0]["knowledge"] == out.knowledge_per_choice


def test_knowledge_input_views_at_test_time(trained, sample, tmp_path, capsys):
    """A model trained with facts and definitions scored with part of its knowledge text:
    raw text and batched evaluation build the same view; ``none`` is the plain input."""
    import csv

    from kgfuse.kg.verbalize import VerbalizerPart
    from kgfuse.tasks import api
    from kgfuse.tasks.cli import main
    from kgfuse.tasks.inference import KGFusePredictor

    _, res = trained
    model_dir = res.output_dir / "model"
    dev = data_dir() / "sample_csqa/dev.jsonl"
    p = KGFusePredictor.from_pretrained(model_dir)
    assert p.knowledge_input == "full" and p.knowledge_parts == ["triples", "definitions"]
    ex = sample[3][0]  # Where do you keep a toothbrush?
    full = p.predict(ex.question, ex.choices)
    pairs = p._pairs(ex.question, ex.choices)
    views = {}
    for mode in ("none", "triples", "definitions"):
        p.knowledge_input = mode
        views[mode] = p.predict(ex.question, ex.choices)
        assert views[mode].scores != pytest.approx(full.scores, abs=1e-6)
        ev = api.evaluate(p, dev, knowledge_input=mode, progress=False, cache_dir=tmp_path / "cache")
        assert ev.metrics["knowledge_input"] == mode and p.knowledge_input == mode  # left as it came
        assert ev.records[0]["scores"] == pytest.approx(views[mode].scores, abs=1e-4)
    p.knowledge_input = None
    assert p.predict(ex.question, ex.choices).scores == pytest.approx(full.scores, abs=1e-6)
    # none: exactly the model without a verbaliser
    v, p.verbalizer = p.verbalizer, None
    try:
        assert views["none"].scores == pytest.approx(p.predict(ex.question, ex.choices).scores, abs=1e-6)
    finally:
        p.verbalizer = v
    assert views["none"].knowledge == "" and views["none"].knowledge_per_choice == []
    # the parts: the fact or definition sentences of the text the model sees
    assert "toothbrush is found at bathroom." in views["triples"].knowledge_per_choice[1]
    assert "bathroom: the thing called bathroom." not in views["triples"].knowledge_per_choice[1]
    assert "bathroom: the thing called bathroom." in views["definitions"].knowledge_per_choice[1]
    assert "toothbrush is found at bathroom." not in views["definitions"].knowledge_per_choice[1]
    for j, pair in enumerate(pairs):
        assert views["triples"].knowledge_per_choice[j] == VerbalizerPart(v, "fact").text(*pair)
    assert api.evaluate(p, dev, progress=False, cache_dir=tmp_path / "cache").metrics["knowledge_input"] == "full"

    with pytest.raises(ValueError, match="knowledge_input must be one of"):
        p.knowledge_input = "facts"
    with pytest.raises(ValueError, match="has no examples"):
        p.knowledge_input = "examples"
    with pytest.raises(ValueError, match="trained without knowledge text"):
        KGFusePredictor(p.model, p.tokenizer).knowledge_input = "none"

    # the command line and a comparison file
    assert main(["evaluate", "--model", str(model_dir), "--data", str(dev), "--knowledge-input", "definitions",
                 "--output", str(tmp_path / "ev"), "--quiet"]) == 0
    assert "knowledge input: definitions (test-time ablation)" in capsys.readouterr().out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["knowledge_input"] == "definitions"
    (tmp_path / "cmp.yaml").write_text(
        f"output_dir: t\nruns:\n"
        f"  - {{name: full, model: {model_dir}, data: {dev}}}\n"
        f"  - {{name: plain, model: {model_dir}, data: {dev}, knowledge_input: none}}\n"
        f"  - {{name: again, model: {model_dir}, data: {dev}}}\n")
    assert main(["evaluate", "--config", str(tmp_path / "cmp.yaml"), "--quiet"]) == 0
    rows = list(csv.DictReader((tmp_path / "t" / "comparison.csv").open()))
    assert [r["knowledge_input"] for r in rows] == ["full", "none", "full"]
    assert rows[0]["accuracy"] == rows[2]["accuracy"]
    with pytest.raises(SystemExit, match="--knowledge-input is for --model DIR --data FILE"):
        main(["evaluate", "--config", str(tmp_path / "cmp.yaml"), "--knowledge-input", "none"])
