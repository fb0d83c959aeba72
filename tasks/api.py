"""One entry module for scripts: train, pre-train, evaluate and predict, each in one call.

Every function returns a result object (a dataclass) with its metrics or predictions and a
``save(folder)`` method; the ``kgfuse`` command line only parses its arguments and calls
these functions::

    from kgfuse.tasks import api          # or: from kgfuse import api

    run = api.train("configs/csqa.yaml", overrides=["train.epochs=3"])
    run.metrics["splits"]["dev"]["accuracy"], run.model_dir

    ev = api.evaluate(model=run.model_dir, data="dev.jsonl")
    ev.metrics["accuracy"]; ev.save("eval/")                 # metrics.json + predictions.jsonl

    p = api.predict(run.model_dir, "Where would you put a plate?", ["cupboard", "oven", "roof"])
    p.predictions[0].choice

    predictor = api.load_predictor(run.model_dir)            # load once, then answer many
    api.predict(predictor, questions=[{"question": "...", "choices": ["a", "b"]}, ...])

    with api.make_server(run.model_dir, port=0) as server:   # the same over HTTP (kgfuse serve)
        server.start(); server.url

A configuration is given as a file path (YAML or TOML, ``overrides`` applied as on the
command line), a dict, or a config object (:class:`~kgfuse.tasks.config.TrainConfig`,
:class:`~kgfuse.tasks.pretrain.PretrainConfig`). Importing this module loads nothing heavy;
each function imports what it uses.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

__all__ = [
    "TrainRun",
    "PretrainRun",
    "LinkedCorpusFile",
    "Evaluation",
    "Predictions",
    "StreamSummary",
    "train",
    "pretrain",
    "link_corpus",
    "evaluate",
    "predict",
    "load_predictor",
    "predict_lines",
    "predict_stream",
    "make_server",
    "serve",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


def _abs(p: PathLike | None) -> str | None:
    return None if p is None else str(Path(p).expanduser().resolve())


def _folder(folder: PathLike) -> Path:
    out = Path(folder).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, indent=1, default=str), encoding="utf-8")
    return path


def _write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------------------
# configs


def _with_overrides(config: Any, overrides: Sequence[str], cls: type) -> Any:
    """``config`` (a dict or a config object of class ``cls``) as a config object with ``overrides``."""
    from .config import apply_overrides

    if isinstance(config, Mapping):
        d = apply_overrides(copy.deepcopy(dict(config)), overrides)
        base_dir = d.pop("base_dir", None)
        return cls.from_dict(d, base_dir=base_dir, source="<dict>")
    if overrides:
        if hasattr(config, "with_overrides"):
            return config.with_overrides(overrides)
        d = apply_overrides(copy.deepcopy(config.to_dict()), overrides)
        base_dir = d.pop("base_dir", None)
        return type(config).from_dict(d, base_dir=base_dir, source="overrides")
    return dataclasses.replace(config)  # the caller's object stays as it was


# --------------------------------------------------------------------------------------
# train


@dataclass
class TrainRun:
    """What :func:`train` returns.

    Attributes:
        output_dir: the run folder (``report.md``, ``metrics.json``, ``model/``, checkpoints).
        model_dir: the exported best model (for :func:`predict`, :func:`evaluate`).
        metrics: ``metrics.json`` of the run: ``splits`` (accuracy per split), ``history``,
            ``best_epoch``, data counts, timings.
        result: the :class:`~kgfuse.tasks.train.TrainResult` (with the trained ``model``).
        finished: the run is over; False when ``train.stop_after_hours`` ended this sitting
            first (no final evaluation: ``metrics`` is empty; resume to continue).
    """

    output_dir: Path
    model_dir: Path | None
    metrics: dict[str, Any]
    best_epoch: int | None = None
    best_metric: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_time: float = 0.0
    is_main_process: bool = True
    finished: bool = True
    result: Any = field(default=None, repr=False, compare=False)

    def accuracy(self, split: str = "dev") -> float | None:
        """The accuracy of the exported model on ``split`` (``None`` without labels)."""
        return ((self.metrics.get("splits") or {}).get(split) or {}).get("accuracy")

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict() if self.result is not None and hasattr(self.result, "to_dict") else {
            "output_dir": str(self.output_dir), "model_dir": None if self.model_dir is None else str(self.model_dir),
            "best_epoch": self.best_epoch, "best_metric": self.best_metric, "history": self.history,
            "metrics": self.metrics, "wall_time": self.wall_time}

    def save(self, folder: PathLike) -> Path:
        """Write ``metrics.json`` and ``train_result.json`` into ``folder`` (the run folder
        already holds both); returns the folder."""
        out = _folder(folder)
        _write_json(out / "metrics.json", self.metrics)
        _write_json(out / "train_result.json", self.to_dict())
        return out


def train(config: Any, overrides: Sequence[str] = (), *, output_dir: PathLike | None = None,
          resume_from: PathLike | None = None, progress: bool = True, allow_changes: bool = False,
          overwrite: bool = False, accelerator: Any = None) -> TrainRun:
    """Train and evaluate a model: :func:`kgfuse.tasks.train.train` on ``config``.

    Args:
        config: a config file, a dict or a :class:`~kgfuse.tasks.config.TrainConfig`.
        overrides: ``section.key=value`` settings applied on top (as ``--set``).
        output_dir: the run folder (instead of the config's ``output_dir``).
        resume_from, allow_changes, overwrite, accelerator, progress: as
            :func:`kgfuse.tasks.train.train`.
    """
    from .config import TrainConfig, load_config
    from .train import train as _train

    if isinstance(config, (str, os.PathLike)):
        cfg = load_config(config, overrides)
    else:
        cfg = _with_overrides(config, overrides, TrainConfig)
    if output_dir is not None:
        cfg.output_dir = _abs(output_dir)
    res = _train(cfg, resume_from=resume_from, progress=progress, accelerator=accelerator,
                 allow_changes=allow_changes, overwrite=overwrite)
    return TrainRun(output_dir=Path(res.output_dir), model_dir=None if res.model_dir is None else Path(res.model_dir),
                    metrics=dict(res.metrics or {}), best_epoch=res.best_epoch, best_metric=res.best_metric,
                    history=list(res.history or []), wall_time=res.wall_time,
                    is_main_process=getattr(res, "is_main_process", True), finished=res.finished, result=res)


# --------------------------------------------------------------------------------------
# pre-training


@dataclass
class PretrainRun:
    """What :func:`pretrain` returns.

    Attributes:
        output_dir: the run folder; ``model_dir``: the pre-trained model
            (for ``model.init_from`` of a training config).
        metrics: the held-out metrics at the end (``dea_accuracy``, ``mlm_loss``, ...).
        initial: the same before training; ``history``: per evaluation.
        result: the :class:`~kgfuse.tasks.pretrain.PretrainResult`.
        finished: the run is over; False when ``train.stop_after_hours`` ended this sitting
            first (resume to continue).
    """

    output_dir: Path
    model_dir: Path
    metrics: dict[str, Any]
    initial: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    global_step: int = 0
    wall_time: float = 0.0
    finished: bool = True
    result: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict() if self.result is not None and hasattr(self.result, "to_dict") else {
            "output_dir": str(self.output_dir), "model_dir": str(self.model_dir), "final": self.metrics,
            "initial": self.initial, "history": self.history, "global_step": self.global_step,
            "wall_time": self.wall_time}

    def save(self, folder: PathLike) -> Path:
        """Write ``metrics.json`` (everything :meth:`to_dict` has) into ``folder``."""
        out = _folder(folder)
        _write_json(out / "metrics.json", self.to_dict())
        return out


def _pretrain_config(config: Any, overrides: Sequence[str]) -> Any:
    from .pretrain import PretrainConfig, load_pretrain_config

    if isinstance(config, (str, os.PathLike)):
        return load_pretrain_config(config, overrides)
    return _with_overrides(config, overrides, PretrainConfig)


def pretrain(config: Any, overrides: Sequence[str] = (), *, output_dir: PathLike | None = None, graph: Any = None,
             linked: Any = None, resume_from: PathLike | None = None, allow_changes: bool = False,
             progress: bool = True, accelerator: Any = None) -> PretrainRun:
    """ERNIE pre-training (masked LM + dEA): :func:`kgfuse.tasks.pretrain.pretrain` on ``config``
    (a file, a dict or a :class:`~kgfuse.tasks.pretrain.PretrainConfig`); ``resume_from``
    (``"auto"`` or a ``checkpoint-<step>/`` folder) and ``allow_changes`` as there."""
    from .pretrain import pretrain as _pretrain

    cfg = _pretrain_config(config, overrides)
    if output_dir is not None:
        cfg.output_dir = _abs(output_dir)
    kw: dict[str, Any] = {"progress": progress, "accelerator": accelerator, "resume_from": resume_from,
                          "allow_changes": allow_changes}
    if graph is not None:
        kw["graph"] = graph
    if linked is not None:
        kw["linked"] = linked
    res = _pretrain(cfg, **kw)
    return PretrainRun(output_dir=Path(res.output_dir), model_dir=Path(res.model_dir), metrics=dict(res.final or {}),
                       initial=dict(res.initial or {}), history=list(res.history or []), global_step=res.global_step,
                       wall_time=res.wall_time, finished=res.finished, result=res)


@dataclass
class LinkedCorpusFile:
    """What :func:`link_corpus` returns: the written file and its sequence counts."""

    path: Path
    num_train: int
    num_eval: int
    corpus: Any = field(default=None, repr=False, compare=False)

    @property
    def metrics(self) -> dict[str, Any]:
        return {"path": str(self.path), "train": self.num_train, "eval": self.num_eval}

    def save(self, folder: PathLike) -> Path:
        """Write the linked corpus into ``folder`` under its file name; returns the file."""
        return Path(self.corpus.save(str(_folder(folder) / self.path.name)))


def link_corpus(config: Any, overrides: Sequence[str] = (), *, output: PathLike, progress: bool = True) -> LinkedCorpusFile:
    """Link and tokenise a pre-training corpus once into ``output`` (``.jsonl.gz``): what
    ``kgfuse pretrain --link-only`` does (:func:`kgfuse.tasks.pretrain.link_corpus`)."""
    from .pretrain import link_corpus as _link

    cfg = _pretrain_config(config, overrides)
    lc = _link(cfg, progress=progress)
    path = Path(lc.save(_abs(output)))
    return LinkedCorpusFile(path=path, num_train=len(lc.train), num_eval=len(lc.eval), corpus=lc)


# --------------------------------------------------------------------------------------
# evaluate


@dataclass
class Evaluation:
    """What :func:`evaluate` returns.

    Attributes:
        metrics: for a model on a data file, ``accuracy`` (``None`` without labels),
            ``correct``, ``count`` (labelled questions) and ``total``; for a comparison file,
            ``{"runs": rows}``.
        records: one prediction record per question (see
            :func:`kgfuse.tasks.evaluate.prediction_record`); empty for a comparison.
        rows: the comparison table's rows (comparison file only).
        model, data: what was evaluated (model and data file only).
        report: the data file's :class:`~kgfuse.tasks.datasets.LoadReport`.
    """

    metrics: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    data: str | None = None
    report: Any = field(default=None, repr=False, compare=False)

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get("accuracy")

    def save(self, folder: PathLike) -> Path:
        """Write ``metrics.json`` (with ``data`` and ``model``) and ``predictions.jsonl`` into
        ``folder`` (``comparison.json`` for a comparison); returns the folder."""
        out = _folder(folder)
        if self.rows:
            _write_json(out / "comparison.json", self.rows)
            return out
        _write_json(out / "metrics.json", {"data": self.data, "model": self.model, **self.metrics})
        _write_jsonl(out / "predictions.jsonl", self.records)
        return out


def evaluate(model: Any = None, data: PathLike | None = None, *, config: PathLike | None = None,
             overrides: Sequence[str] = (), format: str = "auto", lenient: bool = False, labels: str = "optional",
             graph: PathLike | None = None, cache_dir: PathLike | None = None, progress: bool = True,
             only: Sequence[str] = (), train: bool = True, graph_input: str | None = None,
             knowledge_input: str | None = None, stop_after_hours: float | None = None, run_settings: Sequence[str] = ()) -> Evaluation:
    """Evaluate a trained model on a data file, or run a comparison or experiment file.

    Args:
        model: a trained model folder (``<run>/model``) or a loaded
            :class:`~kgfuse.tasks.inference.KGFusePredictor`; with ``data``.
        data: a data file in any format of :func:`~kgfuse.tasks.datasets.load_examples`.
        config: a comparison file of trained models (``runs``: see
            :func:`kgfuse.tasks.evaluate.run_evaluations`) or an experiment file (``rows``: see
            :mod:`kgfuse.tasks.experiments`; trains what is missing, then tabulates), with
            ``overrides``.
        only, train: for an experiment file: train only these rows (``name`` or
            ``name-s<seed>``); ``train=False`` tabulates finished runs without training.
        stop_after_hours: for an experiment file: stop training after this many hours, the
            run in progress with a checkpoint that the same call resumes later.
        run_settings: for an experiment file: ``key=value`` settings of how each run trained
            here is carried out, not of what it trains
            (:data:`~kgfuse.tasks.experiments.RUN_SETTINGS`, e.g.
            ``train.eval_train_at_end=false``).
        format, lenient, labels: how to read ``data``.
        graph: the graph to use instead of the recorded one (same hash).
        cache_dir: the grounding cache (default ``$KGFUSE_HOME/cache``).
        graph_input: a test-time ablation of a fused model: score with this view of each
            subgraph (``full``, ``no_edges``, ``qa_only`` or ``none``; see
            :attr:`~kgfuse.tasks.inference.KGFusePredictor.graph_input`) instead of the one
            it was trained on; recorded in ``metrics["graph_input"]``.
        knowledge_input: a test-time ablation of a model trained with knowledge text: score
            with this part of it (``full``, ``none``, ``triples``, ``definitions`` or
            ``examples``; see :attr:`~kgfuse.tasks.inference.KGFusePredictor.knowledge_input`);
            recorded in ``metrics["knowledge_input"]``.

    Raises:
        ValueError: neither ``config`` nor both ``model`` and ``data`` are given.
    """
    if config is not None:
        from .config import read_config_file
        from .experiments import is_experiment_file, run_experiments

        if is_experiment_file(read_config_file(Path(config).expanduser())):
            res = run_experiments(config, overrides, only=only, train=train, progress=progress,
                                  stop_after_hours=stop_after_hours, run_settings=run_settings)
            return Evaluation(metrics={"table": res.table, "missing": res.missing, "progress": res.progress},
                              rows=res.table)
        if stop_after_hours is not None or run_settings:
            from .config import ConfigError

            what = "stop_after_hours bounds" if stop_after_hours is not None else "run_settings are for"
            raise ConfigError(f"{config}: a comparison file of trained models; {what} the training of an "
                              "experiment file (rows:)")
        from .evaluate import run_evaluations

        rows = run_evaluations(config, overrides, progress=progress)
        return Evaluation(metrics={"runs": rows}, rows=rows)
    if model is None or data is None:
        raise ValueError("evaluate: give config=COMPARISON.yaml, or model and data")
    from .datasets import load_examples
    from .evaluate import evaluate_predictor

    pred = load_predictor(model, graph=graph)
    exs, rep = load_examples(_abs(data), format, lenient=lenient, labels=labels)
    if rep.skipped:
        logger.warning("%s", rep)
    before = pred._graph_input, pred._knowledge_input  # a predictor passed in is left as it came
    try:
        if graph_input is not None:
            pred.graph_input = graph_input
        if knowledge_input is not None:
            pred.knowledge_input = knowledge_input
        m, recs = evaluate_predictor(pred, exs, cache_dir=cache_dir, progress=progress)
        if pred.uses_graph:
            m["graph_input"] = pred.graph_input
        if pred.knowledge_parts:
            m["knowledge_input"] = pred.knowledge_input
    finally:
        pred._graph_input, pred._knowledge_input = before
    return Evaluation(metrics=m, records=recs, model=_model_name(model), data=_abs(data), report=rep)


def _model_name(model: Any) -> str | None:
    if isinstance(model, (str, os.PathLike)):
        return _abs(model)
    src = getattr(getattr(getattr(model, "model", None), "config", None), "name_or_path", None)
    return str(src) if src else None


# --------------------------------------------------------------------------------------
# predict


def load_predictor(model: Any, *, graph: Any = None, threads: int | None = None, warm_up: bool = False) -> Any:
    """A :class:`~kgfuse.tasks.inference.KGFusePredictor` for ``model`` (a trained model
    folder; a predictor is returned as it is), to answer many questions with one load.

    Args:
        graph: a graph path or :class:`~kgfuse.kg.KnowledgeGraph` instead of the recorded one.
        threads: torch's intra-op threads for this process (``None``: leave torch's setting).
            One question is one small batch: one thread answers it about as fast as several
            on an idle machine, and much faster when the other cores are busy.
        warm_up: answer one made-up question now, so that what is built on first use (the
            spaCy pipeline, the retriever's indexes, the model's first forward pass) is not
            paid by the first real question.
    """
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    if isinstance(model, (str, os.PathLike)):
        from .inference import KGFusePredictor

        model = KGFusePredictor.from_pretrained(_abs(model),
                                                graph=_abs(graph) if isinstance(graph, (str, os.PathLike)) else graph)
    if warm_up:
        model.predict("Where would you put a plate after drying it?", ["cupboard", "roof"])
    return model


@dataclass
class Predictions:
    """What :func:`predict` returns.

    Attributes:
        predictions: one :class:`~kgfuse.tasks.inference.Prediction` per question (for
            ``question`` or ``questions``; empty for a data file).
        records: one JSON-able record per question: ``id``, ``question``, ``choices`` and the
            prediction's fields, or, for a data file, the prediction records of
            :func:`kgfuse.tasks.evaluate.prediction_record` (with ``label`` and ``correct``).
        metrics: accuracy, correct, count, total for a data file (``accuracy`` ``None``
            without labels); ``{}`` otherwise.
        seconds: wall seconds per question after the model was loaded (``question`` and
            ``questions`` only); ``load_seconds``: loading the model (0 for a given predictor).
    """

    predictions: list[Any] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    load_seconds: float = 0.0
    report: Any = field(default=None, repr=False, compare=False)

    def write(self, path: PathLike) -> Path:
        """The records as JSON lines in ``path``."""
        return _write_jsonl(Path(path).expanduser(), self.records)

    def save(self, folder: PathLike) -> Path:
        """Write ``predictions.jsonl`` (and ``metrics.json`` when there are metrics) into ``folder``."""
        out = _folder(folder)
        self.write(out / "predictions.jsonl")
        if self.metrics:
            _write_json(out / "metrics.json", self.metrics)
        return out


def _question_record(rec: Any, where: str) -> tuple[Any, str, list[str]]:
    """``(id, question, choices)`` of ``{"question": str, "choices": [str, ...], "id": ...}``."""
    if not isinstance(rec, Mapping):
        raise ValueError(f"{where}: expected a JSON object with 'question' and 'choices'")
    for name, what in (("question", "a non-empty string"), ("choices", "a list of at least two non-empty strings")):
        if name not in rec:
            raise ValueError(f"{where}: '{name}' is missing ({what})")
    question, choices = rec.get("question"), rec.get("choices")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: 'question' must be a non-empty string")
    if (not isinstance(choices, list) or len(choices) < 2
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        raise ValueError(f"{where}: 'choices' must be a list of at least two non-empty strings")
    return rec.get("id"), question, list(choices)


def _answer(predictor: Any, qid: Any, question: str, choices: list[str], top_k: int) -> tuple[Any, dict[str, Any], float]:
    t = time.perf_counter()
    p = predictor.predict(question, choices, top_k=top_k)
    sec = time.perf_counter() - t
    return p, {"id": qid, "question": question, "choices": choices, **p.to_dict()}, sec


def predict(model: Any, question: str | None = None, choices: Sequence[str] | None = None, *,
            questions: Iterable[Mapping[str, Any]] | None = None, data: PathLike | None = None, format: str = "auto",
            lenient: bool = False, graph: Any = None, top_k: int = 3, threads: int | None = None,
            cache_dir: PathLike | None = None, progress: bool = False) -> Predictions:
    """Answer one question, many questions, or a data file with a trained model.

    Args:
        model: a trained model folder (loaded once for the call), or a predictor from
            :func:`load_predictor` (loaded once for many calls).
        question, choices: one question and its answer choices (two or more).
        questions: many questions, each ``{"question": str, "choices": [str, ...]}`` with an
            optional ``id``, answered one by one.
        data: a data file (any format of :func:`~kgfuse.tasks.datasets.load_examples`),
            answered in batches through the grounding cache, with accuracy when labelled.
        graph, threads: see :func:`load_predictor`.
        top_k: reasoning lines kept in each explanation.

    Raises:
        ValueError: not exactly one of (``question`` and ``choices``), ``questions`` and
            ``data``, or a question without a text or with fewer than two choices.
    """
    given = [question is not None or choices is not None, questions is not None, data is not None]
    if sum(given) != 1:
        raise ValueError("predict: give question and choices, or questions, or data")
    if given[0] and not (question and choices):
        raise ValueError("predict: give both question and choices")
    t = time.perf_counter()
    pred = load_predictor(model, graph=graph, threads=threads)
    load = time.perf_counter() - t if isinstance(model, (str, os.PathLike)) else 0.0
    if data is not None:
        from .datasets import load_examples
        from .evaluate import evaluate_predictor

        exs, rep = load_examples(_abs(data), format, lenient=lenient, labels="optional")
        if rep.skipped:
            logger.warning("%s", rep)
        m, recs = evaluate_predictor(pred, exs, cache_dir=cache_dir, progress=progress, top_k=top_k)
        return Predictions(records=recs, metrics=m, load_seconds=load, report=rep)
    items = [{"question": question, "choices": list(choices or [])}] if given[0] else questions
    out = Predictions(load_seconds=load)
    for k, rec in enumerate(items):
        if given[0]:
            qid, q, ch = None, question, list(choices or [])
        else:
            qid, q, ch = _question_record(rec, f"questions[{k}]")
        p, r, sec = _answer(pred, qid, q, ch, top_k)
        out.predictions.append(p)
        out.records.append(r)
        out.seconds.append(sec)
    return out


# --------------------------------------------------------------------------------------
# a stream of questions (one JSON object per line)


def predict_lines(predictor: Any, lines: Iterable[str], *, top_k: int = 3) -> Iterator[tuple[dict[str, Any], float]]:
    """Answer a stream of JSON lines, one question each (``{"question": str, "choices": [str,
    ...], "id": ...}``), as they come: yields ``(record, seconds)`` per non-blank line.

    A line that is not such an object, or that the predictor rejects, yields
    ``{"line": n, "id": ..., "error": message}`` instead (the stream goes on).
    """
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        t = time.perf_counter()
        qid = None
        try:
            rec = json.loads(line)
            qid = rec.get("id") if isinstance(rec, Mapping) else None
            qid, q, ch = _question_record(rec, f"line {n}")
            _, r, sec = _answer(predictor, qid, q, ch, top_k)
        except json.JSONDecodeError as e:
            yield {"line": n, "id": None, "error": f"line {n}: not valid JSON: {e}"}, time.perf_counter() - t
            continue
        except ValueError as e:
            msg = str(e) if str(e).startswith(f"line {n}") else f"line {n}: {e}"
            yield {"line": n, "id": qid, "error": msg}, time.perf_counter() - t
            continue
        yield r, sec


@dataclass
class StreamSummary:
    """What :func:`predict_stream` returns: questions answered, lines rejected, and the wall
    seconds of each answer (after the model was loaded)."""

    answered: int = 0
    errors: int = 0
    seconds: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float | None:
        return 1000 * statistics.median(self.seconds) if self.seconds else None

    @property
    def max_ms(self) -> float | None:
        return 1000 * max(self.seconds) if self.seconds else None

    def save(self, folder: PathLike) -> Path:
        """Write ``stream.json`` (counts and latencies) into ``folder``."""
        out = _folder(folder)
        _write_json(out / "stream.json", {"answered": self.answered, "errors": self.errors, "seconds": self.seconds,
                                          "median_ms": self.median_ms, "max_ms": self.max_ms})
        return out


def predict_stream(predictor: Any, lines: Iterable[str], out: IO[str], *, top_k: int = 3) -> StreamSummary:
    """Answer JSON lines from ``lines`` (a file, ``sys.stdin``) into ``out``, one JSON line per
    question, flushed as each is answered: a model loaded once serves a pipe. Rejected lines
    are written as ``{"line", "id", "error"}`` and logged as warnings."""
    summary = StreamSummary()
    for rec, sec in predict_lines(predictor, lines, top_k=top_k):
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        out.flush()
        if "error" in rec:
            summary.errors += 1
            logger.warning("%s", rec["error"])
        else:
            summary.answered += 1
            summary.seconds.append(sec)
    return summary


# --------------------------------------------------------------------------------------
# a warm server (kgfuse serve)


def make_server(model: Any, *, host: str = "127.0.0.1", port: int = 8765, graph: Any = None,
                threads: int | None = None, top_k: int = 3, load: bool = True) -> Any:
    """A :class:`~kgfuse.tasks.serve.PredictionServer` that answers questions over HTTP with
    ``model`` loaded once (``POST /predict``, ``GET /health``; see :mod:`kgfuse.tasks.serve`)::

        with api.make_server("runs/csqa/model", port=0) as server:   # port 0: any free port
            server.start()                                           # on a background thread
            urllib.request.urlopen(server.url + "/health")

    Args:
        model: a trained model folder or a predictor from :func:`load_predictor`.
        host, port: the address to listen on (bound now).
        graph, threads: see :func:`load_predictor` (``threads`` sets torch's threads for the
            whole process).
        top_k: reasoning lines per explanation when a request does not say.
        load: load the model now (with one warm-up question); otherwise the server answers
            503 until :meth:`~kgfuse.tasks.serve.PredictionServer.load`.

    Raises:
        OSError: the address cannot be bound (the port is in use, ...).
    """
    from .serve import PredictionServer

    server = PredictionServer(model, host=host, port=port, graph=graph, threads=threads, top_k=top_k)
    if load:
        try:
            server.load()
        except BaseException:
            server.server_close()
            raise
    return server


def serve(model: Any, *, host: str = "127.0.0.1", port: int = 8765, graph: Any = None, threads: int | None = None,
          top_k: int = 3, on_ready: Any = None) -> None:
    """``kgfuse serve``: bind ``host:port``, answer (``"ready": false`` while loading), load
    ``model``, call ``on_ready(server)`` (default: log the URL), and answer until Ctrl-C or
    SIGTERM; arguments as :func:`make_server`."""
    from .serve import serve_until_stopped

    server = make_server(model, host=host, port=port, graph=graph, threads=threads, top_k=top_k, load=False)
    if on_ready is None:
        def on_ready(s: Any) -> None:
            logger.info("answering at %s (POST /predict, GET /health)", s.url)
    serve_until_stopped(server, on_ready=on_ready)
