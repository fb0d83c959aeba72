"""Every saved artefact is verified when read: a preprocessing cache, a training checkpoint and a
saved model each refuse a damaged file (naming it), a partial folder, and weights that do not
cover the model; undamaged ones still load. Real components on tiny inputs, no mocks."""

from __future__ import annotations

import json
import logging
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForMultipleChoice, BertConfig, get_linear_schedule_with_warmup

from kgfuse.fusion.modeling import KGFusedForMultipleChoice, ModelLoadError
from kgfuse.fusion.pretraining import KGFusedForPreTraining
from kgfuse.integrity import MODEL_MANIFEST, list_files, write_model_manifest
from kgfuse.tasks.checkpoint import (
    COMPLETE,
    MANIFEST,
    CheckpointError,
    drop_optimizer_state,
    folder_sizes,
    has_optimizer_state,
    is_complete,
    latest_checkpoint,
    load_checkpoint,
    verify_checkpoint,
    load_model_weights,
    record_manifest,
    save_checkpoint,
)


def flip(path, offset=None, bit=0):
    """Flip one bit of ``path`` (in the middle by default)."""
    b = bytearray(path.read_bytes())
    o = len(b) // 2 if offset is None else offset
    b[o] ^= 1 << bit
    path.write_bytes(bytes(b))


# --------------------------------------------------------------------------------------
# preprocessing cache

from kgfuse.kg import GraphBuilder  # noqa: E402
from kgfuse.kg.preprocess import MANIFEST as CACHE_MANIFEST  # noqa: E402
from kgfuse.kg.preprocess import CacheFormatError, PreprocessedDataset, preprocess_dataset  # noqa: E402
from kgfuse.kg.retrieval import PathRetriever  # noqa: E402

EXAMPLES = [
    {"id": "a", "question": "Where do you keep a clean plate?", "choices": ["cupboard", "kitchen", "school"]},
    {"id": "b", "question": "Where do children learn?", "choices": ["school", "classroom", "running shoes"]},
    {"id": "c", "question": "What do children wear to run?", "choices": ["running shoes", "dish", "cupboard"]},
]


@pytest.fixture(scope="module")
def kg():
    pytest.importorskip("spacy")  # the entity linker
    b = GraphBuilder()
    for h, r, t in [("plate", "AtLocation", "cupboard"), ("kitchen", "HasA", "cupboard"), ("plate", "AtLocation", "kitchen"),
                    ("child", "AtLocation", "school"), ("school", "HasA", "classroom"), ("running_shoe", "UsedFor", "run"),
                    ("child", "CapableOf", "run"), ("dish", "AtLocation", "cupboard")]:
        b.add(h, r, t)
    return b.build()


def _cache(kg, root, **kw):
    from kgfuse.kg.linking import EntityLinker

    return preprocess_dataset(EXAMPLES, kg, EntityLinker(kg), PathRetriever(kg, max_hops=2), root, num_workers=1,
                              progress=False, **kw)


def _content(pre):
    return [(pre.grounding(i, j).to_dict(), {k: v.tolist() for k, v in pre.arrays(i, j).items()})
            for i in range(len(pre)) for j in range(pre.num_choices(i))]


def test_cache_manifest_written_last_and_happy_path(kg, tmp_path):
    pre = _cache(kg, tmp_path)
    m = json.loads((pre.path / CACHE_MANIFEST).read_text())
    assert set(m["files"]) == set(list_files(pre.path, exclude=[CACHE_MANIFEST]))
    assert {"meta.json", "groundings.json", "arrays/concept_ids.npy", "arrays/paths.npy"} <= set(m["files"])
    # the manifest is the newest file of the folder
    newest = max((p for p in pre.path.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == CACHE_MANIFEST
    again = _cache(kg, tmp_path)
    assert again.cache_hit and _content(again) == _content(pre)
    assert _content(PreprocessedDataset.load(pre.path, graph=kg)) == _content(pre)


def test_cache_refuses_every_damaged_file_naming_it(kg, tmp_path):
    pre = _cache(kg, tmp_path)
    files = list_files(pre.path)
    assert {"manifest.json", "meta.json", "groundings.json", "arrays/choice_ptr.npy", "arrays/concept_ids.npy",
            "arrays/node_ptr.npy", "arrays/node_type.npy", "arrays/path_len.npy", "arrays/path_ptr.npy",
            "arrays/path_rels.npy", "arrays/paths.npy"} <= set(files)  # every one of them is damaged below
    for rel in files:
        f = pre.path / rel
        pristine = f.read_bytes()
        flip(f)
        with pytest.raises(CacheFormatError, match=re.escape(rel)):
            PreprocessedDataset.load(pre.path, graph=kg)
        with pytest.raises(CacheFormatError, match=re.escape(rel)):  # the cache is not silently reused either
            _cache(kg, tmp_path)
        f.write_bytes(pristine)
    flip(pre.path / "arrays" / "paths.npy")
    with pytest.raises(CacheFormatError, match=r"arrays/paths\.npy: content differs .*preprocess_dataset\(\.\.\., rebuild=True\)"):
        PreprocessedDataset.load(pre.path, graph=kg)
    f = pre.path / "arrays" / "concept_ids.npy"
    f.write_bytes(f.read_bytes()[:-4])
    with pytest.raises(CacheFormatError, match=r"concept_ids\.npy: \d+ bytes, manifest.json records \d+ \(truncated\)"):
        PreprocessedDataset.load(pre.path, graph=kg)


def test_cache_hash_check_can_be_skipped_but_not_the_sizes(kg, tmp_path):
    pre = _cache(kg, tmp_path)
    f = pre.path / "groundings.json"
    text = f.read_text()
    f.write_text(text.replace('"cupboard"', '"cupboarc"', 1))  # same size, other content
    with pytest.raises(CacheFormatError, match="groundings.json: content differs"):
        PreprocessedDataset.load(pre.path, graph=kg)
    # unverified, the file is read as it is now
    assert [m.text for m in PreprocessedDataset.load(pre.path, graph=kg, verify=False).grounding(0, 0).mentions] == [
        "plate", "cupboarc"]
    f.write_text(text + " ")
    with pytest.raises(CacheFormatError, match="groundings.json: .* bytes"):
        PreprocessedDataset.load(pre.path, graph=kg, verify=False)


def test_partial_cache_is_refused_and_rebuilt_on_request(kg, tmp_path):
    pre = _cache(kg, tmp_path)
    ref = _content(pre)
    (pre.path / CACHE_MANIFEST).unlink()
    with pytest.raises(CacheFormatError, match=r"manifest.json: missing .*rebuild=True"):
        PreprocessedDataset.load(pre.path, graph=kg)
    with pytest.raises(CacheFormatError, match="manifest.json: missing"):
        _cache(kg, tmp_path)
    rebuilt = _cache(kg, tmp_path, rebuild=True)
    assert not rebuilt.cache_hit and rebuilt.path == pre.path and _content(rebuilt) == ref
    assert _cache(kg, tmp_path).cache_hit
    # a folder holding only the manifest (meta.json lost) is a damaged cache, not "no cache"
    (pre.path / "meta.json").unlink()
    with pytest.raises(CacheFormatError, match="meta.json: missing"):
        PreprocessedDataset.load(pre.path, graph=kg)


# --------------------------------------------------------------------------------------
# models

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
            max_position_embeddings=64)


def tiny_model(seed=0, cls=KGFusedForMultipleChoice):
    torch.manual_seed(seed)
    m = cls.from_text_config(BertConfig(**TINY), graph_encoder="qagnn", num_concepts=20, num_relations=4,
                             num_fusion_layers=1, node_dim=8, graph_hidden_dim=8)
    m.restrict_node_table([1, 3, 5])  # a ConceptTable: its ``rows`` buffer is never re-initialised
    return m


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture()
def saved(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "model")
    return model, tmp_path / "model"


def test_model_manifest_and_happy_paths(saved):
    model, d = saved
    m = json.loads((d / MODEL_MANIFEST).read_text())
    assert set(m["files"]) == {"config.json", "model.safetensors"} and m["kind"] == "model"
    assert same_weights(model, KGFusedForMultipleChoice.from_pretrained(d))
    auto = AutoModelForMultipleChoice.from_pretrained(d)
    assert type(auto) is KGFusedForMultipleChoice and same_weights(model, auto)
    loaded, info = KGFusedForMultipleChoice.from_pretrained(d, output_loading_info=True)
    assert same_weights(model, loaded) and not info["missing_keys"] and not info["unexpected_keys"]
    other = tiny_model(seed=1)
    assert not same_weights(model, other)
    load_model_weights(other, d)
    assert same_weights(model, other)


def test_damaged_model_files_are_refused_naming_them(saved, tmp_path):
    from kgfuse.tasks.inference import KGFusePredictor
    from kgfuse.tasks.pipeline import PIPELINE_FILE

    _, d = saved
    (d / PIPELINE_FILE).write_text("{}")  # enough for the predictor to reach the model files
    cfg = (d / "config.json").read_text()
    assert '"classifier_dropout": 0.1,' in cfg
    damage = {"model.safetensors": lambda f: flip(f, bit=3),  # a weight, or the header
              # still valid JSON, so that the Auto class reads it before the model class verifies it
              "config.json": lambda f: f.write_text(cfg.replace('"classifier_dropout": 0.1,', '"classifier_dropout": 0.3,'))}
    for name in ("model.safetensors", "config.json"):
        f = d / name
        pristine = f.read_bytes()
        damage[name](f)
        for load in (KGFusedForMultipleChoice.from_pretrained, AutoModelForMultipleChoice.from_pretrained,
                     KGFusePredictor.from_pretrained):
            with pytest.raises(ModelLoadError, match=rf"{name}: content differs"):
                load(d)
        with pytest.raises(CheckpointError, match=rf"{name}: content differs"):
            load_model_weights(tiny_model(), d)
        f.write_bytes(pristine[: len(pristine) // 2])
        with pytest.raises(ModelLoadError, match=rf"{name}: \d+ bytes, kgfuse_manifest.json records \d+ \(truncated\)"):
            KGFusedForMultipleChoice.from_pretrained(d)
        f.write_bytes(pristine)
    (d / MODEL_MANIFEST).write_text("{")
    with pytest.raises(ModelLoadError, match="kgfuse_manifest.json: corrupt or truncated JSON"):
        KGFusedForMultipleChoice.from_pretrained(d)


def _rewrite_weights(d, change, manifest=True):
    sd = load_file(str(d / "model.safetensors"))
    change(sd)
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    if manifest:
        write_model_manifest(d)  # a consistent folder whose weights do not cover the model
    else:
        (d / MODEL_MANIFEST).unlink()


@pytest.mark.parametrize("manifest", [True, False])
@pytest.mark.parametrize("victim", ["node_embeddings.rows", "classifier.weight", "text_encoder.embeddings.word_embeddings.weight"])
def test_missing_tensor_is_refused_unless_partial_loading_is_asked(saved, victim, manifest, caplog):
    model, d = saved
    _rewrite_weights(d, lambda sd: sd.pop(victim), manifest)
    with pytest.raises(ModelLoadError, match=rf"1 missing tensor \({victim}\).*allow_partial=True"):
        KGFusedForMultipleChoice.from_pretrained(d)
    with pytest.raises(ModelLoadError, match=victim):
        AutoModelForMultipleChoice.from_pretrained(d)
    with pytest.raises(CheckpointError, match=victim):
        load_model_weights(tiny_model(seed=1), d)
    with caplog.at_level(logging.WARNING, logger="kgfuse.fusion.modeling"):
        part = KGFusedForMultipleChoice.from_pretrained(d, allow_partial=True)
    assert any(victim in r.getMessage() and "allow_partial" in r.getMessage() for r in caplog.records)
    own, got = model.state_dict(), part.state_dict()
    assert all(torch.equal(own[k], got[k]) for k in own if k != victim)
    if victim == "node_embeddings.rows":  # a missing buffer is zero, not uninitialised memory
        assert not got[victim].any() and own[victim].any()


def test_unexpected_tensor_is_refused(saved):
    model, d = saved
    _rewrite_weights(d, lambda sd: sd.__setitem__("bogus.weight", torch.zeros(3)))
    with pytest.raises(ModelLoadError, match=r"1 unexpected tensor \(bogus.weight\)"):
        KGFusedForMultipleChoice.from_pretrained(d)
    part = KGFusedForMultipleChoice.from_pretrained(d, allow_partial=True)
    assert same_weights(model, part) and "bogus.weight" not in part.state_dict()


def test_heads_still_swap_between_kgfuse_classes(tmp_path):
    """A pre-training save loads as a multiple-choice model (fresh scorer) and back (fresh
    heads): whole head modules one class lacks are expected; a missing tensor elsewhere is not."""
    pt = tiny_model(cls=KGFusedForPreTraining)
    pt.save_pretrained(tmp_path / "pt")
    mc = KGFusedForMultipleChoice.from_pretrained(tmp_path / "pt")
    shared = [k for k in mc.state_dict() if not k.startswith("classifier.")]
    assert shared and all(torch.equal(mc.state_dict()[k], pt.state_dict()[k]) for k in shared)
    mc.save_pretrained(tmp_path / "mc")
    back = KGFusedForPreTraining.from_pretrained(tmp_path / "mc")
    assert torch.equal(back.node_embeddings.rows, pt.node_embeddings.rows)
    # the same folder missing a pre-training head tensor is refused when loaded by its own class
    _rewrite_weights(tmp_path / "pt", lambda sd: sd.pop("mlm_head.bias"))
    with pytest.raises(ModelLoadError, match=r"mlm_head\.bias"):
        KGFusedForPreTraining.from_pretrained(tmp_path / "pt")
    _rewrite_weights(tmp_path / "pt", lambda sd: sd.pop("text_encoder.pooler.dense.bias"))
    with pytest.raises(ModelLoadError, match=r"text_encoder\.pooler\.dense\.bias"):
        KGFusedForMultipleChoice.from_pretrained(tmp_path / "pt")


# --------------------------------------------------------------------------------------
# checkpoints


def _training_objects(seed):
    model = tiny_model(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return model, opt, get_linear_schedule_with_warmup(opt, 1, 10)


def _trained_checkpoint(path, step=1):
    model, opt, sch = _training_objects(0)
    (sum((p ** 2).sum() for p in model.parameters()) * 1e-3).backward()
    opt.step()
    sch.step()
    return model, save_checkpoint(path, model=model, optimizer=opt, scheduler=sch,
                                  trainer_state={"epoch": 0, "global_step": step})


def test_dropping_the_optimizer_state_keeps_a_verified_checkpoint(tmp_path):
    model, ck = _trained_checkpoint(tmp_path / "last")
    before = folder_sizes(tmp_path)["last"]
    assert has_optimizer_state(ck)
    freed = drop_optimizer_state(ck)
    assert freed > 0 and not has_optimizer_state(ck) and drop_optimizer_state(ck) == 0
    verify_checkpoint(ck)
    after = folder_sizes(tmp_path)
    assert after["last"] == sum(f.stat().st_size for f in ck.rglob("*") if f.is_file()) < before - freed / 2
    assert after["total"] == after["last"]
    m2, opt2, sch2 = _training_objects(1)
    load_checkpoint(ck, model=m2)  # weights and state load without the optimiser
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(ck, model=m2, optimizer=opt2)


def test_checkpoint_manifest_and_happy_path(tmp_path):
    model, ck = _trained_checkpoint(tmp_path / "checkpoint-1")
    m = json.loads((ck / MANIFEST).read_text())
    assert set(m["files"]) == set(list_files(ck, exclude=[MANIFEST, COMPLETE]))
    assert {"model/model.safetensors", "model/config.json", "optimizer.safetensors", "rng-0.safetensors",
            "trainer_state.json"} <= set(m["files"])
    assert is_complete(ck)
    m2, opt2, sch2 = _training_objects(1)
    state = load_checkpoint(ck, model=m2, optimizer=opt2, scheduler=sch2)
    assert state["global_step"] == 1 and same_weights(model, m2) and opt2.state_dict()["state"]


def test_checkpoint_refuses_every_damaged_file_naming_it(tmp_path):
    _, ck = _trained_checkpoint(tmp_path / "checkpoint-1")
    files = list_files(ck, exclude=[COMPLETE])
    assert {"manifest.json", "model/config.json", "model/model.safetensors", "optimizer.json", "optimizer.safetensors",
            "rng-0.json", "rng-0.safetensors", "scheduler.json", "trainer_state.json"} <= set(files)  # each damaged below
    for rel in files:
        f = ck / rel
        pristine = f.read_bytes()
        flip(f, bit=1)
        m2, opt2, sch2 = _training_objects(1)
        with pytest.raises(CheckpointError, match=rf"{re.escape(rel)}.*resume from another checkpoint"):
            load_checkpoint(ck, model=m2, optimizer=opt2, scheduler=sch2)
        f.write_bytes(pristine[: len(pristine) // 2])
        with pytest.raises(CheckpointError, match=re.escape(rel)):
            load_checkpoint(ck, model=m2)
        f.unlink()
        with pytest.raises(CheckpointError, match=rf"{re.escape(rel)}: missing"):
            load_checkpoint(ck, model=m2)
        f.write_bytes(pristine)
    assert load_checkpoint(ck, model=tiny_model(1))["global_step"] == 1


def test_partial_checkpoint_is_refused(tmp_path):
    model, ck = _trained_checkpoint(tmp_path / "checkpoint-1")
    (ck / MANIFEST).unlink()
    assert not is_complete(ck)
    with pytest.raises(CheckpointError, match=r"manifest.json: missing .*record_manifest"):
        load_checkpoint(ck, model=tiny_model(1))
    # unchecked on request (a folder written before manifests existed)...
    m2 = tiny_model(1)
    load_checkpoint(ck, model=m2, verify=False)
    assert same_weights(model, m2)
    # ...or adopted as it is
    record_manifest(ck)
    assert is_complete(ck) and load_checkpoint(ck, model=tiny_model(1))["global_step"] == 1


def test_resume_auto_falls_back_past_a_damaged_checkpoint(tmp_path):
    run = tmp_path / "run"
    _trained_checkpoint(run / "checkpoint-1", step=1)
    _, newest = _trained_checkpoint(run / "checkpoint-2", step=2)
    assert latest_checkpoint(run) == newest
    flip(newest / "optimizer.safetensors")
    with pytest.warns(UserWarning, match=r"skipping a damaged checkpoint: .*checkpoint-2/optimizer.safetensors"):
        assert latest_checkpoint(run) == run / "checkpoint-1"
    # an unfinished newest folder (no marker) is skipped with a warning too
    (newest / COMPLETE).unlink()
    with pytest.warns(UserWarning, match=r"checkpoint-2: no COMPLETE marker"):
        assert latest_checkpoint(run) == run / "checkpoint-1"
    # when none verifies, resuming fails instead of silently starting a new run
    (run / "checkpoint-1" / MANIFEST).unlink()
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match=r"no checkpoint verifies:\n.*checkpoint-1/manifest.json: missing"):
        latest_checkpoint(run)
    shutil.rmtree(run / "checkpoint-1")
    with pytest.warns(UserWarning):
        assert latest_checkpoint(run) is None
