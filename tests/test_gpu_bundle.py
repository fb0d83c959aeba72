"""The GPU carry bundle (benchmarks/gpu): build it from the real data at tiny scale
(6 questions per split, a tiny random BERT instead of MiniLM), read it back the way the
spaCy-free GPU side does, and run the GPU runner end to end on the CPU.

Skips where ``../shared/data`` or the WordNet database files are absent.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GPU_DIR = REPO / "benchmarks" / "gpu"
SHARED = REPO.parent / "shared" / "data"
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}
N = 6  # questions per split

pytestmark = pytest.mark.shared_data


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"kgfuse_gpu_{name}", GPU_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(GPU_DIR))
    spec.loader.exec_module(mod)
    return mod


def _wordnet_dir() -> Path:
    from kgfuse.kg import loaders

    return Path(loaders.DEFAULT_WORDNET)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not (SHARED / "csqa" / "train_ih.jsonl").is_file() or not (SHARED / "obqa" / "train.jsonl").is_file():
        pytest.skip(f"{SHARED} (csqa, obqa) not present")
    if not (_wordnet_dir() / "data.noun").is_file():
        pytest.skip("WordNet database files not installed")
    import torch
    from transformers import BertConfig, BertModel

    from kgfuse.encoders.text import load_tokenizer

    root = tmp_path_factory.mktemp("gpu_bundle")
    te = root / "tiny_bert"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, **TINY)).save_pretrained(str(te))
    load_tokenizer("all-MiniLM-L6-v2").save_pretrained(str(te))
    mb = _module("make_bundle")
    out = root / "bundle"
    rc = mb.main(["--out", str(out), "--data", str(SHARED), "--text-encoder", str(te), "--max-examples", str(N),
                  "--workers", "1", "--cache", str(root / "cache"), "--level", "1",
                  "--pretrain-glosses", "80", "--pretrain-max-length", "32"])
    assert rc == 0
    return root, out, te


@pytest.fixture(scope="module")
def unpacked(built):
    """The bundle read back the way the GPU side does: verified, unpacked, graph rebuilt."""
    root, out, te = built
    bundle = _module("bundle")
    b = bundle.Bundle.open(out).verify()
    b.unpack(root / "work")
    return b, b.graph()


def test_manifest_and_sizes(built):
    root, out, te = built
    bundle = _module("bundle")
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == bundle.FORMAT and m["store"] == "nodes"
    # every part listed, with its size and hash
    for rel in ("model/model.fp16.safetensors", "wordnet/data.noun.gz", "data/csqa/train_ih.jsonl.gz",
                "cache/csqa-train.tar.gz", "cache/obqa-test.tar.gz"):
        assert rel in m["files"], rel
        assert (out / rel).stat().st_size == m["files"][rel]["bytes"]
    for ds, splits in (("csqa", {"train", "dev"}), ("obqa", {"train", "dev", "test"})):
        assert set(m["datasets"][ds]["splits"]) == splits
        for s in m["datasets"][ds]["splits"].values():
            assert s["num_examples"] == N and s["stats"]["statements"] == N * (5 if ds == "csqa" else 4)
            assert s["stats"]["mean_nodes"] > 0  # the values are recomputed from the unpacked cache below
    from safetensors import safe_open

    with safe_open(str(out / "model" / "model.fp16.safetensors"), framework="pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}
    assert dtypes == {"torch.float16"}


def test_read_back_like_the_gpu_side(built, unpacked):
    """Hash-checked graph rebuild, fp32 weights, and subgraphs equal to a fresh retrieval."""
    root, out, te = built
    b, graph = unpacked
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from kgfuse.kg import KnowledgeGraph
    from kgfuse.tasks.pipeline import build_retriever

    assert graph.hash == b.manifest["graph"]["hash"] == KnowledgeGraph.from_wordnet(_wordnet_dir()).hash
    w32 = load_file(str(b.model_dir / "model.safetensors"))
    w_orig = load_file(str(te / "model.safetensors"))
    assert set(w32) == set(w_orig)
    for k, v in w_orig.items():
        assert w32[k].dtype == v.dtype
        if v.is_floating_point():
            assert torch.equal(w32[k], v.half().float()), k
    retriever = build_retriever(graph, b.manifest["retriever"])
    n_checked = 0
    for ds in b.datasets:
        for split in b.splits(ds):
            exs = b.examples(ds, split)
            pre = b.preprocessed(ds, split, graph, exs)
            assert len(pre) == N
            # the manifest's statistics are those of the cache that travels
            stats = b.manifest["datasets"][ds]["splits"][split]["stats"]
            pairs = [(i, j) for i in range(N) for j in range(len(exs[i].choices))]
            both = sum(1 for i, j in pairs if pre.grounding(i, j).question_concepts and pre.grounding(i, j).answer_concepts)
            nodes = [int(pre.arrays(i, j)["concept_ids"].shape[0]) for i, j in pairs]
            assert stats["statements"] == len(pairs) and stats["share_q_and_a"] == round(both / len(pairs), 4)
            assert stats["mean_nodes"] == pytest.approx(np.mean(nodes), abs=1e-3)
            for i in range(2):
                for j in range(len(exs[i].choices)):
                    got, want = pre.arrays(i, j), retriever.retrieve_arrays(pre.grounding(i, j))
                    for key in ("concept_ids", "node_type", "edge_index", "edge_type"):
                        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]), err_msg=f"{ds}/{split} {i},{j} {key}")
                    n_checked += 1
    assert n_checked == 2 * (5 * 2 + 4 * 3)


def test_corruption_and_mismatch_are_named(built, unpacked, tmp_path):
    root, out, te = built
    bundle = _module("bundle")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    p = bad / "cache" / "csqa-dev.tar.gz"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError, match="csqa-dev.tar.gz.*SHA-256"):
        bundle.Bundle.open(bad).verify()
    p.unlink()
    with pytest.raises(bundle.BundleError, match="csqa-dev.tar.gz: listed in manifest.json but missing"):
        bundle.Bundle.open(bad).verify()
    m = json.loads((out / "manifest.json").read_text())
    m["graph"]["hash"] = "0" * 64
    (bad / "manifest.json").write_text(json.dumps(m))
    b = bundle.Bundle.open(bad)
    b.work = unpacked[0].work  # the same files, unpacked once
    with pytest.raises(bundle.BundleError, match=r"rebuilt graph \(WordNet 3.0 lemma graph\) has hash"):
        b.graph()
    m["format"] = "something-else"
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(bundle.BundleError, match="field 'format'"):
        bundle.Bundle.open(bad)


def test_gpu_runner_on_cpu(built, tmp_path, monkeypatch):
    """run_gpu.py end to end (CPU, fp32): timing of both models, training with fit, results files."""
    root, out, te = built
    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path / "home"))
    rg = _module("run_gpu")
    res_dir = tmp_path / "out"
    rc = rg.main(["--bundle", str(out), "--out", str(res_dir), "--work", str(tmp_path / "work"), "--seeds", "0",
                  "--epochs", "1", "--batch-size", "2", "--eval-batch-size", "4", "--max-length", "48",
                  "--timing-steps", "2", "--warmup-steps", "1", "--node-dim", "8", "--graph-hidden-dim", "16",
                  "--fusion-layers", "1", "--workers", "0", "--threads", "1", "--time-budget", "600"])
    assert rc == 0
    r = json.loads((res_dir / "results.json").read_text())
    assert r["environment"]["precision"] == "no"
    assert [(x["dataset"], x["model"]) for x in r["runs"]] == [("csqa", "lm"), ("csqa", "fused"), ("obqa", "lm"), ("obqa", "fused")]
    for run in r["runs"]:
        assert "error" not in run, run.get("error")
        assert run["steps"] == N // 2 and run["epochs_done"] == 1 and not run["stopped_by_guard"]
        # the best epoch's accuracy over the N dev questions: a multiple of 1 / N
        assert run["history"][0]["dev_count"] == N and run["best_dev_accuracy"] == run["history"][0]["dev_accuracy"]
        assert run["best_dev_accuracy"] * N == pytest.approx(round(run["best_dev_accuracy"] * N), abs=1e-9)
        assert (run["dataset"] == "obqa") == ("test_accuracy_at_best_dev" in run)
        # each question's predicted choice at the best dev epoch, scoring what that epoch scored
        kept = run["predictions_at_best_dev"]
        assert kept["epoch"] == run["best_epoch"] and len(kept["dev"]["predicted"]) == N
        assert kept["dev"]["accuracy"] == pytest.approx(run["best_dev_accuracy"])
        if run["dataset"] == "obqa":
            assert kept["test"]["accuracy"] == pytest.approx(run["test_accuracy_at_best_dev"])
    ep = _module("export_predictions")
    written = ep.export(res_dir / "results.json", tmp_path / "kept", prefix="gpu-")
    assert sorted(p.relative_to(tmp_path / "kept").as_posix() for p in written) == sorted(
        [f"gpu-csqa-{m}-s0/dev.jsonl" for m in ("lm", "fused")]
        + [f"gpu-obqa-{m}-s0/{sp}.jsonl" for m in ("lm", "fused") for sp in ("dev", "test")])
    rows = [json.loads(x) for x in (tmp_path / "kept" / "gpu-obqa-fused-s0" / "test.jsonl").read_text().splitlines()]
    run = r["runs"][3]
    assert [x["id"] for x in rows] == r["questions"]["obqa"]["test"]["ids"]
    assert sum(x["correct"] for x in rows) / N == pytest.approx(run["test_accuracy_at_best_dev"])
    for ds in ("csqa", "obqa"):
        t = r["timing"][ds]
        assert t["fused"]["parameters"] > t["lm"]["parameters"]  # node table, GNN, fusion layers
        assert t["lm"]["step_ms_median"] > 0 and r["summary"][ds]["ratios"]["step_time"] > 0
    md = (res_dir / "results.md").read_text()
    assert "| csqa | fused | 0 |" in md and "fused / LM-only step time" in md


def test_epoch_seconds_skip_the_first_epoch_and_guarded_runs():
    """The whole-run cost table counts every epoch after the first of the runs that finished,
    per data set and model, and divides by LM-only's median when LM-only ran."""
    rg = _module("run_gpu")

    def run(model, secs, **kw):
        return {"dataset": "csqa", "model": model, "seed": 0, "epochs": 3, "history": [{"seconds": x} for x in secs], **kw}

    runs = [run("lm", [30.0, 10.0, 12.0]), run("lm", [25.0, 11.0, 13.0]),
            run("fused", [40.0, 22.0, 26.0]), run("fused", [40.0, 99.0], stopped_by_guard=True),
            run("fused", [], error="boom"), run("lm-text-triples", [50.0])]
    assert rg.epoch_seconds(runs) == {"csqa": {"lm": [10.0, 12.0, 11.0, 13.0], "fused": [22.0, 26.0]}}
    assert _whole_run_rows(rg, {"runs": runs}) == ["| csqa | lm | 4 | 11.5 (10.0–13.0) | 1.00× |", "| csqa | fused | 2 | 24.0 (22.0–26.0) | 2.09× |"]
    only_fused = {"runs": [runs[2]]}
    assert _whole_run_rows(rg, only_fused) == ["| csqa | fused | 2 | 24.0 (22.0–26.0) | – |"]


def _whole_run_rows(rg, r):
    """The rows of results.md's whole-run table for a results dict with only ``runs``."""
    full = {"environment": {k: "x" for k in ("device_name", "device", "torch", "transformers", "torch_geometric",
                                             "python", "precision")},
            "command": "c", "graph": {"num_concepts": 1, "num_relations": 1, "num_edges": 1, "hash": "0" * 12},
            "retriever": {}, "text_encoder": "t", "timing": {}, "wall_s": 1.0,
            "settings": {k: 1 for k in ("batch_size", "max_length", "lr_lm", "lr_gnn", "lr_fusion", "graph_encoder",
                                        "fusion_layers", "node_dim", "time_budget")}, **r}
    md = rg.render_md(full).split("## Whole runs", 1)[1].split("\n## ", 1)[0]
    return [x for x in md.splitlines() if x.startswith("| csqa")]


def test_wall_clock_guard_stops_fit(built, unpacked, tmp_path):
    """A run whose deadline has passed stops after one step, still evaluates and returns."""
    root, out, te = built
    b, graph = unpacked
    rg = _module("run_gpu")
    from kgfuse.tasks.features import MultipleChoiceCollator
    from kgfuse.tasks.pipeline import MCFeatureDataset
    from kgfuse.tasks.train import fit

    args = rg.parse_args(["--bundle", str(out), "--out", str(tmp_path), "--batch-size", "2", "--max-length", "48",
                          "--node-dim", "8", "--graph-hidden-dim", "16", "--fusion-layers", "1", "--workers", "0"])
    cfg = rg.make_config(args, "csqa", False, 0, 3, b.model_dir)
    model = rg.build_model(cfg, graph)
    from kgfuse.encoders.text import load_tokenizer

    tok = load_tokenizer(str(b.model_dir))
    exs = b.examples("csqa", "train")
    ds = MCFeatureDataset(exs, b.preprocessed("csqa", "train", graph, exs), tok, max_length=48)
    guard = rg.WallClockGuard(cfg.train, deadline=0.0)
    model.register_forward_pre_hook(guard)
    res = fit(model, ds, {"dev": ds}, MultipleChoiceCollator(tok, max_length=48), cfg.train, None, progress=False)
    assert guard.fired_at_step == 1 and res.global_step == 1
    assert len(res.history) == 1 and res.history[0]["dev_count"] == N


def test_timing_warms_up_for_the_given_seconds(built, unpacked, tmp_path):
    """``measure(..., warmup_seconds=S)`` runs every batch it will time once untimed, repeats
    the warm-up steps until S seconds have passed, then times exactly ``n_timed`` steps; with
    0 it runs ``n_warmup`` warm-up steps and the one untimed pass."""
    root, out, te = built
    b, graph = unpacked
    rg = _module("run_gpu")
    from kgfuse.encoders.text import load_tokenizer
    from kgfuse.tasks.features import MultipleChoiceCollator
    from kgfuse.tasks.pipeline import TextOnlyDataset

    args = rg.parse_args(["--bundle", str(out), "--out", str(tmp_path), "--batch-size", "2", "--max-length", "48",
                          "--workers", "0"])
    assert args.warmup_seconds == 10.0
    cfg = rg.make_config(args, "csqa", True, 0, 1, b.model_dir)
    tok = load_tokenizer(str(b.model_dir))
    exs = b.examples("csqa", "train")
    ds, coll = TextOnlyDataset(exs, tok, max_length=48), MultipleChoiceCollator(tok, max_length=48)
    model = rg.build_model(cfg, graph)
    seen: list[tuple] = []  # each training forward's batch, by content
    model.register_forward_pre_hook(
        lambda m, a, kw: seen.append(tuple(kw["input_ids"].flatten().tolist())) if m.training else None,
        with_kwargs=True)
    t0 = time.perf_counter()
    plain = rg.measure(model, ds, coll, cfg, n_warmup=1, n_timed=2, eval_batch_size=2)
    plain_s = time.perf_counter() - t0
    assert plain["warmup_steps_run"] == 3 and plain["steps_timed"] == 2 and plain["first_pass_ms_median"] > 0
    assert len(seen) == 5 and seen[3] != seen[4]
    assert seen[3:] == seen[1:3]  # the two timed batches ran once, untimed, right after the warm-up
    assert seen[0] not in seen[1:]  # the warm-up batch is not timed
    one_step = plain["step_ms_median"] / 1000
    # a budget beyond the whole first call (its untimed steps, the first one's one-time costs
    # included, and its evaluation), so that the warm-up must add steps of its own
    warm = rg.measure(rg.build_model(cfg, graph), ds, coll, cfg, n_warmup=1, n_timed=2, eval_batch_size=2,
                      warmup_seconds=plain_s + 3 * one_step)
    assert warm["warmup_steps_run"] > 3 and warm["steps_timed"] == 2


def _control_data(b, graph):
    """What the control tests feed the runner's model kinds: ``(run_gpu module, examples,
    preprocessed csqa/train, per-kind feature datasets, collator)``, at max length 48."""
    from kgfuse.encoders.text import load_tokenizer
    from kgfuse.tasks.features import MultipleChoiceCollator

    rg = _module("run_gpu")
    tok = load_tokenizer(str(b.model_dir))
    exs = b.examples("csqa", "train")
    pre = b.preprocessed("csqa", "train", graph, exs)
    return rg, exs, pre, rg.model_datasets(exs, pre, tok, 48), MultipleChoiceCollator(tok, max_length=48)


def test_fused_nograph_feeds_zero_nodes(built, unpacked, tmp_path):
    """``--models fused-nograph``: the fused architecture (same parameters as ``fused``) trained
    on batches with no nodes, no edges and no entity alignments; ``fused`` gets real subgraphs."""
    root, out, te = built
    b, graph = unpacked
    import torch

    rg, exs, pre, sets, collate = _control_data(b, graph)
    args = rg.parse_args(["--bundle", str(out), "--out", str(tmp_path), "--models", "lm,fused,fused-nograph",
                          "--batch-size", "2", "--max-length", "48", "--node-dim", "8", "--graph-hidden-dim", "16",
                          "--fusion-layers", "1", "--workers", "0"])
    assert args.models == ["lm", "fused", "fused-nograph"]
    with pytest.raises(SystemExit):
        rg.parse_args(["--bundle", "x", "--out", "y", "--models", "nograph"])
    fused_batch = collate([sets["fused"][i] for i in range(N)])
    assert fused_batch["node_concept_ids"].numel() > 0 and (fused_batch["entity_index"] >= 0).any()

    seen: list[dict] = []
    n_params = {}
    for kind in ("fused", "fused-nograph"):
        cfg = rg.make_config(args, "csqa", kind == "lm", 0, 1, b.model_dir)
        model = rg.build_model(cfg, graph)
        n_params[kind] = sum(p.numel() for p in model.parameters())
        if kind == "fused":
            continue
        model.register_forward_pre_hook(lambda mod, a, kw: seen.append(kw), with_kwargs=True)
        batch = collate([sets[kind][i] for i in range(N)])
        model.train()
        out_ = model(**batch)
        out_.loss.backward()
        assert torch.isfinite(out_.loss)
    assert n_params["fused"] == n_params["fused-nograph"]
    kw = seen[0]
    assert kw["input_ids"].shape[:2] == fused_batch["input_ids"].shape[:2]
    assert kw["node_concept_ids"].numel() == 0 and kw["edge_index"].numel() == 0 and kw["node_batch"].numel() == 0
    assert (kw["entity_index"] < 0).all()


def test_fused_noedges_keeps_nodes_drops_edges(built, unpacked, tmp_path):
    """``--models fused-noedges``: the fused model fed ``fused``'s groundings, node sets, node
    types and token-entity alignments unchanged, with zero edges reaching the model."""
    root, out, te = built
    b, graph = unpacked
    import torch

    rg, exs, pre, sets, collate = _control_data(b, graph)
    args = rg.parse_args(["--bundle", str(out), "--out", str(tmp_path), "--models", "fused,fused-noedges",
                          "--batch-size", "2", "--max-length", "48", "--node-dim", "8", "--graph-hidden-dim", "16",
                          "--fusion-layers", "1", "--workers", "0"])
    assert args.models == ["fused", "fused-noedges"]
    fused_batch = collate([sets["fused"][i] for i in range(N)])
    assert fused_batch["edge_index"].shape[1] > 0  # the control is only meaningful if fused has edges
    want = collate([sets["fused-noedges"][i] for i in range(N)])
    for key in ("input_ids", "node_concept_ids", "node_type", "node_batch", "entity_index"):
        assert torch.equal(want[key], fused_batch[key]), key
    assert fused_batch["node_concept_ids"].numel() > 0 and (fused_batch["entity_index"] >= 0).any()

    seen: list[dict] = []
    cfg = rg.make_config(args, "csqa", False, 0, 1, b.model_dir)
    model = rg.build_model(cfg, graph)
    model.register_forward_pre_hook(lambda mod, a, kw: seen.append(kw), with_kwargs=True)
    model.train()
    out_ = model(**want)
    out_.loss.backward()
    assert torch.isfinite(out_.loss)
    kw = seen[0]
    assert kw["edge_index"].numel() == 0 and kw["edge_type"].numel() == 0
    assert torch.equal(kw["node_concept_ids"], fused_batch["node_concept_ids"])
    assert torch.equal(kw["entity_index"], fused_batch["entity_index"])
    # the node table is used: linked rows get gradient
    grads = [p.grad for n, p in model.named_parameters() if "node_embeddings" in n and p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)



def test_fused_qaonly_keeps_question_and_answer_nodes_and_their_edges(built, unpacked, tmp_path):
    """``--models fused-qaonly``: bridge nodes and every edge touching them removed; question
    and answer nodes, their edges among themselves and the token-entity alignments kept."""
    root, out, te = built
    b, graph = unpacked
    import torch

    rg, exs, pre, sets, collate = _control_data(b, graph)
    n_bridges = n_kept_edges = 0
    for i in range(N):
        for j in range(len(exs[i].choices)):
            _, full = pre[i][j]
            _, cut = rg.QAOnly(pre)[i][j]
            qa = (full.node_type <= 1).nonzero().view(-1)
            n_bridges += int((full.node_type == 2).sum())
            assert torch.equal(cut.concept_ids, full.concept_ids[qa]) and torch.equal(cut.node_type, full.node_type[qa])
            assert (cut.node_type <= 1).all() and int(cut.num_nodes) == qa.numel()
            # the kept edges are exactly the full subgraph's edges between question/answer nodes
            want = {(int(full.concept_ids[h]), int(full.concept_ids[t]), int(r))
                    for (h, t), r in zip(full.edge_index.t().tolist(), full.edge_type.tolist())
                    if full.node_type[h] <= 1 and full.node_type[t] <= 1}
            got = {(int(cut.concept_ids[h]), int(cut.concept_ids[t]), int(r))
                   for (h, t), r in zip(cut.edge_index.t().tolist(), cut.edge_type.tolist())}
            assert got == want
            n_kept_edges += len(got)
    assert n_bridges > 0  # the control only means something where the retriever added bridges
    full_b = collate([sets["fused"][i] for i in range(N)])
    cut_b = collate([sets["fused-qaonly"][i] for i in range(N)])
    assert cut_b["node_concept_ids"].numel() < full_b["node_concept_ids"].numel()
    assert cut_b["edge_index"].shape[1] == n_kept_edges
    # every token aligned in fused is aligned to the same concept in fused-qaonly
    fa, ca = full_b["entity_index"], cut_b["entity_index"]
    assert torch.equal(fa >= 0, ca >= 0) and (fa >= 0).any()
    assert torch.equal(full_b["node_concept_ids"][fa[fa >= 0]], cut_b["node_concept_ids"][ca[ca >= 0]])

def test_fused_pt_pretrains_on_the_bundled_glosses_then_finetunes_from_them(built, tmp_path, monkeypatch):
    """--models fused-pt: ERNIE pre-training on the bundle's pre-linked glosses (no linker on
    the GPU side), then fine-tuning that starts from the pre-trained weights."""
    import torch
    from safetensors.torch import load_file

    from kgfuse.tasks.pretrain import LinkedCorpus

    root, out, te = built
    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path / "home"))
    bundle = _module("bundle")
    b = bundle.Bundle.open(out)
    lc = LinkedCorpus.load(b.pretrain_corpus)
    assert len(lc.train) + len(lc.eval) > 60 and lc.meta["max_length"] == 32
    assert sum(len(f["entity_concepts"]) for f in lc.train) > len(lc.train)  # glosses are linked
    rg = _module("run_gpu")
    res_dir, work = tmp_path / "out", tmp_path / "work"
    args = ["--bundle", str(out), "--out", str(res_dir), "--work", str(work), "--seeds", "0", "--dataset", "csqa",
            "--models", "lm,fused-pt", "--epochs", "1", "--batch-size", "2", "--eval-batch-size", "4", "--max-length", "48",
            "--timing-steps", "1", "--warmup-steps", "1", "--node-dim", "8", "--graph-hidden-dim", "16",
            "--fusion-layers", "1", "--workers", "0", "--threads", "1", "--time-budget", "600",
            "--pretrain-steps", "4", "--pretrain-batch-size", "4", "--node-vocab", "train"]
    assert rg.main(args) == 0
    r = json.loads((res_dir / "results.json").read_text())
    pt = r["pretraining"]
    assert "error" not in pt and pt["steps"] == 4 and pt["final"]["dea_count"] > 0
    fin = pt["final"]  # dEA accuracy: correct entity predictions out of dea_count
    assert fin["dea_accuracy"] * fin["dea_count"] == pytest.approx(round(fin["dea_accuracy"] * fin["dea_count"]), abs=1e-6)
    assert fin["mlm_loss"] > 0
    # fused-pt is timed as the fused architecture; --node-vocab train adds the full-table reference
    assert set(r["timing"]["csqa"]) == {"lm", "fused", "fused-fulltable"}
    assert "full node table" in (res_dir / "results.md").read_text()
    assert [(x["model"], "error" in x) for x in r["runs"]] == [("lm", False), ("fused-pt", False)]
    assert "## ERNIE pre-training (fused-pt)" in (res_dir / "results.md").read_text()
    # the fine-tuning model starts from the pre-trained weights, not from a fresh fused model
    ns = rg.parse_args(args)
    b.unpack(work)
    graph = b.graph()
    saved = load_file(str(Path(pt["model_dir"]) / "model.safetensors"))
    key = "fusion_layers.0.entity_to_intermediate.weight"
    concepts = b.preprocessed("csqa", "train", graph).concepts()
    t = r["timing"]["csqa"]  # full table: num_concepts rows of node_dim 8; restricted: len(concepts) + 1
    assert t["fused-fulltable"]["parameters"] - t["fused"]["parameters"] == (graph.num_concepts - len(concepts) - 1) * 8
    started = rg.build_model(rg.make_config(ns, "csqa", False, 0, 1, b.model_dir, init_from=pt["model_dir"]), graph,
                             concepts)
    fresh = rg.build_model(rg.make_config(ns, "csqa", False, 0, 1, b.model_dir), graph, concepts)
    assert torch.equal(started.state_dict()[key], saved[key])
    assert not torch.equal(fresh.state_dict()[key], saved[key])
    # --node-vocab train: a table for the training concepts only, holding their pre-trained rows
    ids = torch.as_tensor(concepts)
    assert started.node_embeddings.weight.shape[0] == len(concepts) + 1 < graph.num_concepts
    assert torch.equal(started.node_embeddings(ids), saved["node_embeddings.weight"][ids])
    assert r["settings"]["node_vocab"] == "train"
    assert r["timing"]["csqa"]["fused"]["parameters"] < r["timing"]["csqa"]["lm"]["parameters"] + graph.num_concepts * 8


def test_fused_pt_dea_only_pretraining(built, unpacked, tmp_path, monkeypatch):
    """--pretrain-mlm-weight 0: pre-training with the dEA objective only (no MLM loss, no token
    masked), on the bundle's pre-linked glosses."""
    root, out, te = built
    b, graph = unpacked
    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path / "home"))
    rg = _module("run_gpu")
    args = rg.parse_args(["--bundle", str(out), "--out", str(tmp_path), "--node-dim", "8", "--graph-hidden-dim", "16",
                          "--fusion-layers", "1", "--workers", "0", "--eval-batch-size", "4", "--pretrain-steps", "2",
                          "--pretrain-batch-size", "4", "--pretrain-mlm-weight", "0", "--precision", "no",
                          "--pretrain-lr-lm", "3e-6"])
    pt = rg.run_pretraining(args, b, graph, tmp_path / "w")
    assert pt["steps"] == 2 and pt["final"]["dea_count"] > 0
    assert pt["final"]["mlm_loss"] is None and pt["initial"]["mlm_loss"] is None
    import yaml

    used = yaml.safe_load((tmp_path / "w" / "pretrain" / "config.yaml").read_text())
    assert used["train"]["lr_lm"] == 3e-6 and used["train"]["lr_fusion"] == args.lr_fusion
    assert used["objective"]["mlm_weight"] == 0 and used["objective"]["mlm_probability"] == 0


def _cn4_table(tmp_path: Path) -> Path:
    """A ConceptNet 4 table (head relation tail freq score) joining words of the first ``N``
    CommonsenseQA questions of each split to their choices, plus one negated row."""
    import gzip
    import re

    from kgfuse.tasks.datasets import load_examples

    rows = ["head\trelation\ttail\tfreq\tscore"]
    for name in ("train_ih.jsonl", "dev_rand_split.jsonl"):
        exs, _ = load_examples(SHARED / "csqa" / name, "csqa")
        for ex in exs[:N]:
            words = [w for w in re.findall(r"[a-z]+", ex.question.lower()) if len(w) > 4][:3]
            for w in words:
                rows += [f"{w}\tAtLocation\t{c.lower()}\t3\t1" for c in ex.choices]
    rows.append("penguin\tCapableOf\tfly\t-5\t1")  # negated: dropped by default, on both sides
    graph_file = tmp_path / "cn4.tsv.gz"
    with gzip.open(graph_file, "wt", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    return graph_file


def _tiny_encoder(tmp_path: Path) -> Path:
    """A tiny random BERT with MiniLM's tokenizer, saved to a folder."""
    import torch
    from transformers import BertConfig, BertModel

    from kgfuse.encoders.text import load_tokenizer

    te = tmp_path / "tiny_bert"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, **TINY)).save_pretrained(str(te))
    load_tokenizer("all-MiniLM-L6-v2").save_pretrained(str(te))
    return te


def test_graph_file_bundle_conceptnet4_format(tmp_path, monkeypatch):
    """``make_bundle.py --graph FILE``: a ConceptNet 4 table travels as it is, is reloaded with
    the recorded format and options on the GPU side (hash checked), and the runner trains on it;
    ``--lr-lm-only`` sets the LM-only model's text-encoder learning rate alone."""
    if not (SHARED / "csqa" / "train_ih.jsonl").is_file():
        pytest.skip(f"{SHARED}/csqa not present")
    from kgfuse.kg.formats import open_graph

    graph_file = _cn4_table(tmp_path)
    te = _tiny_encoder(tmp_path)
    out = tmp_path / "bundle"
    rc = _module("make_bundle").main([
        "--out", str(out), "--data", str(SHARED), "--datasets", "csqa", "--graph", str(graph_file),
        "--graph-name", "ConceptNet 4 (test rows)", "--text-encoder", str(te), "--max-examples", str(N),
        "--workers", "1", "--pretrain-glosses", "0", "--retriever", json.dumps({"type": "subgraph", "max_nodes": 32})])
    assert rc == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["graph"]["loader"] == "file" and m["graph"]["files"] == ["graph/cn4.tsv.gz"]
    assert (out / "graph" / "cn4.tsv.gz").read_bytes() == graph_file.read_bytes()
    assert not (out / "wordnet").exists()
    assert m["datasets"]["csqa"]["splits"]["train"]["stats"]["share_q_and_a"] > 0
    bundle = _module("bundle")
    b = bundle.Bundle.open(out).verify()
    b.unpack(tmp_path / "work")
    graph = b.graph()
    assert graph.hash == m["graph"]["hash"] == open_graph(graph_file).hash
    assert not graph.has_concept("penguin")  # the negated row was dropped when the bundle was made too
    assert len(b.preprocessed("csqa", "dev", graph, b.examples("csqa", "dev"))) == N

    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path / "home"))
    rg = _module("run_gpu")
    args = rg.parse_args(["--bundle", str(out), "--out", "x", "--lr-lm", "5e-5", "--lr-lm-only", "1e-4", "--workers", "0"])
    assert rg.make_config(args, "csqa", True, 0, 1, b.model_dir).train.lr_lm == 1e-4
    assert rg.make_config(args, "csqa", False, 0, 1, b.model_dir).train.lr_lm == 5e-5
    res_dir = tmp_path / "out"
    rc = rg.main(["--bundle", str(out), "--out", str(res_dir), "--work", str(tmp_path / "work2"), "--seeds", "0",
                  "--epochs", "1", "--batch-size", "2", "--eval-batch-size", "4", "--max-length", "48",
                  "--timing-steps", "1", "--warmup-steps", "1", "--node-dim", "8", "--graph-hidden-dim", "16",
                  "--fusion-layers", "1", "--workers", "0", "--threads", "1", "--time-budget", "600",
                  "--lr-lm-only", "1e-4"])
    assert rc == 0
    r = json.loads((res_dir / "results.json").read_text())
    assert r["graph"]["name"] == "ConceptNet 4 (test rows)" and r["settings"]["lr_lm_only"] == 1e-4
    assert [(x["model"], "error" in x) for x in r["runs"]] == [("lm", False), ("fused", False)]
    md = (res_dir / "results.md").read_text()
    assert md.startswith("# kgfuse: KG-fused vs LM-only (ConceptNet 4 (test rows))") and "LM-only's LM: 0.0001" in md


def test_knowledge_text_models_match_the_library_pipeline(tmp_path, monkeypatch):
    """``make_bundle.py --definitions wordnet`` carries the WordNet gloss of every grounded
    concept; the runner's ``*-text-*`` models then build, from the bundle alone, the very
    inputs the library's own pipeline builds with the ``wordnet`` source (same token ids, same
    entity alignments, same subgraphs), and ``--runs`` trains exactly the runs given, in order."""
    if not (SHARED / "csqa" / "train_ih.jsonl").is_file():
        pytest.skip(f"{SHARED}/csqa not present")
    if not (_wordnet_dir() / "data.noun").is_file():
        pytest.skip("WordNet database files not installed")
    from kgfuse.encoders.text import load_tokenizer
    from kgfuse.kg.formats import open_graph
    from kgfuse.kg.verbalize import WordNetDefinitions
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.pipeline import MCFeatureDataset, build_linker, build_retriever, build_verbalizer, preprocess

    graph_file = _cn4_table(tmp_path)
    te = _tiny_encoder(tmp_path)
    out = tmp_path / "bundle"
    linker_opts = {"max_words": 4, "normalize": "lemma"}
    retriever_opts = {"type": "subgraph", "max_nodes": 32}
    rc = _module("make_bundle").main([
        "--out", str(out), "--data", str(SHARED), "--datasets", "csqa", "--graph", str(graph_file),
        "--text-encoder", str(te), "--max-examples", str(N), "--workers", "1", "--pretrain-glosses", "0",
        "--linker", json.dumps(linker_opts), "--retriever", json.dumps(retriever_opts), "--definitions", "wordnet"])
    assert rc == 0
    m = json.loads((out / "manifest.json").read_text())
    d = m["definitions"]
    assert d["file"] == "definitions/wordnet.tsv.gz" and d["source"]["type"] == "wordnet" and 0 < d["defined"] <= d["concepts"]
    b = _module("bundle").Bundle.open(out).verify()
    b.unpack(tmp_path / "work")
    graph = b.graph()
    wn = WordNetDefinitions(_wordnet_dir())
    lines = [ln.split("\t") for ln in b.definitions_file.read_text("utf-8").splitlines() if not ln.startswith("#")]
    assert len(lines) == d["defined"] and all(wn(name) == text for name, text in lines)

    # the same features on both sides: library pipeline (spaCy linking, WordNet files) vs bundle + runner
    rg = _module("run_gpu")
    args = rg.parse_args(["--bundle", str(out), "--out", "x", "--runs", "fused-text-definitions:0,lm-text-both:1"])
    assert args.models == ["fused-text-definitions", "lm-text-both"] and args.seeds == [0, 1]
    tok = load_tokenizer(str(b.model_dir))
    lib_graph = open_graph(graph_file)
    lib_linker, lib_retriever = build_linker(lib_graph, linker_opts), build_retriever(lib_graph, retriever_opts)
    exs, _ = load_examples(SHARED / "csqa" / "dev_rand_split.jsonl", "csqa")
    exs = exs[:N]
    lib_pre = preprocess(exs, lib_graph, lib_linker, lib_retriever, tmp_path / "lib_cache")
    bexs = b.examples("csqa", "dev")
    sets = rg.model_datasets(bexs, b.preprocessed("csqa", "dev", graph, bexs), tok, 64,
                             {p: build_verbalizer(graph, rg.verbalizer_options(args, p, b.definitions_file), tok)
                              for p in ("definitions", "both")}, 128)
    def canon(x) -> str:
        return json.dumps(x, default=lambda y: y.tolist() if hasattr(y, "tolist") else repr(y))

    with_text = 0
    for preset, kt in (("definitions", {"triples": 0, "definitions": "answer"}), ("both", {"definitions": "answer"})):
        v = build_verbalizer(lib_graph, {"enabled": True, "triples": 5, "max_tokens": 64, **kt}, tok)
        assert v.config["definition_source"]["type"] == "wordnet"
        for base in ("lm", "fused"):
            lib = MCFeatureDataset(exs, lib_pre, tok, max_length=128, verbalizer=v, graph_inputs=base == "fused")
            ours = sets[f"{base}-text-{preset}"]
            for i in range(N):
                a, c = lib[i], ours[i]
                assert a.keys() == c.keys(), (preset, base, i)
                for k in a:
                    assert canon(a[k]) == canon(c[k]), (preset, base, i, k)
                with_text += canon(a["input_ids"]) != canon(sets[base][i]["input_ids"])
    assert with_text > 0  # some statements did get knowledge text

    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path / "home"))
    res_dir = tmp_path / "out"
    rc = rg.main(["--bundle", str(out), "--out", str(res_dir), "--work", str(tmp_path / "work2"),
                  "--runs", "fused-text-definitions:0,lm-text-both:1", "--epochs", "1", "--batch-size", "2",
                  "--eval-batch-size", "4", "--max-length", "48", "--text-max-length", "64", "--timing-steps", "1",
                  "--warmup-steps", "1", "--node-dim", "8", "--graph-hidden-dim", "16", "--fusion-layers", "1",
                  "--workers", "0", "--threads", "1", "--time-budget", "600"])
    assert rc == 0
    r = json.loads((res_dir / "results.json").read_text())
    assert [(x["model"], x["seed"], "error" in x) for x in r["runs"]] == [("fused-text-definitions", 0, False),
                                                                        ("lm-text-both", 1, False)]
    assert set(r["knowledge_text"]) == {"definitions", "both"}
    assert r["knowledge_text"]["both"]["definition_source"]["type"] == "file" and r["knowledge_text"]["both"]["triples"] == 5
    assert r["knowledge_text"]["definitions"]["triples"] == 0
    assert set(r["timing"]["csqa"]) == {"fused-text-definitions", "lm-text-both"}
    assert all(len(x["predictions_at_best_dev"]["dev"]["predicted"]) == N for x in r["runs"])
    assert "Knowledge text (`*-text-*` models, max length 64): definitions: up to 0 facts, definitions answer from file" \
        in (res_dir / "results.md").read_text()
