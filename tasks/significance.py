"""Paired comparisons of models evaluated on the same questions.

Two models scored on one dev set are not independent samples: most questions are answered
right (or wrong) by both, so the standard error of the difference of two accuracies taken as
independent is far too wide. These tests use the pairing:

- :func:`mcnemar` — the exact McNemar test of one run against another (two-sided binomial
  test on the questions where exactly one of them is right);
- :func:`paired_bootstrap` — a confidence interval of the accuracy difference, resampling
  questions; each side may be several runs (seeds), averaged per question first;
- :func:`compare_runs` — both, from prediction files (``predictions-*.jsonl`` of ``kgfuse
  train`` / ``kgfuse evaluate``: one record per question with ``id`` and ``correct``).

Only numpy and the standard library are used.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["mcnemar", "paired_bootstrap", "read_correct", "read_groups", "align", "compare_runs", "Comparison"]


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int, float]:
    """Exact two-sided McNemar test of two runs on the same questions.

    Returns ``(a_only, b_only, p)``: questions only ``a`` answers right, only ``b`` does, and
    the probability under "both equally good" of a split at least as uneven (binomial, n =
    ``a_only + b_only``, p = 1/2; ``1.0`` when they never disagree).
    """
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"mcnemar: {a.shape[0]} and {b.shape[0]} questions; compare runs on the same questions")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(b & ~a))
    n = a_only + b_only
    if n == 0:
        return a_only, b_only, 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)  # exact integers: no overflow for large n
    return a_only, b_only, min(1.0, 2.0 * tail)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, samples: int = 10_000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Accuracy difference ``mean(a) - mean(b)`` and its percentile bootstrap interval.

    Args:
        a, b: per-question correctness, shape ``(questions,)`` or ``(runs, questions)`` (the runs
            of one side, e.g. seeds, are averaged per question before resampling).
        samples: bootstrap resamples of the questions.
        seed: the resampling generator's seed (the same seed gives the same interval).
        level: coverage of the interval.

    Returns:
        ``(difference, low, high)``.
    """
    pa = np.atleast_2d(np.asarray(a, float)).mean(0)
    pb = np.atleast_2d(np.asarray(b, float)).mean(0)
    if pa.shape != pb.shape:
        raise ValueError(f"paired_bootstrap: {pa.shape[0]} and {pb.shape[0]} questions; compare runs on the same questions")
    d = pa - pb
    n = d.shape[0]
    if n == 0:
        raise ValueError("paired_bootstrap: no questions")
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for s in range(0, samples, 1000):  # bounded memory: 1000 resamples at a time
        m = min(1000, samples - s)
        means[s:s + m] = d[rng.integers(0, n, size=(m, n))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(d.mean()), float(lo), float(hi)


def read_correct(path: str | os.PathLike) -> dict[str, bool]:
    """``{question id: answered right}`` from a prediction file (labelled records only; plain
    or gzip JSON lines, read like the data files of :mod:`kgfuse.tasks.datasets`).

    Raises:
        kgfuse.tasks.datasets.DataFormatError: a line that is not JSON, a record without
            ``id`` or ``correct``, or an id given twice (named by file, line and field).
    """
    from .data_readers import _iter_json_records
    from .data_types import DataFormatError

    path = Path(path)
    out: dict[str, bool] = {}
    for n, rec in _iter_json_records(path):
        if isinstance(rec, DataFormatError):
            raise rec
        for key in ("id", "correct"):
            if not isinstance(rec, dict) or key not in rec:
                raise DataFormatError(path, n, key, "missing: a prediction record needs 'id' and 'correct'")
        if rec["correct"] is None:  # an unlabelled question
            continue
        qid = str(rec["id"])
        if qid in out:
            raise DataFormatError(path, n, "id", "given twice", id=qid, reason="duplicate_id")
        out[qid] = bool(rec["correct"])
    return out


def read_groups(path: str | os.PathLike, field: str, *, data: str | None = None) -> dict[str, list[str]]:
    """Question ids grouped by the value of ``field`` in a per-question file.

    The file holds one record per question with ``id`` and ``field`` (e.g. the lines of
    ``benchmarks/coverage.py --per-question``); ``data``, when given, keeps only the records
    whose ``"data"`` is that file name (a path counts by its file name). Groups are keyed by the value as JSON (``true``, ``2``,
    ``"AtLocation"``) and sorted by that key; ids keep the file's order.

    Raises:
        kgfuse.tasks.datasets.DataFormatError: a line that is not JSON, or a kept record
            without ``id`` or ``field`` (named by file, line and field).
        ValueError: ``data`` is given and no record has it (the ``data`` values the file has
            are named).
    """
    from .data_readers import _iter_json_records
    from .data_types import DataFormatError

    path = Path(path)
    want = Path(data).name if data is not None else None
    seen: set[str] = set()
    groups: dict[str, list[str]] = {}
    for n, rec in _iter_json_records(path):
        if isinstance(rec, DataFormatError):
            raise rec
        if not isinstance(rec, dict):
            raise DataFormatError(path, n, None, f"expected an object, got {type(rec).__name__}")
        if want is not None and rec.get("data") != want:
            seen.add(str(rec.get("data")))
            continue
        for key in ("id", field):
            if key not in rec:
                raise DataFormatError(path, n, key, "missing")
        groups.setdefault(json.dumps(rec[field], sort_keys=True), []).append(str(rec["id"]))
    if want is not None and not groups:
        raise ValueError(f"{path}: no record has data {want!r}; its records have data {sorted(seen)}")
    return dict(sorted(groups.items()))


def align(runs: Mapping[str, Sequence[Mapping[str, bool]]]) -> tuple[list[str], dict[str, np.ndarray]]:
    """The questions every run answered, and each side's ``(runs, questions)`` correctness.

    Raises:
        ValueError: the runs share no question, or do not all cover the same questions (a
            comparison on different question sets is not paired; the first missing id is named).
    """
    all_runs = [(name, k, r) for name, rs in runs.items() for k, r in enumerate(rs)]
    if not all_runs:
        raise ValueError("align: no runs")
    ids = sorted(all_runs[0][2])
    for name, k, r in all_runs[1:]:
        if set(r) != set(ids):
            miss = sorted(set(ids) ^ set(r))[0]
            raise ValueError(f"align: run {k} of {name!r} does not cover the same questions as the first run "
                             f"(e.g. id {miss!r}); compare predictions on the same data file")
    if not ids:
        raise ValueError("align: no labelled questions")
    return ids, {name: np.asarray([[r[i] for i in ids] for r in rs], bool) for name, rs in runs.items()}


@dataclass
class Comparison:
    """One side against a reference side (see :func:`compare_runs`)."""

    name: str
    reference: str
    accuracy: float
    reference_accuracy: float
    difference: float
    low: float
    high: float
    a_only: int | None = None
    b_only: int | None = None
    p_mcnemar: float | None = None

    def row(self) -> str:
        """One markdown table row (percentage points)."""
        mc = "" if self.p_mcnemar is None else f"{self.a_only} / {self.b_only}, p = {self.p_mcnemar:.3f}"
        return (f"| {self.name} | {self.reference} | {100 * self.accuracy:.1f} | {100 * self.reference_accuracy:.1f} | "
                f"{100 * self.difference:+.1f} | [{100 * self.low:+.1f}, {100 * self.high:+.1f}] | {mc} |")


HEADER = ("| model | against | accuracy | its accuracy | difference (points) | 95% paired bootstrap interval "
          "| only this right / only that right, exact McNemar |\n| --- | --- | --- | --- | --- | --- | --- |")


def compare_runs(runs: Mapping[str, Sequence[str | os.PathLike]], reference: str, *, samples: int = 10_000,
                 seed: int = 0, questions: Sequence[str] | None = None) -> list[Comparison]:
    """Every side of ``runs`` against ``reference``, paired on the questions.

    Args:
        runs: ``{name: [prediction file per seed]}``.
        reference: the name of the side the others are compared with.
        samples, seed: of :func:`paired_bootstrap`.
        questions: restrict to these question ids (e.g. one bucket of a breakdown).

    McNemar's test is given when both sides are one run each.
    """
    if reference not in runs:
        raise ValueError(f"compare_runs: reference {reference!r} is not among {list(runs)}")
    read = {name: [read_correct(p) for p in paths] for name, paths in runs.items()}
    if questions is not None:
        keep = set(questions)
        read = {name: [{k: v for k, v in r.items() if k in keep} for r in rs] for name, rs in read.items()}
    _, sides = align(read)
    ref = sides[reference]
    out = []
    for name, x in sides.items():
        if name == reference:
            continue
        diff, lo, hi = paired_bootstrap(x, ref, samples=samples, seed=seed)
        c = Comparison(name, reference, float(x.mean()), float(ref.mean()), diff, lo, hi)
        if x.shape[0] == 1 and ref.shape[0] == 1:
            c.a_only, c.b_only, c.p_mcnemar = mcnemar(x[0], ref[0])
        out.append(c)
    return out
