"""Experiment files: rows x seeds trained where missing, then one table with mean and spread."""

from __future__ import annotations

import json
import shlex
import statistics

import pytest
import yaml

from kgfuse.tasks.cli import data_dir, main
from kgfuse.tasks.config import ConfigError
from kgfuse.tasks.experiments import load_experiment_file, run_experiments
from kgfuse.tasks.provenance import machine

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}


def _train_config(folder):
    d = data_dir()
    cfg = {
        "data": {"format": "csqa", "train": str(d / "sample_csqa/train.jsonl"), "dev": str(d / "sample_csqa/dev.jsonl"),
                 "max_train": 16},
        "graph": {"path": str(d / "sample_kg/assertions.csv")},
        "retriever": {"type": "subgraph", "max_nodes": 8},
        "model": {"options": {"text_config": TINY, "num_fusion_layers": 1, "node_dim": 16, "graph_hidden_dim": 16}},
        "train": {"epochs": 1, "batch_size": 8, "max_length": 40, "mixed_precision": "no"},
        "cache_dir": str(folder / "cache"),
    }
    p = folder / "tiny.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _experiment(folder, rows):
    _train_config(folder)
    p = folder / "exp.yaml"
    p.write_text(yaml.safe_dump({"output_dir": "out", "rows": rows}))
    return p


def test_rows_train_once_and_table_has_mean_and_spread(tmp_path):
    exp = _experiment(tmp_path, [
        {"name": "lm", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0, 1]},
        {"name": "fused", "config": "tiny.yaml", "seeds": [3], "baseline": "lm"},
    ])
    res = run_experiments(exp, progress=False)
    out = tmp_path / "out"
    assert res.missing == []
    for run in ("lm-s0", "lm-s1", "fused-s3"):
        assert (out / run / "metrics.json").is_file()
    # each run trained with its own seed and the row's overrides
    assert yaml.safe_load((out / "lm-s1" / "config.yaml").read_text())["train"]["seed"] == 1
    assert yaml.safe_load((out / "lm-s0" / "config.yaml").read_text())["model"]["lm_only"] is True
    assert yaml.safe_load((out / "fused-s3" / "config.yaml").read_text())["model"]["lm_only"] is False
    # the table's numbers are those of the runs' metrics.json
    accs = [json.loads((out / f"lm-s{s}" / "metrics.json").read_text())["splits"]["dev"]["accuracy"] for s in (0, 1)]
    lm = next(r for r in res.table if r["row"] == "lm" and r["split"] == "dev")
    assert lm["per_seed"] == accs and lm["seeds"] == [0, 1] and lm["n"] == 2
    assert lm["mean"] == pytest.approx(statistics.fmean(accs))
    assert lm["std"] == pytest.approx(statistics.stdev(accs))
    fused = next(r for r in res.table if r["row"] == "fused")
    assert fused["n"] == 1 and fused["std"] is None
    assert not any(r["split"] == "train" for r in res.table)     # train accuracy is not a result
    md = (out / "results.md").read_text()
    assert f"{100 * statistics.fmean(accs):.1f}" in md and "kgfuse train --config" in md
    assert (out / "results.csv").read_text().splitlines()[0].startswith("row,split,seeds,n,mean")
    # one record per trained run, with command and commit
    recs = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert sorted(r["row"] for r in recs) == ["fused-s3", "lm-s0", "lm-s1"]
    assert all(r["commit"] and "train.seed=" in r["command"] for r in recs)
    assert all(r["machine"] == machine("cpu") for r in recs)  # the machine of the run's sitting
    # ...and its scores: the final evaluation's and each epoch's
    (lm0,) = [r for r in recs if r["row"] == "lm-s0"]
    assert lm0["accuracy"]["dev"] == accs[0] and lm0["best_epoch"] >= 1
    assert [e["epoch"] for e in lm0["epochs"]] == list(range(1, len(lm0["epochs"]) + 1))
    assert max(e["dev_accuracy"] for e in lm0["epochs"]) == accs[0]
    # a second invocation trains nothing and gives the same table
    again = run_experiments(exp, progress=False)
    assert len((out / "rows.jsonl").read_text().splitlines()) == 3
    assert again.table == res.table and again.differences == res.differences

    # paired differences against the baseline row, from the runs' prediction files
    (d,) = res.differences
    f_acc = json.loads((out / "fused-s3" / "metrics.json").read_text())["splits"]["dev"]["accuracy"]
    assert (d["row"], d["baseline"], d["split"], d["seeds"], d["baseline_seeds"]) == ("fused", "lm", "dev", [3], [0, 1])
    assert d["difference"] == pytest.approx(f_acc - statistics.fmean(accs))  # the lm seeds averaged per question
    assert d["low"] <= d["difference"] <= d["high"] and d["p_mcnemar"] is None  # no McNemar test against two seeds
    assert "## Paired differences" in md and f"| fused | lm | dev | {100 * d['difference']:+.1f} |" in md
    # one seed against one seed: the exact McNemar test of the two prediction files
    exp.write_text(yaml.safe_dump({"output_dir": "out", "rows": [
        {"name": "lm", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0]},
        {"name": "fused", "config": "tiny.yaml", "seeds": [3], "baseline": "lm"}]}))
    (d1,) = run_experiments(exp, train=False, progress=False).differences

    def right(run):
        recs = [json.loads(x) for x in (out / run / "predictions-dev.jsonl").read_text().splitlines()]
        return {r["id"]: r["correct"] for r in recs}
    a, b = right("fused-s3"), right("lm-s0")
    assert (d1["a_only"], d1["b_only"]) == (sum(a[k] and not b[k] for k in a), sum(b[k] and not a[k] for k in a))
    assert 0 < d1["p_mcnemar"] <= 1 and d1["difference"] == pytest.approx(f_acc - accs[0])
    # a baseline run without prediction files is reported, not skipped silently
    (out / "lm-s0" / "predictions-dev.jsonl").rename(out / "lm-s0" / "moved.jsonl")
    (d2,) = run_experiments(exp, train=False, progress=False).differences
    assert d2["error"].startswith("no prediction file") and "no prediction file" in (out / "results.md").read_text()


def test_only_and_table_without_training(tmp_path):
    exp = _experiment(tmp_path, [
        {"name": "a", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0]},
        {"name": "b", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0, 1]},
    ])
    res = run_experiments(exp, only=["b-s1"], progress=False)
    out = tmp_path / "out"
    assert [p.name for p in sorted(out.iterdir()) if p.is_dir()] == ["b-s1"]
    assert res.missing == ["a-s0", "b-s0"]
    assert [(r["row"], r["seeds"]) for r in res.table] == [("b", [1])]
    assert "Not finished" in (out / "results.md").read_text()
    res = run_experiments(exp, train=False, progress=False)
    assert res.missing == ["a-s0", "b-s0"] and not (out / "a-s0").exists()
    with pytest.raises(ConfigError, match="unknown rows"):
        run_experiments(exp, only=["c"], progress=False)


def test_stop_after_hours_bounds_the_command_and_the_same_command_resumes(tmp_path, capsys):
    """A time limit ends the run in training with a checkpoint and starts no other; the table
    says where each unfinished run stands; the same command later finishes them, and the
    table gives each run's training time over its sittings."""
    exp = _experiment(tmp_path, [
        {"name": "a", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0]},
        {"name": "b", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0]},
    ])
    out = tmp_path / "out"
    assert main(["evaluate", "--config", str(exp), "--stop-after-hours", "1e-9", "-q"]) == 0
    assert (out / "a-s0" / "checkpoint-1" / "COMPLETE").is_file() and not (out / "b-s0").exists()
    md = (out / "results.md").read_text()
    assert "a-s0 (checkpoint-1), b-s0 (not started)" in md
    (rec,) = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert rec["row"] == "a-s0" and rec["run_finished"] is False
    import transformers

    assert rec["software"]["transformers"] == transformers.__version__ and rec["software"]["python"].count(".") == 2
    assert "train.stop_after_hours" not in rec["command"]  # the row's command, not this sitting's limit
    res = run_experiments(exp, progress=False)
    assert res.missing == [] and res.progress == {}
    runs = {u["run"]: u for u in res.runs}
    assert (runs["a-s0"]["sittings"], runs["b-s0"]["sittings"]) == (2, 1)
    sittings = json.loads((out / "a-s0" / "metrics.json").read_text())["sittings"]
    assert runs["a-s0"]["train_s"] == pytest.approx(sum(x["seconds"] for x in sittings), abs=0.11)
    assert [(x["from_step"], x["to_step"]) for x in sittings] == [(0, 1), (1, 2)]
    assert f"| {runs['a-s0']['train_s'] / 3600:.2f}, 2 |" in (out / "results.md").read_text()
    with pytest.raises(SystemExit, match="--stop-after-hours bounds the training of an experiment file"):
        main(["evaluate", "--model", str(out / "a-s0" / "model"), "--data", "x.jsonl", "--stop-after-hours", "1"])
    cmp = tmp_path / "cmp.yaml"
    cmp.write_text(yaml.safe_dump({"runs": [{"model": str(out / "a-s0" / "model"), "data": "x.jsonl"}]}))
    capsys.readouterr()
    assert main(["evaluate", "--config", str(cmp), "--stop-after-hours", "1"]) == 2
    assert "a comparison file of trained models; stop_after_hours bounds" in capsys.readouterr().err
    assert main(["evaluate", "--config", str(cmp), "--run-set", "train.eval_train_at_end=false"]) == 2
    assert "a comparison file of trained models; run_settings are for the training" in capsys.readouterr().err


@pytest.mark.parametrize("rows, message", [
    ([{"name": "x", "config": "tiny.yaml", "seed": [0]}], r"unknown key 'rows\[0\]\.seed'; valid keys: \['baseline', 'config', 'name', 'pretrain', 'seeds', 'set'\]; did you mean 'seeds'\?"),
    ([{"name": "x", "config": "missing.yaml"}], r"rows\[0\]\.config: file not found"),
    ([{"name": "x", "config": "tiny.yaml", "seeds": ["0"]}], r"rows\[0\]\.seeds: expected a list of integers"),
    ([{"name": "x", "config": "tiny.yaml"}, {"name": "x", "config": "tiny.yaml"}], r"rows\[1\]\.name: 'x' is used twice"),
    ([{"name": "a/b", "config": "tiny.yaml"}], r"rows\[0\]\.name: 'a/b' must be a plain folder name"),
    ([{"name": "x", "config": "tiny.yaml", "set": ["train.seed=3"]}], r"use 'seeds'"),
    ([{"config": "tiny.yaml"}], r"rows\[0\]: missing 'name'"),
    ([{"name": "x", "config": "tiny.yaml", "baseline": "y"}], r"rows\[0\]\.baseline: 'y' is not another row"),
    ([{"name": "x", "config": "tiny.yaml", "baseline": "x"}], r"rows\[0\]\.baseline: 'x' is not another row"),
])
def test_bad_experiment_files_name_file_and_key(tmp_path, rows, message):
    exp = _experiment(tmp_path, rows)
    with pytest.raises(ConfigError, match=message) as ei:
        load_experiment_file(exp)
    assert str(exp) in str(ei.value)


def test_cli_evaluate_runs_an_experiment_file(tmp_path, capsys):
    exp = _experiment(tmp_path, [{"name": "lm", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0]}])
    assert main(["evaluate", "--config", str(exp), "--no-train", "-q"]) == 0
    assert not (tmp_path / "out" / "lm-s0").exists()
    assert (tmp_path / "out" / "results.md").is_file()
    assert main(["evaluate", "--config", str(exp), "--only", "lm", "-q"]) == 0
    assert (tmp_path / "out" / "lm-s0" / "metrics.json").is_file()
    assert "| lm | dev | 0 |" in (tmp_path / "out" / "results.md").read_text()
    exp.write_text(yaml.safe_dump({"rows": [{"name": "x", "config": "tiny.yaml", "seeds": "all"}]}))
    assert main(["evaluate", "--config", str(exp), "-q"]) == 2
    assert "seeds: expected a list of integers" in capsys.readouterr().err


def test_run_settings_reach_every_run_trained_and_its_recorded_command(tmp_path, capsys):
    exp = _experiment(tmp_path, [{"name": "lm", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0, 1]}])
    out = tmp_path / "out"
    run_experiments(exp, only=["lm-s0"], progress=False)
    assert "train" in json.loads((out / "lm-s0" / "metrics.json").read_text())["splits"]
    assert main(["evaluate", "--config", str(exp), "-q", "--run-set", "train.eval_train_at_end=false",
                 "--run-set", "train.eval_batch_size=4"]) == 0
    m1 = json.loads((out / "lm-s1" / "metrics.json").read_text())
    assert sorted(m1["splits"]) == ["dev"] and not (out / "lm-s1" / "predictions-train.jsonl").exists()
    cfg1 = yaml.safe_load((out / "lm-s1" / "config.yaml").read_text())["train"]
    assert cfg1["eval_train_at_end"] is False and cfg1["eval_batch_size"] == 4 and cfg1["seed"] == 1
    recs = {r["row"]: r for r in map(json.loads, (out / "rows.jsonl").read_text().splitlines())}
    argv = shlex.split(recs["lm-s1"]["command"])
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert sets == ["model.lm_only=true", "train.eval_train_at_end=false", "train.eval_batch_size=4", "train.seed=1"]
    assert "eval_train_at_end" not in recs["lm-s0"]["command"]
    # the finished seed 0 was not trained again: its train split is still there
    assert "train" in json.loads((out / "lm-s0" / "metrics.json").read_text())["splits"]
    # what a row trains is not a run setting
    with pytest.raises(ConfigError, match=r"train.lr_lm changes what a run trains or reports"):
        run_experiments(exp, run_settings=["train.lr_lm=1e-3"], progress=False)
    assert main(["evaluate", "--config", str(exp), "-q", "--run-set", "train.metric=train_accuracy"]) == 2
    assert "a run setting is one of" in capsys.readouterr().err


def test_run_settings_may_differ_when_a_run_resumes():
    from kgfuse.tasks.experiments import RUN_SETTINGS
    from kgfuse.tasks.train import RESUME_FREE

    assert set(RUN_SETTINGS) <= RESUME_FREE


def test_files_sharing_an_output_dir_keep_their_own_tables(tmp_path):
    _train_config(tmp_path)
    lm = {"name": "lm", "config": "tiny.yaml", "set": ["model.lm_only=true"], "seeds": [0]}
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump({"output_dir": "out", "title": "first", "rows": [lm]}))
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump({"output_dir": "out", "title": "second", "table": "results-second",
                                      "rows": [lm, {**lm, "name": "lm2"}]}))
    out = tmp_path / "out"
    run_experiments(first, progress=False)
    res = run_experiments(second, train=False, progress=False)  # the shared row is reused, not retrained
    assert res.missing == ["lm2-s0"] and [r["row"] for r in res.table] == ["lm"]
    assert (out / "results.md").read_text().startswith("# first")
    assert (out / "results-second.md").read_text().startswith("# second")
    assert (out / "results-second.csv").read_text().splitlines()[1].startswith("lm,dev,0,")
    for bad in ("sub/name", "", ".hidden", 3):
        second.write_text(yaml.safe_dump({"output_dir": "out", "table": bad, "rows": [lm]}))
        with pytest.raises(ConfigError, match=r"second.yaml: 'table' must be a file name"):
            load_experiment_file(second)


def test_shipped_experiment_files_load_and_validate_every_row(repo_root, monkeypatch):
    from kgfuse.tasks.config import load_config

    monkeypatch.setenv("KGFUSE_DATA", str(repo_root / "no-data-needed"))
    files = sorted((repo_root / "configs").glob("results*.yaml"))
    assert [f.name for f in files] == [
        "results-best-variants.yaml", "results-controls.yaml", "results-four-seeds.yaml", "results-knowledge-text.yaml",
        "results-lm-rate.yaml", "results-obqa-four-seeds.yaml", "results-text-pooling.yaml", "results-three-seeds.yaml",
        "results-until-dev-stops.yaml", "results-wordnet-small.yaml",
        "results.yaml"]
    for f in files:
        exp = load_experiment_file(f)
        for row in exp.rows:
            cfg = load_config(row.config, [*row.overrides, "train.seed=0"])
            assert cfg.train.seed == 0
            lm = any(s == "model.lm_only=true" for s in row.overrides)
            assert cfg.model.lm_only is lm, (f.name, row.name)
            if row.pretrain_config is not None:
                from kgfuse.tasks.pretrain_config import load_pretrain_config

                load_pretrain_config(row.pretrain_config, row.pretrain_overrides)
                init = load_config(row.config, row.train_overrides(0, exp.output_dir)).model.init_from
                assert init == str(exp.output_dir / f"{row.name}-pretrain" / "model")

    # files sharing an output_dir reuse each other's finished runs by row name: a shared name
    # must mean the same training runs
    by_dir: dict = {}
    for f in files:
        exp = load_experiment_file(f)
        for row in exp.rows:
            prev = by_dir.setdefault((exp.output_dir, row.name), (f.name, row))
            if prev[1] is not row:
                a, b = prev[1], row
                assert (a.config, a.overrides, a.pretrain_config, a.pretrain_overrides) == \
                       (b.config, b.overrides, b.pretrain_config, b.pretrain_overrides), (prev[0], f.name, row.name)
                assert set(b.seeds) <= set(a.seeds) or set(a.seeds) <= set(b.seeds)
    full = load_experiment_file(repo_root / "configs/results.yaml")
    text = load_experiment_file(repo_root / "configs/results-knowledge-text.yaml")
    assert text.output_dir == full.output_dir
    assert sorted({r.name for r in full.rows} & {r.name for r in text.rows}) == ["csqa-cn4", "csqa-lm-5e-5", "obqa-cn4", "obqa-lm-1e-4"]
    # the rows trained until dev stops rising are the 3-epoch rows of the same name, longer
    long = load_experiment_file(repo_root / "configs/results-until-dev-stops.yaml")
    three = {r.name: r for r in [*full.rows, *text.rows]}
    for row in long.rows:
        assert row.config == three[row.name].config, row.name
        assert row.overrides == [*three[row.name].overrides, "train.epochs=6", "train.early_stopping_patience=1"]
    # ... and each file writes its own table there
    tables = [(e.output_dir, e.table) for e in map(load_experiment_file, files)]
    assert len(set(tables)) == len(tables)


def test_a_pretrain_row_pretrains_once_and_fine_tunes_every_seed_from_it(tmp_path):
    d = data_dir()
    _train_config(tmp_path)
    (tmp_path / "c.txt").write_text("\n".join(f"You put a plate in the cupboard after washing it ({i})." for i in range(24)))
    (tmp_path / "pre.yaml").write_text(yaml.safe_dump({
        "corpus": [{"type": "text", "path": "c.txt"}],
        "graph": {"path": str(d / "sample_kg/assertions.csv")},
        "model": {"options": {"text_config": TINY, "num_fusion_layers": 1, "node_dim": 16, "graph_hidden_dim": 16}},
        "data": {"eval_fraction": 0.25, "eval_every": 0, "max_eval": 4},
        "train": {"batch_size": 4, "max_steps": 2, "max_length": 24, "mixed_precision": "no"},
    }))
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"output_dir": "out", "rows": [
        {"name": "pt", "config": "tiny.yaml", "pretrain": {"config": "pre.yaml", "set": ["train.seed=5"]}, "seeds": [0, 1]}]}))
    res = run_experiments(exp, progress=False)
    out = tmp_path / "out"
    assert res.missing == [] and (out / "pt-pretrain" / "model").is_dir()
    for s in (0, 1):
        cfg = yaml.safe_load((out / f"pt-s{s}" / "config.yaml").read_text())
        assert cfg["model"]["init_from"] == str(out / "pt-pretrain" / "model")
    recs = [json.loads(x)["row"] for x in (out / "rows.jsonl").read_text().splitlines()]
    assert recs == ["pt-pretrain", "pt-s0", "pt-s1"]          # pre-trained once
    assert "kgfuse pretrain --config" in (out / "results.md").read_text()
    with pytest.raises(ConfigError, match=r"unknown key 'rows\[0\]\.pretrain\.sets'; valid keys: \['config', 'set'\]; did you mean 'set'\?"):
        exp.write_text(yaml.safe_dump({"rows": [{"name": "x", "config": "tiny.yaml", "pretrain": {"config": "pre.yaml", "sets": []}}]}))
        load_experiment_file(exp)


def test_row_command_is_one_shell_line_with_quoted_overrides(tmp_path):
    """The recorded command of a row pastes into a shell: overrides with spaces or braces
    come back as single arguments, the seed last."""
    folder = tmp_path / "my runs"
    folder.mkdir()
    p = _experiment(folder, [{"name": "kge", "config": "tiny.yaml",
                              "set": ["model.options.node_features={kge: transe}", "train.epochs=2"]}])
    row = load_experiment_file(p).rows[0]
    argv = shlex.split(row.command(3, folder / "out"))
    assert argv[:2] == ["kgfuse", "train"]
    assert argv[argv.index("--config") + 1] == str(folder / "tiny.yaml")
    assert argv[argv.index("--output") + 1] == str(folder / "out" / "kge-s3")
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert sets == ["model.options.node_features={kge: transe}", "train.epochs=2", "train.seed=3"]


def test_pretrain_row_command_resumes_and_quotes(tmp_path):
    """A row with pre-training records ``kgfuse pretrain ... --resume auto && kgfuse train ...``,
    both quoted, the fine-tuning starting from the pre-trained model."""
    folder = tmp_path / "my runs"
    folder.mkdir()
    (folder / "pre.yaml").write_text("{}")
    p = _experiment(folder, [{"name": "pt", "config": "tiny.yaml",
                              "pretrain": {"config": "pre.yaml", "set": ["data.eval_every=5", "objective={mlm: true}"]}}])
    row = load_experiment_file(p).rows[0]
    pre, fine = row.command(0, folder / "out").split(" && ")
    argv = shlex.split(pre)
    assert argv[:2] == ["kgfuse", "pretrain"] and argv[argv.index("--resume") + 1] == "auto"
    assert argv[argv.index("--output") + 1] == str(folder / "out" / "pt-pretrain")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--set"] == ["data.eval_every=5", "objective={mlm: true}"]
    assert f"model.init_from={folder / 'out' / 'pt-pretrain' / 'model'}" in shlex.split(fine)
    assert row.pretrain_command(folder / "out") == pre
