"""Experiment files: a results table reproduced from scratch by one command.

An experiment file names rows (a training config plus overrides) and the seeds of each row::

    # configs/results-csqa.yaml
    output_dir: ${KGFUSE_HOME}/results/csqa     # relative to this file, or absolute
    splits: [dev]                               # the table's columns (default: every split but train)
    table: results                              # the table's file names (default: results.md / .csv)
    rows:
      - name: lm-1e-4                           # LM only, learning rate 1e-4
        config: csqa_conceptnet4.yaml           # relative to this file
        set: [model.lm_only=true, train.lr_lm=1e-4]
        seeds: [0, 1]
      - name: fused-cn4
        config: csqa_conceptnet4.yaml
        seeds: [0, 1]
        baseline: lm-1e-4                       # paired differences against this row
      - name: fused-pt                          # ERNIE pre-training first, then fine-tuning
        config: csqa_wordnet.yaml
        pretrain: {config: pretrain_wordnet.yaml, set: [train.max_steps=300]}
        seeds: [0, 1]

``kgfuse evaluate --config FILE`` (or :func:`run_experiments`) trains every (row, seed) whose
run folder ``<output_dir>/<name>-s<seed>`` holds no finished run, resuming from its newest
checkpoint where one exists, and then writes ``results.md`` and ``results.csv`` (with
``table: NAME``: ``NAME.md`` and ``NAME.csv``) into ``output_dir``: per row and split, the
accuracy of each seed, their mean, standard deviation (n - 1) and range. A finished run is
never retrained, so the same command both continues an interrupted table and rebuilds the table
from existing folders (``train=False`` never trains).
Each (row, seed) trained here appends one line to ``<output_dir>/rows.jsonl``: the equivalent
``kgfuse train`` command, the commit of the kgfuse source, wall time, threads and machine. The
table's run list also gives each run's training time over all its sittings and every code
version it was trained with, from the run's own record (``sittings`` of its ``metrics.json``),
so that a run interrupted and resumed, even in a process that never reached this record, is
timed in full.

Two experiment files may share an ``output_dir`` and rows of the same name and settings: the
runs are then trained once and used by both tables. Give each file its own ``table`` name so
that neither overwrites the other's table.

A row with ``baseline`` (another row's name) also gets paired differences against that row per
split, from the runs' ``predictions-<split>.jsonl`` (:mod:`kgfuse.tasks.significance`): the
accuracy difference in points with a 95% bootstrap interval over questions (seeds averaged per
question), and the exact McNemar test when both rows have one seed.

A row with ``pretrain`` (a pre-training config and its overrides) is pre-trained once, into
``<output_dir>/<name>-pretrain`` with the pre-training config's own seed, and every seed of the
row is fine-tuned from it (``model.init_from``); a finished pre-training is reused.

Settings of how each run is carried out, not of what it trains, may be given to one invocation
without editing the file: ``kgfuse evaluate --config FILE --run-set train.eval_train_at_end=false``
(:data:`RUN_SETTINGS`; e.g. on a CPU, leave the training split out of the final evaluation).
They are added to every run this invocation trains and to its recorded command; a finished
run is not trained again, so they change no result of the table.

Rows run one after another in one process. To use two cores for two runs side by side, start
two commands with different ``only`` selections (``--only NAME`` on the command line); a run
folder is never trained by two commands at once only if the selections are disjoint.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shlex
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import ConfigError, _unknown_key, apply_overrides, read_config_file, resolve_path
from .provenance import machine, software_versions, source_commit  # noqa: F401  (source_commit: re-export)

logger = logging.getLogger("kgfuse")

_ROW_KEYS = {"name", "config", "set", "seeds", "pretrain", "baseline"}
_PRETRAIN_KEYS = {"config", "set"}
_FILE_KEYS = {"output_dir", "splits", "rows", "title", "table"}


@dataclass
class ExperimentRow:
    """One row of the table: a training config, its overrides and the seeds to run."""

    name: str
    config: Path
    overrides: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    pretrain_config: Path | None = None
    pretrain_overrides: list[str] = field(default_factory=list)
    baseline: str | None = None

    def run_name(self, seed: int) -> str:
        return f"{self.name}-s{seed}"

    @property
    def pretrain_name(self) -> str:
        return f"{self.name}-pretrain"

    def train_overrides(self, seed: int, output_dir: Path) -> list[str]:
        extra = [f"model.init_from={output_dir / self.pretrain_name / 'model'}"] if self.pretrain_config else []
        return [*self.overrides, *extra, f"train.seed={seed}"]

    def command(self, seed: int, output_dir: Path, run_settings: Sequence[str] = ()) -> str:
        """The shell command that reproduces one seed of this row (arguments quoted), with
        ``run_settings`` (:data:`RUN_SETTINGS`) before the seed."""
        q = shlex.quote
        overrides = self.train_overrides(seed, output_dir)
        sets = " ".join(f"--set {q(s)}" for s in [*overrides[:-1], *run_settings, overrides[-1]])
        cmd = (f"kgfuse train --config {q(str(self.config))} --output {q(str(output_dir / self.run_name(seed)))} "
               f"--resume auto {sets}")
        if self.pretrain_config:
            cmd = f"{self.pretrain_command(output_dir)} && {cmd}"
        return cmd

    def pretrain_command(self, output_dir: Path) -> str:
        """The shell command of this row's pre-training (resumes its newest checkpoint)."""
        q = shlex.quote
        psets = "".join(f" --set {q(s)}" for s in self.pretrain_overrides)
        return (f"kgfuse pretrain --config {q(str(self.pretrain_config))} "
                f"--output {q(str(output_dir / self.pretrain_name))} --resume auto{psets}")


@dataclass
class ExperimentFile:
    """A parsed experiment file (see the module docstring)."""

    path: Path
    output_dir: Path
    rows: list[ExperimentRow]
    splits: list[str] | None = None
    title: str = "kgfuse results"
    table: str = "results"


def is_experiment_file(config: dict[str, Any]) -> bool:
    """An experiment file has ``rows``; a comparison file of trained models has ``runs``."""
    return "rows" in config


#: Training settings that ``run_settings`` (``kgfuse evaluate --run-set``) may give every run of
#: an invocation: how a run is carried out, logged, checkpointed and finally evaluated on its
#: training split, never what it trains, which epoch it keeps or what its table reports.
RUN_SETTINGS = ("train.eval_train_at_end", "train.eval_batch_size", "train.log_every", "train.num_workers",
                "train.save_steps", "train.save_total_limit", "train.keep_optimizer_state", "data.preprocess_workers",
                "cache_dir")


def check_run_settings(run_settings: Sequence[str]) -> list[str]:
    """``run_settings`` as a list, or a ConfigError naming a setting that is not one of
    :data:`RUN_SETTINGS`."""
    out = []
    for s in run_settings:
        key = s.split("=", 1)[0].strip() if isinstance(s, str) and "=" in s else None
        if key is None:
            raise ConfigError(f"run setting {s!r} is not of the form section.key=value")
        if key not in RUN_SETTINGS:
            raise ConfigError(f"run setting {s!r}: {key} changes what a run trains or reports; a run setting is one of "
                              f"{list(RUN_SETTINGS)} (what a row trains belongs in its 'set' list)")
        out.append(s)
    return out


def _overrides(value: Any, where: str) -> list[str]:
    """A row's ``set:`` list (``key=value`` strings; missing: none), or a ConfigError naming ``where``."""
    sets = value or []
    if isinstance(sets, str) or not isinstance(sets, list) or not all(isinstance(s, str) and "=" in s for s in sets):
        raise ConfigError(f"{where}: expected a list of 'key=value' strings, got {value!r}")
    return list(sets)


def load_experiment_file(path: str | os.PathLike, overrides: Sequence[str] = ()) -> ExperimentFile:
    """Parse and check an experiment file; errors name the file and the key path."""
    path = Path(path).expanduser().resolve()
    d = apply_overrides(read_config_file(path), overrides)
    base = path.parent
    for k in d:
        if k not in _FILE_KEYS:
            raise ConfigError(_unknown_key(str(path), "", k, _FILE_KEYS))
    rows_in = d.get("rows")
    if not isinstance(rows_in, list) or not rows_in:
        raise ConfigError(f"{path}: 'rows' must be a non-empty list of {{name, config, set, seeds}}")
    rows: list[ExperimentRow] = []
    seen: set[str] = set()
    for i, r in enumerate(rows_in):
        where = f"{path}: rows[{i}]"
        if not isinstance(r, dict):
            raise ConfigError(f"{where}: expected a mapping with name, config, set, seeds")
        for k in r:
            if k not in _ROW_KEYS:
                raise ConfigError(_unknown_key(str(path), f"rows[{i}].", k, _ROW_KEYS))
        for k in ("name", "config"):
            if not r.get(k):
                raise ConfigError(f"{where}: missing {k!r}")
        name = str(r["name"])
        if "/" in name or name in (".", "..") or name.strip() != name:
            raise ConfigError(f"{where}.name: {name!r} must be a plain folder name")
        if name in seen:
            raise ConfigError(f"{where}.name: {name!r} is used twice")
        seen.add(name)
        cfg = resolve_path(r["config"], base)
        if not cfg.is_file():
            raise ConfigError(f"{where}.config: file not found: {cfg}")
        sets = _overrides(r.get("set"), f"{where}.set")
        seeds = r.get("seeds", [0])
        seeds = [seeds] if isinstance(seeds, int) else seeds
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ConfigError(f"{where}.seeds: expected a list of integers, got {r.get('seeds')!r}")
        if any(s.split("=", 1)[0].strip() in ("train.seed", "output_dir") for s in sets):
            raise ConfigError(f"{where}.set: train.seed and output_dir are set per run; use 'seeds'")
        pre = r.get("pretrain")
        pcfg, psets = None, []
        if pre is not None:
            if not isinstance(pre, dict) or not pre.get("config"):
                raise ConfigError(f"{where}.pretrain: expected {{config: <pre-training config>, set: [...]}}")
            for k in pre:
                if k not in _PRETRAIN_KEYS:
                    raise ConfigError(_unknown_key(str(path), f"rows[{i}].pretrain.", k, _PRETRAIN_KEYS))
            pcfg = resolve_path(pre["config"], base)
            if not pcfg.is_file():
                raise ConfigError(f"{where}.pretrain.config: file not found: {pcfg}")
            psets = _overrides(pre.get("set"), f"{where}.pretrain.set")
            if any(x.split("=", 1)[0].strip() == "model.init_from" for x in sets):
                raise ConfigError(f"{where}.set: model.init_from is the pre-trained model of 'pretrain'")
        base_row = r.get("baseline")
        if base_row is not None and (not isinstance(base_row, str) or not base_row):
            raise ConfigError(f"{where}.baseline: expected the name of another row, got {base_row!r}")
        rows.append(ExperimentRow(name, cfg, list(sets), list(seeds), pcfg, list(psets), base_row))
    for i, row in enumerate(rows):
        if row.baseline is not None and (row.baseline == row.name or row.baseline not in seen):
            raise ConfigError(f"{path}: rows[{i}].baseline: {row.baseline!r} is not another row of this file "
                              f"(rows: {sorted(seen)})")
    splits = d.get("splits")
    if splits is not None and (not isinstance(splits, list) or not all(isinstance(s, str) for s in splits)):
        raise ConfigError(f"{path}: 'splits' must be a list of split names, got {splits!r}")
    table = d.get("table", "results")
    if not isinstance(table, str) or not table or table != Path(table).name or table.startswith("."):
        raise ConfigError(f"{path}: 'table' must be a file name without folders, e.g. results-text, got {table!r}")
    out = resolve_path(d.get("output_dir") or "results", base)
    return ExperimentFile(path, out, rows, splits, str(d.get("title") or "kgfuse results"), table)


def finished_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``metrics.json`` when the run finished (its final evaluation was written)."""
    p = run_dir / "metrics.json"
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return m if isinstance(m.get("splits"), dict) else None


def _time_left(deadline: float | None) -> list[str]:
    """The ``train.stop_after_hours`` override that ends a sitting at ``deadline`` (none without one)."""
    return [] if deadline is None else [f"train.stop_after_hours={max(deadline - time.time(), 1e-3) / 3600:.9g}"]


def _pretrain_once(row: ExperimentRow, out: Path, progress: bool, deadline: float | None = None) -> bool:
    """Pre-train the row's model unless its folder already holds a finished pre-training (an
    interrupted one continues from its newest checkpoint); whether it is finished now."""
    from .pretrain import pretrain
    from .pretrain_config import load_pretrain_config

    folder = out / row.pretrain_name
    if (folder / "metrics.json").is_file() and (folder / "model").is_dir():
        return True
    cfg = load_pretrain_config(row.pretrain_config, [*row.pretrain_overrides, f"output_dir={folder}", *_time_left(deadline)])
    t0 = time.time()
    res = pretrain(cfg, progress=progress, resume_from="auto")  # an interrupted pre-training continues
    _record(out, {"row": row.pretrain_name, "command": row.pretrain_command(out), "wall_s": round(time.time() - t0, 1),
                  "run_finished": res.finished})
    return res.finished


def _record(out: Path, line: dict[str, Any], ran_on: str | None = None) -> dict[str, Any]:
    """Append ``line`` to ``rows.jsonl`` with the code, software, threads and machine
    (``ran_on``, the machine of the call's last training sitting, else this one's CPU)."""
    line = {**line, "commit": source_commit(), "software": software_versions(),
            "threads": os.environ.get("OMP_NUM_THREADS") or str(_torch_threads()),
            "machine": ran_on or machine(),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(out / "rows.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    return line


def _train_one(row: ExperimentRow, seed: int, out: Path, progress: bool, deadline: float | None = None,
               run_settings: Sequence[str] = ()) -> bool:
    """Train (or resume) one run until it is over or ``deadline`` (a ``time.time()``) ends
    this sitting; whether it is over."""
    from .config import load_config
    from .train import train

    if row.pretrain_config is not None and not _pretrain_once(row, out, progress, deadline):
        return False
    run_dir = out / row.run_name(seed)
    cfg = load_config(row.config, [*row.train_overrides(seed, out), *run_settings, f"output_dir={run_dir}",
                                   *_time_left(deadline)])
    t0 = time.time()
    res = train(cfg, resume_from="auto" if run_dir.exists() else None, progress=progress)
    _record(out, {"row": row.run_name(seed), "command": row.command(seed, out, run_settings),
                  "wall_s": round(time.time() - t0, 1),
                  "run_finished": res.finished, **(_scores(res) if res.finished else {})},
            ran_on=(res.sittings[-1].get("machine") if res.sittings else None))
    return res.finished


def _scores(res: Any) -> dict[str, Any]:
    """What a finished run scored, for its ``rows.jsonl`` line, so that the record holds the
    result even where the run folder does not survive: the final evaluation's accuracy per
    split (``train`` included), the accuracies after each epoch, and the best epoch."""
    splits = {k: m.get("accuracy") for k, m in sorted((res.metrics.get("splits") or {}).items())}
    epochs = [{k: v for k, v in h.items() if k == "epoch" or k.endswith("accuracy")} for h in res.history]
    return {"accuracy": splits, "epochs": epochs, "best_epoch": res.best_epoch}


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


@dataclass
class ExperimentResult:
    """The table of :func:`run_experiments`: one dict per (row, split), plus the per-run records."""

    output_dir: Path
    table: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    missing: list[str]
    differences: list[dict[str, Any]] = field(default_factory=list)
    #: where each unfinished run stands: its newest complete checkpoint (``checkpoint-400``),
    #: or ``not started``
    progress: dict[str, str] = field(default_factory=dict)

    def save(self, folder: str | os.PathLike | None = None, *, title: str = "kgfuse results",
             name: str = "results") -> Path:
        """Write ``<name>.md`` and ``<name>.csv`` into ``folder`` (default: ``output_dir``)."""
        out = Path(folder) if folder is not None else self.output_dir
        out.mkdir(parents=True, exist_ok=True)
        keys = ["row", "split", "seeds", "n", "mean", "std", "min", "max", "per_seed"]
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in self.table:
                w.writerow({k: (" ".join(f"{a:.4f}" for a in r[k]) if k == "per_seed" else
                                " ".join(map(str, r[k])) if k == "seeds" else r[k]) for k in keys})
        (out / f"{name}.md").write_text(format_table(self, title=title), encoding="utf-8")
        return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def format_table(result: ExperimentResult, *, title: str = "kgfuse results") -> str:
    """Markdown: accuracy (%) per row and split, mean ± std over seeds, each seed, and the runs."""
    lines = [f"# {title}", "", "Accuracy in %, mean ± standard deviation (n − 1) over seeds; per-seed values in seed order.", "",
             "| row | split | seeds | mean ± std | range | per seed |", "| --- | --- | --- | --- | --- | --- |"]
    for r in result.table:
        std = f" ± {_pct(r['std'])}" if r["std"] is not None else ""
        lines.append(f"| {r['row']} | {r['split']} | {', '.join(map(str, r['seeds']))} | {_pct(r['mean'])}{std} | "
                     f"{_pct(r['min'])}–{_pct(r['max'])} | {' / '.join(_pct(a) for a in r['per_seed'])} |")
    if result.differences:
        lines += ["", "## Paired differences", "",
                  "Accuracy of the row minus its baseline row, in points, on the same questions: 95% bootstrap "
                  "interval over questions (each row's seeds averaged per question); exact McNemar test where both "
                  "rows have one seed.", "",
                  "| row | baseline | split | difference | 95% interval | only row right / only baseline right, McNemar p |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for d in result.differences:
            if d.get("error"):
                lines.append(f"| {d['row']} | {d['baseline']} | {d['split']} | – | – | {d['error']} |")
                continue
            mc = f"{d['a_only']} / {d['b_only']}, p = {d['p_mcnemar']:.3f}" if d.get("p_mcnemar") is not None else "–"
            lines.append(f"| {d['row']} | {d['baseline']} | {d['split']} | {100 * d['difference']:+.1f} | "
                         f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] | {mc} |")
    lines += ["", "## Runs", "",
              "Wall: the `kgfuse evaluate` commands that trained the run (preprocessing and final evaluation "
              "included). Training: the training loop over all the run's sittings, with the code of each.", "",
              "| run | commit | wall (h) | training (h), sittings | command |", "| --- | --- | --- | --- | --- |"]
    for u in result.runs:
        wall = f"{u['wall_s'] / 3600:.2f}" if u.get("wall_s") is not None else "–"
        sources = u.get("sources") or [u.get("commit") or "–"]
        commit = ", ".join(str(c)[:12] for c in sources)
        trained = f"{u['train_s'] / 3600:.2f}, {u['sittings']}" if u.get("sittings") else "–"
        lines.append(f"| {u['run']} | {commit} | {wall} | {trained} | `{u.get('command') or '–'}` |")
    if result.missing:
        lines += ["", "Not finished (no row in the table yet; the same command resumes each from its newest "
                  "checkpoint): " + ", ".join(f"{n} ({result.progress[n]})" if n in result.progress else n
                                               for n in result.missing)]
    return "\n".join(lines) + "\n"


def run_progress(run_dir: Path) -> str:
    """Where an unfinished run stands: its newest complete ``checkpoint-<step>`` (by name and
    ``COMPLETE`` marker only; resuming verifies it), or ``not started``."""
    from .checkpoint import COMPLETE  # (torch: imported only when a table has unfinished runs)

    steps = [int(p.name[len("checkpoint-"):]) for p in run_dir.glob("checkpoint-*")
             if p.name[len("checkpoint-"):].isdigit() and (p / COMPLETE).is_file()] if run_dir.is_dir() else []
    return f"checkpoint-{max(steps)}" if steps else "not started"


def _run_records(out: Path) -> dict[str, dict[str, Any]]:
    """The last finished record per run name in ``rows.jsonl`` (wall times of resumed runs add up)."""
    recs: dict[str, dict[str, Any]] = {}
    p = out / "rows.jsonl"
    if not p.is_file():
        return recs
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        name = r.get("row")
        if not name:
            continue
        prev = recs.get(name)
        if prev is not None and r.get("wall_s") is not None and prev.get("wall_s") is not None:
            r = {**r, "wall_s": round(prev["wall_s"] + r["wall_s"], 1)}
        recs[name] = r
    return recs


def _differences(exp: ExperimentFile, table: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """Paired differences of each row with a ``baseline`` against that row, per split both have."""
    from .significance import compare_runs

    seeds = {(r["row"], r["split"]): r["seeds"] for r in table}
    rows = {r.name: r for r in exp.rows}
    diffs = []
    for (name, split), row_seeds in seeds.items():
        base = rows[name].baseline
        base_seeds = seeds.get((base, split)) if base else None
        if not base_seeds:
            continue
        files = {side: [out / rows[side].run_name(s) / f"predictions-{split}.jsonl" for s in ss]
                 for side, ss in ((name, row_seeds), (base, base_seeds))}
        d: dict[str, Any] = {"row": name, "baseline": base, "split": split, "seeds": row_seeds,
                             "baseline_seeds": base_seeds}
        absent = [f for fs in files.values() for f in fs if not f.is_file()]
        try:
            if absent:
                raise ValueError(f"no prediction file {absent[0]}")
            (c,) = compare_runs(files, base)
        except ValueError as e:
            d["error"] = str(e)
        else:
            d.update(difference=c.difference, low=c.low, high=c.high, a_only=c.a_only, b_only=c.b_only,
                     p_mcnemar=c.p_mcnemar)
        diffs.append(d)
    return diffs


def run_experiments(path: str | os.PathLike, overrides: Sequence[str] = (), *, only: Sequence[str] = (),
                    train: bool = True, progress: bool = True, stop_after_hours: float | None = None,
                    run_settings: Sequence[str] = (), log: Callable[[str], Any] | None = None) -> ExperimentResult:
    """Train what is missing of an experiment file, then build and save its table.

    ``only`` restricts training (not the table) to the named rows (``name`` or ``name-s<seed>``);
    ``train=False`` only tabulates finished runs. ``stop_after_hours`` bounds the whole command:
    each run is given the time left when it starts (``train.stop_after_hours``: the run in
    training when the time is up stops after saving a checkpoint), no further run starts, and
    the table is written with what is finished; the same command later resumes where it
    stopped. The first run always trains at least one step, so every command makes progress;
    building a run and its final evaluation come on top of the limit. ``run_settings``
    (``key=value``, each of :data:`RUN_SETTINGS`) are added to every run trained here. Returns the
    :class:`ExperimentResult`, already saved into the file's ``output_dir``.
    """
    log = log or logger.info
    run_settings = check_run_settings(run_settings)
    exp = load_experiment_file(path, overrides)
    known = {r.name for r in exp.rows} | {r.run_name(s) for r in exp.rows for s in r.seeds}
    unknown = [o for o in only if o not in known]
    if unknown:
        raise ConfigError(f"{exp.path}: unknown rows {unknown}; the file has {sorted(r.name for r in exp.rows)}")
    if stop_after_hours is not None and not stop_after_hours > 0:
        raise ConfigError(f"stop_after_hours must be > 0, got {stop_after_hours}")
    deadline = None if stop_after_hours is None else time.time() + 3600.0 * stop_after_hours
    out = exp.output_dir
    out.mkdir(parents=True, exist_ok=True)
    out_of_time = trained_any = False
    for row in exp.rows:
        for seed in row.seeds:
            if only and row.name not in only and row.run_name(seed) not in only:
                continue
            if not train or out_of_time or finished_metrics(out / row.run_name(seed)) is not None:
                continue
            if deadline is not None and trained_any and time.time() >= deadline:
                out_of_time = True  # no run starts after the limit (the first always makes a step)
                continue
            trained_any = True
            log(f"{row.run_name(seed)}: training ({row.command(seed, out, run_settings)})")
            if not _train_one(row, seed, out, progress, deadline, run_settings):
                out_of_time = True
                log(f"{row.run_name(seed)}: stopped by the time limit ({stop_after_hours} h); "
                    "the same command resumes it")
    records = _run_records(out)
    table, runs, missing, progress = [], [], [], {}
    for row in exp.rows:
        per_split: dict[str, list[tuple[int, float]]] = {}
        for seed in row.seeds:
            name = row.run_name(seed)
            m = finished_metrics(out / name)
            if m is None:
                missing.append(name)
                progress[name] = run_progress(out / name)
                continue
            rec = records.get(name, {})
            sittings = [x for x in m.get("sittings") or [] if isinstance(x, dict)]
            runs.append({"run": name, "commit": rec.get("commit"), "wall_s": rec.get("wall_s"),
                         "train_s": round(sum(float(x.get("seconds") or 0.0) for x in sittings), 1),
                         "sittings": len(sittings),
                         "sources": list(dict.fromkeys(str(x["source"]) for x in sittings if x.get("source"))),
                         "command": rec.get("command") or row.command(seed, out)})
            for split, sm in m["splits"].items():
                if (exp.splits is None and split == "train") or (exp.splits is not None and split not in exp.splits):
                    continue
                if isinstance(sm, dict) and sm.get("accuracy") is not None:
                    per_split.setdefault(split, []).append((seed, float(sm["accuracy"])))
        for split in (exp.splits or sorted(per_split)):
            vals = per_split.get(split)
            if not vals:
                continue
            accs = [a for _, a in vals]
            table.append({"row": row.name, "split": split, "seeds": [s for s, _ in vals], "n": len(accs),
                          "mean": statistics.fmean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else None,
                          "min": min(accs), "max": max(accs), "per_seed": accs})
    result = ExperimentResult(out, table, runs, missing, _differences(exp, table, out), progress)
    result.save(title=exp.title, name=exp.table)
    log(f"results table: {out / (exp.table + '.md')} and {out / (exp.table + '.csv')}"
        + (f"; not finished: {', '.join(f'{n} ({progress[n]})' for n in missing)}" if missing else ""))
    return result
