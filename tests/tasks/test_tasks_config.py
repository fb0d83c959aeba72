"""TrainConfig: YAML/TOML, path resolution relative to the config file, overrides, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

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
        ("train: {epoch: 3}\n", "unknown key 'train.epoch'.*did you mean 'epochs'"),
        ("train: {epochs: three}\n", "train.epochs must be an integer"),
        ("data: [1, 2]\n", "data must be a mapping"),
        ("train: {save_best: 1}\n", "train.save_best must be true/false"),
        ("bogus: 1\n", "unknown key 'bogus'"),
        ("train: {early_stopping_patience: 0}\n", "train.early_stopping_patience must be >= 1 or null, got 0"),
        ("train: {early_stopping_threshold: -0.01}\n", "train.early_stopping_threshold must be >= 0"),
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


@pytest.mark.parametrize("name, fmt, files", [
    ("csqa.yaml", "csqa", ["csqa/train_rand_split.jsonl", "csqa/dev_rand_split.jsonl"]),
    ("obqa.yaml", "obqa", ["obqa/train.jsonl", "obqa/dev.jsonl", "obqa/test.jsonl"]),
    ("swag.yaml", "swag", ["swag/train.csv", "swag/val.csv"]),
])
def test_shipped_configs_load_and_find_their_data_under_kgfuse_data(name, fmt, files, tmp_path, monkeypatch):
    monkeypatch.delenv("KGFUSE_DATA", raising=False)
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.data.format == fmt
    with pytest.raises(ConfigError, match=r"KGFUSE_DATA\}/.*' uses unset environment variable\(s\) \['KGFUSE_DATA'\]"):
        cfg.path(cfg.data.train)
    monkeypatch.setenv("KGFUSE_DATA", str(tmp_path))
    splits = [cfg.data.train, cfg.data.dev] + ([cfg.data.test] if cfg.data.test else [])
    assert [cfg.path(p) for p in splits] == [tmp_path / f for f in files]
    assert cfg.path(cfg.graph.path) == tmp_path / "conceptnet" / "conceptnet-assertions-5.7.0.csv.gz"


def test_shipped_demo_and_comparison_configs(monkeypatch, tmp_path):
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    assert cfg.data.format == "csqa" and cfg.path(cfg.data.train) == data_dir() / "sample_csqa" / "train.jsonl"
    runs = yaml.safe_load((ROOT / "configs" / "comparison-example.yaml").read_text())["runs"]
    assert [r["name"] for r in runs] == ["demo-model/sample-dev", "demo-model/sample-train"]
    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path))
    assert {resolve_path(r["model"], ROOT / "configs") for r in runs} == {tmp_path / "demo" / "model"}


@pytest.mark.parametrize(
    "text, match",
    [
        ("retriever: {type: subgraph, max_node: 50}\n",
         r"unknown key 'retriever\.max_node'; valid keys: \['bridge', 'max_nodes', 'ranking'\]; did you mean 'max_nodes'\?"),
        ("retriever: {type: path, max_node: 50}\n", r"unknown key 'retriever\.max_node'.*'max_hops'"),
        ("retriever: {type: star}\n", "retriever.type must be one of"),
        ("model: {options: {num_fusion_layer: 1}}\n", "unknown key 'model.options.num_fusion_layer'.*did you mean 'num_fusion_layers'"),
        ("model: {options: {node_dim: 32.5}}\n", "model.options.node_dim must be an integer"),
        ("model: {options: {summary_norm: maybe}}\n", "model.options.summary_norm must be"),
        ("model: {options: {text_pooling: max}}\n",
         r"model.options.text_pooling must be one of \['model', 'cls', 'mean', 'auto'\], got 'max'"),
        ("linker: {blacklist: plate}\n", "linker.blacklist must be a list, got 'plate'"),
        ("linker: {max_word: 3}\n", "did you mean 'max_words'"),
        ("linker: {normalize: 3}\n", "linker.normalize must be a string"),
        ("train: {epochs: 0}\n", "train.epochs must be >= 1, got 0"),
        ("train: {batch_size: 0}\n", "train.batch_size must be >= 1"),
        ("train: {mixed_precision: fp8}\n", r"train.mixed_precision must be one of \['auto', 'no', 'fp16', 'bf16'\]"),
    ],
)
def test_keyword_sections_are_typed(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as ei:
        load_config(p)
    assert str(p) in str(ei.value)
    # the same settings given as --set overrides on an empty config fail the same way
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    with pytest.raises(ConfigError, match=match):
        load_config(empty, [f"{k}={v}" for k, v in _flatten(yaml.safe_load(text)).items()])


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v)
    return out


def test_valid_keyword_sections_load(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("linker: {max_words: 3, blacklist: [plate], normalize: conceptnet4}\n"
                 "retriever: {type: subgraph, max_nodes: 32, ranking: connectivity}\n"
                 "model: {options: {graph_encoder: qagnn, num_fusion_layers: 1, graph_encoder_kwargs: {num_layers: 2}}}\n")
    cfg = load_config(p)
    assert cfg.linker["normalize"] == "conceptnet4" and cfg.retriever["max_nodes"] == 32
    assert cfg.model.options["num_fusion_layers"] == 1


def test_mixed_precision_no_unquoted(tmp_path):
    # YAML reads a bare `no` as false; in the file and on the command line it means "no"
    p = tmp_path / "mp.yaml"
    p.write_text("train: {mixed_precision: no}\n")
    assert load_config(p).train.mixed_precision == "no"
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    assert load_config(empty, ["train.mixed_precision=no"]).train.mixed_precision == "no"
    assert load_config(empty, ["train.mixed_precision=bf16"]).train.mixed_precision == "bf16"
    # true is no precision name, and other string fields still refuse booleans
    with pytest.raises(ConfigError, match="train.mixed_precision must be a string, got True"):
        load_config(empty, ["train.mixed_precision=yes"])
    with pytest.raises(ConfigError, match="train.metric must be a string, got False"):
        load_config(empty, ["train.metric=no"])


def test_cli_config_error_exit_code_2(tmp_path, capsys):
    from kgfuse.tasks.cli import main

    p = tmp_path / "bad.yaml"
    p.write_text("retriever: {type: subgraph, max_node: 50}\n")
    assert main(["train", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'max_nodes'" in err and "Traceback" not in err


def test_a_registered_retriever_is_a_config_type(tiny_kg):
    from kgfuse.kg.retrieval import RETRIEVERS, SubgraphRetriever, register_retriever
    from kgfuse.tasks.pipeline import build_retriever

    @register_retriever("star_test")
    class Star(SubgraphRetriever):
        def __init__(self, graph, max_nodes: int = 8, *, hops: int = 1) -> None:
            super().__init__(graph, max_nodes)
            self.hops = hops

    try:
        cfg = TrainConfig.from_dict({"retriever": {"type": "star_test", "hops": 2}})
        with pytest.raises(ConfigError, match="did you mean 'hops'"):
            TrainConfig.from_dict({"retriever": {"type": "star_test", "hop": 2}})
        r = build_retriever(tiny_kg, cfg.retriever)
        assert isinstance(r, Star) and r.hops == 2 and r.max_nodes == 8
        with pytest.raises(ValueError, match="already registered"):
            register_retriever("star_test")(SubgraphRetriever)
    finally:
        RETRIEVERS.pop("star_test")
    with pytest.raises(ConfigError, match="retriever.type must be one of"):
        TrainConfig.from_dict({"retriever": {"type": "star_test"}})
