"""TrainConfig: YAML/TOML, path resolution relative to the config file, overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgfuse.tasks.cli import data_dir
from kgfuse.tasks.config import ConfigError, TrainConfig, apply_overrides, load_config, resolve_path
from kgfuse.tasks.demo import DEMO_CONFIG, demo_config

ROOT = Path(__file__).resolve().parents[2]


def test_yaml_paths_relative_to_file_and_overrides(tmp_path, monkeypatch):
    d = tmp_path / "exp"
    d.mkdir()
    (d / "c.yaml").write_text(
        "data: {format: csqa, train: data/train.jsonl, dev: bundled:sample_csqa/dev.jsonl}\n"
        "graph: {path: ../kg/graph}\n"
        "train: {epochs: 2, lr_lm: 1.0e-5}\n"
        "output_dir: out\n"
    )
    monkeypatch.chdir(ROOT)  # the CWD must not matter
    cfg = load_config(d / "c.yaml", ["train.lr_lm=2e-5", "train.epochs=4", "linker.max_words=3", "retriever.type=subgraph"])
    assert cfg.train.lr_lm == 2e-5 and isinstance(cfg.train.lr_lm, float) and cfg.train.epochs == 4
    assert cfg.linker == {"max_words": 3} and cfg.retriever["type"] == "subgraph"
    assert cfg.path(cfg.data.train) == d / "data" / "train.jsonl"
    assert cfg.path(cfg.graph.path) == tmp_path / "kg" / "graph"
    assert cfg.path(cfg.data.dev) == data_dir() / "sample_csqa" / "dev.jsonl"
    r = cfg.resolved()
    assert r.output_dir == str(d / "out") and Path(r.data.train).is_absolute()
    assert TrainConfig.from_dict(r.to_dict()) == r  # round trip


def test_toml_equals_yaml(tmp_path):
    (tmp_path / "a.yaml").write_text("data: {train: t.jsonl}\ntrain: {epochs: 3, batch_size: 4, mixed_precision: bf16}\nretriever: {type: path, max_hops: 2}\n")
    (tmp_path / "a.toml").write_text('[data]\ntrain = "t.jsonl"\n[train]\nepochs = 3\nbatch_size = 4\nmixed_precision = "bf16"\n[retriever]\ntype = "path"\nmax_hops = 2\n')
    assert load_config(tmp_path / "a.yaml") == load_config(tmp_path / "a.toml")


@pytest.mark.parametrize(
    "text, match",
    [
        ("train: {epoch: 3}\n", "unknown key train.'epoch'"),
        ("train: {epochs: three}\n", "train.epochs must be an integer"),
        ("data: [1, 2]\n", "data must be a mapping"),
        ("train: {save_best: 1}\n", "train.save_best must be true/false"),
        ("bogus: 1\n", "unknown key 'bogus'"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as ei:
        load_config(p)
    assert str(p) in str(ei.value)


def test_override_errors_and_relative_path_without_base():
    with pytest.raises(ConfigError, match="form section.key=value"):
        apply_overrides({}, ["train.lr_lm"])
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]", "a.b=null"]) == {"a": {"b": None, "c": [1, 2]}}
    with pytest.raises(ConfigError, match="no base folder"):
        resolve_path("rel/path", None)
    assert resolve_path("/abs/x", None) == Path("/abs/x")


def test_demo_yaml_matches_builtin_demo_config(tmp_path):
    shipped = load_config(ROOT / "configs" / "demo.yaml")
    builtin = TrainConfig.from_dict(DEMO_CONFIG, base_dir=ROOT / "configs")
    assert shipped == builtin
    cfg = demo_config(tmp_path / "out", ["train.epochs=1"])
    assert cfg.output_dir == str(tmp_path / "out") and cfg.train.epochs == 1
    for p in (cfg.data.train, cfg.data.dev, cfg.graph.path):
        assert cfg.path(p).is_file(), p


@pytest.mark.parametrize("name", ["csqa.yaml", "obqa.yaml", "swag.yaml", "demo.yaml", "comparison-example.yaml"])
def test_shipped_configs_load(name):
    path = ROOT / "configs" / name
    if name.startswith("comparison"):
        import yaml

        assert yaml.safe_load(path.read_text())["runs"]
        return
    cfg = load_config(path)
    assert cfg.train.epochs >= 1 and cfg.data.train
