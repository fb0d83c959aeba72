"""ERNIE pre-training: MLM/dEA masking by construction, config errors, a tiny end-to-end run, and
fine-tuning (`kgfuse train` with model.init_from) from its output.

Real components throughout: the shipped MiniLM tokenizer, a spaCy-based EntityLinker on a tiny
GraphBuilder graph, a tiny random BERT built in code (hidden 32, 2 layers).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kgfuse.tasks.config import ConfigError
from kgfuse.tasks.pretrain import (
    KIND_KEPT,
    KIND_MASKED,
    KIND_REPLACED,
    LinkedTextDataset,
    ObjectiveConfig,
    PretrainConfig,
    PretrainingCollator,
    held_out,
    link_and_tokenise,
    load_pretrain_config,
    pretrain,
)

TRIPLES = [
    ("dog", "IsA", "animal"), ("cat", "IsA", "animal"), ("dog", "CapableOf", "bark"), ("bird", "CapableOf", "fly"),
    ("bird", "IsA", "animal"), ("fish", "AtLocation", "water"), ("cat", "Desires", "milk"), ("house", "HasA", "door"),
    ("plate", "AtLocation", "cupboard"), ("knife", "UsedFor", "cut"), ("bread", "AtLocation", "kitchen"),
]
SENTENCES = [
    "the dog is an animal that can bark", "a cat is an animal and drinks milk", "the bird can fly over the water",
    "a fish lives in water", "the house has a door and a dog", "my cat and my dog play in the house",
    "put the plate in the cupboard", "use a knife to cut the bread in the kitchen",
]
TINY_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)


@pytest.fixture(scope="module")
def graph():
    from kgfuse.kg import GraphBuilder

    b = GraphBuilder()
    for h, r, t in TRIPLES:
        b.add(h, r, t)
    return b.build()


@pytest.fixture(scope="module")
def linker(graph):
    from kgfuse.kg import EntityLinker

    return EntityLinker(graph)


@pytest.fixture(scope="module")
def tokenizer():
    from kgfuse.encoders.text import load_tokenizer

    return load_tokenizer()


def _features(linker, tokenizer, texts=SENTENCES):
    return [link_and_tokenise(t, linker, tokenizer, 32) for t in texts]


def test_link_and_tokenise_aligns_first_subtokens(graph, linker, tokenizer):
    f = link_and_tokenise("the dog can bark at the cat", linker, tokenizer, 32)
    names = [graph.concept_name(c) for c in f["entity_concepts"]]
    assert names == ["dog", "bark", "cat"]
    toks = tokenizer.convert_ids_to_tokens(f["input_ids"])
    aligned = {toks[t]: names[x] for t, x in enumerate(f["entity_local"]) if x >= 0}
    assert aligned == {"dog": "dog", "bark": "bark", "cat": "cat"}
    # truncation drops entities whose tokens are cut, and renumbers the rest densely
    g = link_and_tokenise("the dog can bark at the cat", linker, tokenizer, 4)
    assert [graph.concept_name(c) for c in g["entity_concepts"]] == ["dog"]
    assert sorted(set(g["entity_local"])) == [-1, 0]


def test_dea_targets_correct_by_construction(graph, linker, tokenizer):
    feats = _features(linker, tokenizer)
    for ob, kind in ((ObjectiveConfig(dea_replace=0.0, dea_mask=0.0), KIND_KEPT),
                     (ObjectiveConfig(dea_replace=0.0, dea_mask=1.0), KIND_MASKED),
                     (ObjectiveConfig(dea_replace=1.0, dea_mask=0.0), KIND_REPLACED)):
        b = PretrainingCollator(tokenizer, graph, ob, seed=3)(feats)
        S, L = b["input_ids"].shape
        n_align = sum(1 for f in feats for x in f["entity_local"] if x >= 0)
        assert b["dea_token"].shape[0] == n_align
        assert torch.all(b["dea_kind"] == kind)
        for tok, tgt in zip(b["dea_token"].tolist(), b["dea_target"].tolist()):
            s, t = divmod(tok, L)
            f = feats[s]
            # the target is the concept the token was aligned to, among this sequence's candidates
            assert b["dea_candidate_batch"][tgt] == s
            assert b["dea_candidates"][tgt] == f["entity_concepts"][f["entity_local"][t]]
            node = int(b["entity_index"][s, t])
            if kind == KIND_KEPT:
                assert b["node_concept_ids"][node] == b["dea_candidates"][tgt] and b["node_batch"][node] == s
            elif kind == KIND_MASKED:
                assert node == -1
            else:
                assert b["node_concept_ids"][node] != b["dea_candidates"][tgt] and b["node_batch"][node] == s
        if kind == KIND_MASKED:
            assert b["node_concept_ids"].numel() == 0 and b["edge_index"].shape == (2, 0)
        # candidates of a sequence = its distinct original entities
        for s, f in enumerate(feats):
            assert b["dea_candidates"][b["dea_candidate_batch"] == s].tolist() == f["entity_concepts"]


def test_input_graph_edges_are_the_graphs_induced_edges(graph, linker, tokenizer):
    feats = _features(linker, tokenizer)
    b = PretrainingCollator(tokenizer, graph, ObjectiveConfig(dea_replace=0.0, dea_mask=0.0))(feats)
    ei, et, cids, nb = b["edge_index"], b["edge_type"], b["node_concept_ids"], b["node_batch"]
    got = {(int(nb[h]), int(cids[h]), int(r), int(cids[t])) for h, r, t in zip(ei[0], et, ei[1])}
    want = set()
    for s in range(len(feats)):
        nodes = cids[nb == s].tolist()
        for h, r, t in zip(graph.head, graph.relation, graph.tail):
            if h in nodes and t in nodes:
                want.add((s, int(h), int(r), int(t)))
    assert got == want and len(want) > 0  # e.g. dog IsA animal in sentence 0
    assert torch.all(nb[ei[0]] == nb[ei[1]])


def test_dea_proportions_and_corrupted_only(graph, tokenizer):
    ob = ObjectiveConfig()  # ERNIE: 5% replaced, 15% removed, 80% kept
    col = PretrainingCollator(tokenizer, graph, ob, seed=0)
    local = list(range(4)) * 2500
    kinds = [k for _, _, k in col.corrupt_entities(local, [0, 1, 2, 3])[2]]
    frac = np.bincount(kinds, minlength=3) / len(kinds)
    assert abs(frac[KIND_KEPT] - 0.80) < 0.02 and abs(frac[KIND_MASKED] - 0.15) < 0.015
    assert abs(frac[KIND_REPLACED] - 0.05) < 0.01
    col2 = PretrainingCollator(tokenizer, graph, ObjectiveConfig(dea_predict="corrupted"), seed=0)
    feats = [{"input_ids": [101] + [2000] * 10 + [102], "attention_mask": [1] * 12, "entity_concepts": [0, 1],
              "entity_local": [-1] + [0, 1] * 5 + [-1]}] * 40
    b = col2(feats)
    assert b["dea_kind"].numel() > 0 and torch.all(b["dea_kind"] != KIND_KEPT)


def test_mlm_masking_bert_80_10_10(graph, tokenizer):
    col = PretrainingCollator(tokenizer, graph, ObjectiveConfig(), seed=1)
    ids = [tokenizer.cls_token_id] + list(range(2000, 2000 + 20000)) + [tokenizer.sep_token_id]
    new, labels = col.mask_tokens(ids)
    lab = np.asarray(labels)
    sel = lab != -100
    assert not sel[0] and not sel[-1]  # special tokens are never selected
    assert abs(sel.mean() - 0.15) < 0.01
    assert np.all(lab[sel] == np.asarray(ids)[sel])
    new = np.asarray(new)
    masked = new[sel] == tokenizer.mask_token_id
    kept = new[sel] == np.asarray(ids)[sel]
    assert abs(masked.mean() - 0.8) < 0.02 and abs(kept.mean() - 0.1) < 0.02
    assert np.all(new[~sel] == np.asarray(ids)[~sel])


def test_held_out_split_is_deterministic_and_disjoint(tmp_path, linker, tokenizer):
    # a pure function of the id, the same in every process: the SHA-1 of the id as a fraction
    import hashlib

    ids = [f"r:{i}" for i in range(2000)]
    frac = {i: int.from_bytes(hashlib.sha1(i.encode()).digest()[:8], "big") / 2.0**64 for i in ids}
    assert [held_out(i, 0.3) for i in ids] == [frac[i] < 0.3 for i in ids]
    assert abs(sum(held_out(i, 0.3) for i in ids) / len(ids) - 0.3) < 0.03
    assert not any(held_out(i, 0.0) for i in ids) and all(held_out(i, 1.0) for i in ids)
    (tmp_path / "c.txt").write_text("\n".join(SENTENCES * 5))
    kw = dict(eval_fraction=0.3, base_dir=tmp_path)
    spec = [{"type": "text", "path": "c.txt"}]
    tr = {f["id"] for f in LinkedTextDataset(spec, linker, tokenizer, split="train", shuffle_buffer=7, **kw)}
    ev = {f["id"] for f in LinkedTextDataset(spec, linker, tokenizer, split="eval", **kw)}
    assert tr and ev and not (tr & ev) and len(tr | ev) == 40
    ds = LinkedTextDataset(spec, linker, tokenizer, split="all", shuffle_buffer=7, base_dir=tmp_path)
    ds.set_epoch(0)
    o0 = [f["id"] for f in ds]
    ds.set_epoch(1)
    o1 = [f["id"] for f in ds]
    assert sorted(o0) == sorted(o1) and o0 != o1


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'corpora'"):
        PretrainConfig.from_dict({"corpora": []})
    with pytest.raises(ConfigError, match="dea_replace \\+ dea_mask"):
        PretrainConfig.from_dict({"objective": {"dea_replace": 0.5, "dea_mask": 0.6}})
    with pytest.raises(ConfigError, match="objective.dea_predict|dea_predict"):
        PretrainConfig.from_dict({"objective": {"dea_predict": "some"}})
    with pytest.raises(ConfigError, match="unknown key .objective.mask.; valid keys"):
        PretrainConfig.from_dict({"objective": {"mask": 0.1}})
    with pytest.raises(ConfigError, match="train.batch_size must be an integer"):
        PretrainConfig.from_dict({"train": {"batch_size": "x"}})
    p = tmp_path / "p.yaml"
    p.write_text("corpus: [{type: text, path: c.txt}]\ntrain: {max_steps: 3}\n")
    cfg = load_pretrain_config(p, ["objective.dea_weight=0.5"])
    assert cfg.objective.dea_weight == 0.5 and cfg.train.max_steps == 3 and cfg.train.batch_size == 16
    assert cfg.base_dir == str(tmp_path)


def test_pretrain_end_to_end_then_finetune_from_it(tmp_path, graph):
    """pretrain() runs, reports, and its model/ folder is a start for kgfuse train (model.init_from)."""
    from kgfuse.fusion.modeling import KGFusedForMultipleChoice
    from kgfuse.tasks.config import TrainConfig
    from kgfuse.tasks.pipeline import build_model
    from kgfuse.tasks.train import train

    torch.manual_seed(0)
    gdir = tmp_path / "graph"
    graph.save(gdir)
    (tmp_path / "c.txt").write_text("\n".join(SENTENCES * 6))
    opts = {"text_config": TINY_TEXT, "num_fusion_layers": 1, "node_dim": 12, "graph_hidden_dim": 16}
    cfg = PretrainConfig.from_dict({
        "corpus": [{"type": "text", "path": "c.txt"}],
        "graph": {"path": "graph", "format": "compiled"},
        "model": {"options": opts},
        "data": {"eval_fraction": 0.2, "eval_every": 6},
        "train": {"batch_size": 8, "max_steps": 12, "lr_lm": 1e-3, "lr_gnn": 3e-3, "lr_fusion": 3e-3,
                  "log_every": 3, "max_length": 32, "mixed_precision": "no"},
        "output_dir": "pre",
    }, base_dir=tmp_path)
    res = pretrain(cfg, progress=False)
    out = tmp_path / "pre"
    for name in ("metrics.json", "report.md", "curves.png", "log.jsonl", "config.yaml", "model/config.json",
                 "model/model.safetensors", "model/tokenizer_config.json"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["global_step"] == 12
    for rec in [m["initial"], m["final"], *m["train_log"]]:
        for k, v in rec.items():
            if k.endswith(("loss", "accuracy")) and v is not None:
                assert np.isfinite(v)
    assert m["final"]["dea_count"] > 0 and m["final"]["mlm_count"] > 0
    assert [h["step"] for h in m["history"]] == [0, 6, 12]
    assert "dea_accuracy" in (out / "report.md").read_text()
    # the training moved the fusion weights away from their zero init
    pre_w = res.model.fusion_layers[0].entity_to_intermediate.weight.detach().clone()
    assert pre_w.abs().sum() > 0

    # fine-tuning: build_model(init_from) gives a KGFusedForMultipleChoice with the pre-trained weights
    tcfg = TrainConfig.from_dict({
        "data": {"format": "csqa", "train": "train.jsonl", "dev": "train.jsonl"},
        "graph": {"path": "graph", "format": "compiled"},
        "retriever": {"type": "subgraph"},
        "model": {"init_from": "pre/model"},
        "train": {"epochs": 1, "batch_size": 2, "max_length": 32, "mixed_precision": "no", "log_every": 1,
                  "save_last": False},
        "output_dir": "ft",
    }, base_dir=tmp_path)
    model, tok = build_model(tcfg.model, graph, base_dir=tcfg.base_dir)
    assert type(model) is KGFusedForMultipleChoice
    assert torch.equal(model.fusion_layers[0].entity_to_intermediate.weight, pre_w)
    sd_pre = res.model.state_dict()
    for k, v in model.state_dict().items():
        if not k.startswith("classifier."):
            assert torch.equal(v, sd_pre[k]), k
    # and the whole `kgfuse train` path runs from it
    qs = [("Where do you put the plate?", ["cupboard", "water", "milk"], "A"),
          ("What does a dog do?", ["fly", "bark", "door"], "B")]
    with open(tmp_path / "train.jsonl", "w") as f:
        for i, (q, ch, a) in enumerate(qs):
            f.write(json.dumps({"id": f"q{i}", "answerKey": a, "question": {
                "stem": q, "choices": [{"label": "ABC"[j], "text": c} for j, c in enumerate(ch)]}}) + "\n")
    tres = train(tcfg, progress=False)
    assert tres.global_step == 1 and np.isfinite(tres.history[0]["train_loss"])


def test_cli_pretrain_and_shipped_config(tmp_path, graph, repo_root, capsys):
    from kgfuse.tasks.cli import main

    shipped = load_pretrain_config(repo_root / "configs" / "pretrain_wordnet.yaml")
    assert shipped.corpus[0]["type"] == "wordnet_glosses" and shipped.graph.format == "wordnet"
    assert shipped.objective.dea_replace == 0.05 and shipped.objective.dea_mask == 0.15

    graph.save(tmp_path / "graph")
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"id": f"s{i}", "text": t}) for i, t in enumerate(SENTENCES)))
    (tmp_path / "p.yaml").write_text(
        "corpus: [{type: jsonl, path: c.jsonl}]\n"
        "graph: {path: graph, format: compiled}\n"
        f"model: {{options: {{text_config: {json.dumps(TINY_TEXT)}, num_fusion_layers: 1, node_dim: 8, graph_hidden_dim: 8}}}}\n"
        "data: {eval_fraction: 0.3, eval_every: 0}\n"
        "train: {batch_size: 4, max_steps: 2, max_length: 24, mixed_precision: 'no'}\n")
    rc = main(["pretrain", "--config", str(tmp_path / "p.yaml"), "--output", str(tmp_path / "out"), "--quiet",
               "--set", "objective.dea_weight=0.5"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "held-out dEA accuracy" in printed and "model.init_from" in printed
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["global_step"] == 2 and [h["step"] for h in m["history"]] == [0, 2]
    assert main(["pretrain", "--config", str(tmp_path / "missing.yaml")]) == 2


# --------------------------------------------------------------------------------------
# pre-linked corpora: link where spaCy runs, train where it does not


def _linked_cfg(tmp_path, graph, **train):
    graph.save(tmp_path / "graph")
    (tmp_path / "c.txt").write_text("\n".join(f"{s} ({i})" for i, s in enumerate(SENTENCES * 4)))
    opts = {"text_config": TINY_TEXT, "num_fusion_layers": 1, "node_dim": 8, "graph_hidden_dim": 8}
    return PretrainConfig.from_dict({
        "corpus": [{"type": "text", "path": "c.txt"}],
        "graph": {"path": "graph", "format": "compiled"},
        "model": {"options": opts},
        "data": {"eval_fraction": 0.25, "eval_every": 0, "max_eval": 5},
        "train": {"batch_size": 4, "max_steps": 3, "max_length": 24, "mixed_precision": "no", **train},
        "output_dir": "pre",
    }, base_dir=tmp_path)


def test_linked_corpus_matches_on_the_fly_linking_and_round_trips(tmp_path, graph, linker, tokenizer):
    from kgfuse.tasks.pretrain import LinkedCorpus, LinkedFeatureDataset, link_corpus

    cfg = _linked_cfg(tmp_path, graph)
    lc = link_corpus(cfg, graph=graph, progress=False)
    common = dict(max_length=24, eval_fraction=0.25, base_dir=tmp_path)
    on_the_fly_train = list(LinkedTextDataset(cfg.corpus, linker, tokenizer, split="train", **common))
    on_the_fly_eval = list(LinkedTextDataset(cfg.corpus, linker, tokenizer, split="eval", limit=5, **common))
    assert lc.train == on_the_fly_train and lc.eval == on_the_fly_eval
    assert len(lc.eval) == 5 and len(lc.train) + lc.meta["eval_linking"]["records"] >= len(SENTENCES * 4) - 1
    assert lc.meta["graph_hash"] == graph.hash and lc.meta["train_linking"]["mentions"] > 0
    path = lc.save(tmp_path / "linked.jsonl.gz")
    back = LinkedCorpus.load(path)
    assert back.train == lc.train and back.eval == lc.eval and back.meta == lc.meta
    back.check(graph, tokenizer, 24)
    # per-epoch reshuffle: a permutation, the same for the same (seed, epoch), another for the next epoch
    ds = LinkedFeatureDataset(back.train, seed=3)
    e0 = [f["id"] for f in ds]
    assert sorted(e0) == sorted(f["id"] for f in back.train) and e0 == [f["id"] for f in ds]
    ds.set_epoch(1)
    assert [f["id"] for f in ds] != e0


def test_linked_corpus_refuses_other_graph_tokenizer_length_and_broken_files(tmp_path, graph, tokenizer):
    import gzip

    from kgfuse.kg import GraphBuilder
    from kgfuse.tasks.pretrain import LinkedCorpus, link_corpus

    cfg = _linked_cfg(tmp_path, graph)
    lc = link_corpus(cfg, graph=graph, progress=False)
    b = GraphBuilder()
    b.add("dog", "IsA", "pet")
    with pytest.raises(ValueError, match="linked to graph"):
        lc.check(b.build(), tokenizer, 24)
    with pytest.raises(ValueError, match="max_length 24"):
        lc.check(graph, tokenizer, 32)
    from transformers import BertTokenizerFast

    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "dog", "cat"]))
    other = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    with pytest.raises(ValueError, match="tokenizer"):
        lc.check(graph, other, 24)
    path = lc.save(tmp_path / "l.jsonl.gz")
    lines = gzip.open(path, "rt").read().splitlines()
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt") as f:
        f.write("\n".join(lines[:2] + ["{not json"] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl\.gz:3: invalid JSON"):
        LinkedCorpus.load(bad)
    rec = json.loads(lines[2])
    del rec["entity_local"]
    with gzip.open(bad, "wt") as f:
        f.write("\n".join(lines[:2] + [json.dumps(rec)] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl\.gz:3: field 'entity_local' missing"):
        LinkedCorpus.load(bad)
    with gzip.open(bad, "wt") as f:
        f.write("\n".join(lines[:-2]) + "\n")
    with pytest.raises(ValueError, match="truncated"):
        LinkedCorpus.load(bad)


def test_pretrain_from_linked_corpus_needs_no_spacy(tmp_path, graph, repo_root):
    """Link here (spaCy), then pre-train in a fresh interpreter where `import spacy` fails."""
    import subprocess
    import sys

    from kgfuse.tasks.cli import main

    cfg_path = tmp_path / "p.yaml"
    _linked_cfg(tmp_path, graph)  # writes graph/ and c.txt
    cfg_path.write_text(
        "corpus: [{type: text, path: c.txt}]\n"
        "graph: {path: graph, format: compiled}\n"
        f"model: {{options: {{text_config: {json.dumps(TINY_TEXT)}, num_fusion_layers: 1, node_dim: 8, graph_hidden_dim: 8}}}}\n"
        "data: {eval_fraction: 0.25, eval_every: 0, max_eval: 5}\n"
        "train: {batch_size: 4, max_steps: 3, max_length: 24, mixed_precision: 'no'}\n")
    assert main(["pretrain", "--config", str(cfg_path), "--link-only", str(tmp_path / "linked.jsonl.gz"), "--quiet"]) == 0
    code = (
        "import sys, json\n"
        "sys.modules['spacy'] = None  # any import of spaCy now raises ImportError\n"
        "from kgfuse.tasks.cli import main\n"
        f"rc = main(['pretrain', '--config', {str(cfg_path)!r}, '--output', {str(tmp_path / 'out')!r}, '--quiet',\n"
        f"           '--set', 'data.linked={tmp_path / 'linked.jsonl.gz'}', '--set', 'corpus=[]'])\n"
        "assert 'spacy' not in sys.modules or sys.modules['spacy'] is None\n"
        "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["global_step"] == 3 and m["final"]["dea_count"] > 0
    assert m["data"]["linked"].endswith("linked.jsonl.gz") and m["data"]["eval_sequences"] == 5


def test_config_shares_the_fine_tuning_loader_and_checks(tmp_path):
    """One loader and one validation for both configs: did-you-mean hints, the linker and
    model.options checked against their classes, train defaults of pre-training kept."""
    from kgfuse.tasks.config import load_config

    with pytest.raises(ConfigError, match="did you mean 'corpus'"):
        PretrainConfig.from_dict({"corpora": []})
    with pytest.raises(ConfigError, match="unknown key 'objective.dea_wieght'.*did you mean 'dea_weight'"):
        PretrainConfig.from_dict({"objective": {"dea_wieght": 0.5}})
    with pytest.raises(ConfigError, match="unknown key 'linker.max_word'"):
        PretrainConfig.from_dict({"linker": {"max_word": 4}})
    with pytest.raises(ConfigError, match="model.options.num_fusion_layer"):
        PretrainConfig.from_dict({"model": {"options": {"num_fusion_layer": 1}}})
    with pytest.raises(ConfigError, match="train.batch_size must be >= 1"):
        PretrainConfig.from_dict({"train": {"batch_size": 0}})
    with pytest.raises(ConfigError, match=r"data.eval_fraction must be in \[0, 1\)"):
        PretrainConfig.from_dict({"data": {"eval_fraction": 1.0}})
    cfg = PretrainConfig.from_dict({"corpus": {"type": "text", "path": "c.txt"}, "train": {"max_steps": 4}})
    assert cfg.corpus == [{"type": "text", "path": "c.txt"}]
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.train.epochs, cfg.train.lr_lm) == (4, 16, 1, 2e-5)
    p = tmp_path / "p.toml"
    p.write_text('corpus = ["c.txt"]\n[objective]\nmlm_weight = 0.5\n')
    assert load_config(p, cls=PretrainConfig) == load_pretrain_config(p)
    assert load_pretrain_config(p).objective.mlm_weight == 0.5


def test_pretraining_refuses_the_fine_tuning_length_grouping_and_early_stopping():
    from kgfuse.tasks.config import ConfigError, TrainConfig
    from kgfuse.tasks.pretrain_config import PretrainConfig

    assert TrainConfig.from_dict({"train": {"group_by_length": True}}).train.group_by_length is True
    with pytest.raises(ConfigError, match=r"pre.yaml: train.group_by_length is a fine-tuning setting"):
        PretrainConfig.from_dict({"train": {"group_by_length": True}}, source="pre.yaml")
    assert TrainConfig.from_dict({"train": {"early_stopping_patience": 2}}).train.early_stopping_patience == 2
    with pytest.raises(ConfigError, match=r"pre.yaml: train.early_stopping_patience is a fine-tuning setting"):
        PretrainConfig.from_dict({"train": {"early_stopping_patience": 2}}, source="pre.yaml")
