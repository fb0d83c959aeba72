"""Experiment configuration: one dataclass tree, loaded from YAML or TOML, with dotted overrides.

One module because every section's dataclass, its defaults and its validation are read
together by the one loader (:func:`load_config`) that training, pre-training and experiment
files share; the keyword-argument schemas come from the classes they configure.

A config file maps 1:1 onto :class:`TrainConfig`::

    data:      {format: csqa, train: train.jsonl, dev: dev.jsonl, test: null, inhouse_qids: null}
    graph:     {path: ../data/sample_kg/assertions.csv, format: auto, options: {}}
    linker:    {max_words: 4, blacklist: []}           # EntityLinker keyword arguments
    retriever: {type: path, max_hops: 2}               # retriever name + keyword arguments
    model:     {text_encoder: all-MiniLM-L6-v2, ...}   # KGFusedConfig keyword arguments
    knowledge_text: {enabled: false, triples: 5, definitions: answer, max_tokens: 64, ...}
    train:     {epochs: 3, batch_size: 8, lr_lm: 1.0e-5, lr_gnn: 1.0e-3, lr_fusion: 1.0e-3, ...}
    output_dir: runs/csqa

Paths are resolved relative to the folder of the config file (never the current working
directory); ``bundled:<path>`` names a file of the bundled sample data
(:func:`kgfuse.tasks.cli.data_dir`), and ``~`` / ``$VARS`` are expanded (``$KGFUSE_HOME``
defaults to :func:`default_home`; another unset variable is an error). Overrides are
``section.key=value`` strings whose value is parsed as YAML (``train.lr_lm=2e-5``,
``linker.blacklist=[a,b]``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = [
    "DataConfig",
    "GraphConfig",
    "ModelConfig",
    "KnowledgeTextConfig",
    "OptimConfig",
    "TrainConfig",
    "ConfigError",
    "load_config",
    "apply_overrides",
    "resolve_path",
    "default_home",
]


class ConfigError(ValueError):
    """A configuration file or override is invalid (names the file and the key)."""


def default_home() -> Path:
    """``$KGFUSE_HOME`` or ``~/.cache/kgfuse``: where outputs and caches go by default."""
    env = os.environ.get("KGFUSE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "kgfuse"


def text_encoder_source(name: str | None, base_dir: str | os.PathLike | None) -> str | None:
    """A ``model.text_encoder`` value as given to ``from_pretrained``: written as a path
    (``./``, ``../``, ``bundled:``, ``~``, ``$VAR``) it is resolved with :func:`resolve_path`;
    anything else (a Hugging Face name, ``all-MiniLM-L6-v2``, an absolute folder) is kept."""
    if name and name.startswith(("./", "../", "bundled:", "~", "$")):
        return str(resolve_path(name, base_dir))
    return name


def resolve_path(value: str | os.PathLike | None, base_dir: str | os.PathLike | None) -> Path | None:
    """Resolve a config path: ``bundled:`` → bundled data; relative → ``base_dir``; ``~``/``$VAR`` expanded.

    Raises:
        ConfigError: a relative path with no ``base_dir`` (we never fall back to the CWD).
    """
    if value is None or value == "":
        return None
    s = str(value)
    if "KGFUSE_HOME" in s and not os.environ.get("KGFUSE_HOME"):
        s = s.replace("${KGFUSE_HOME}", str(default_home())).replace("$KGFUSE_HOME", str(default_home()))
    s = os.path.expandvars(s)
    if "$" in s:
        import re

        missing = sorted({m.group(1) or m.group(2) for m in re.finditer(r"\$\{(\w+)\}|\$(\w+)", s)}) or ["$"]
        raise ConfigError(f"path {value!r} uses unset environment variable(s) {missing}: set them or edit the path")
    if s.startswith("bundled:"):
        from kgfuse.tasks.cli import data_dir

        return data_dir() / s[len("bundled:"):].lstrip("/")
    p = Path(s).expanduser()
    if p.is_absolute():
        return p
    if base_dir is None:
        raise ConfigError(f"relative path {value!r} with no base folder: give an absolute path or load it from a config file")
    return (Path(base_dir) / p).resolve()


@dataclass
class DataConfig:
    """Which data files to load.

    Args:
        format: ``csqa``, ``obqa``, ``swag``, ``mc`` or ``auto``.
        train, dev, test: data files (``test`` may be unlabeled).
        inhouse_qids: CommonsenseQA in-house split id file: ``train`` is then split into
            in-house train (listed ids) and in-house test (the rest); ``test`` is ignored.
        lenient: skip malformed records instead of failing.
        max_train, max_eval: keep only the first N examples (quick runs).
        preprocess_workers: processes for grounding + retrieval (1 = in this process).
    """

    format: str = "auto"
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    inhouse_qids: str | None = None
    lenient: bool = False
    max_train: int | None = None
    max_eval: int | None = None
    preprocess_workers: int = 1


@dataclass
class GraphConfig:
    """The knowledge graph: a compiled folder or a raw file.

    Args:
        path: compiled graph folder (``KnowledgeGraph.save``) or raw file.
        format: ``auto`` (folder → compiled, ``.csv``/``.csv.gz`` → ConceptNet, ``.tsv``/``.txt``
            → triples), ``compiled``, ``conceptnet``, ``triples``.
        options: loader keyword arguments (e.g. ``relations: merged17``).
    """

    path: str | None = None
    format: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The model.

    Args:
        text_encoder: Hugging Face name or local folder (default: the shipped MiniLM).
        lm_only: the LM-only ablation (no graph: a plain text encoder + linear head).
        init_from: start from a trained kgfuse model folder instead of building a new one.
        options: further ``KGFusedConfig`` keyword arguments (graph encoder, fusion layers...).
        graph_input: what of each subgraph reaches the model, for controls: ``full``
            (default), ``no_edges``, ``qa_only`` or ``none`` (see :mod:`kgfuse.tasks.graph_input`).
        node_vocab: ``None``: one node-table row per graph concept; ``"train"``: rows only for
            the concepts of the training split's subgraphs, one shared row for the rest
            (:meth:`~kgfuse.fusion.KGFusedForMultipleChoice.restrict_node_table`): far less
            memory for large graphs.
    """

    text_encoder: str = "all-MiniLM-L6-v2"
    lm_only: bool = False
    init_from: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    node_vocab: str | None = None
    graph_input: str = "full"


@dataclass
class KnowledgeTextConfig:
    """Knowledge as text (section ``knowledge_text``; DEKCOR, Xu et al., 2021; KEAR, Xu et al., 2022).

    When ``enabled``, each (question, choice) pair is followed in the text encoder's input by
    the retrieved knowledge written out (:class:`kgfuse.kg.verbalize.Verbalizer`):
    ``[CLS] question [SEP] choice [SEP] knowledge [SEP]``, cut from the knowledge side only to
    ``train.max_length`` (raise it, e.g. to 128, to leave room). It works with every model:
    with ``model.lm_only`` (DEKCOR-style: linking and retrieval run for the text only) and
    with the graph routes. The text is computed from the cached grounding and subgraph when
    features are built; the settings are saved with the model, so inference builds the same
    input.

    Args:
        enabled: the switch.
        triples: at most this many fact sentences (a direct edge or a path) per statement.
        definitions: ``answer`` (definitions of the answer concepts), ``all`` (and of the
            question concepts) or ``none``.
        max_tokens: token budget of the knowledge text (model tokenizer), or null.
        templates: relation template preset (``relation_templates``) or a JSON file.
        definition_source: ``wordnet`` (the WordNet glosses in ``/usr/share/wordnet``), another
            registered source, or a ``{concept: text}`` JSON / ``name<TAB>text`` TSV file.
        examples: KEAR's retrieved training examples: the K training questions most similar
            to the question (BM25, :mod:`kgfuse.tasks.retrieved_examples`), each with its
            answer, after the graph knowledge of every choice (0: none). They are not counted
            in ``max_tokens``; ``train.max_length`` cuts them first.
    """

    enabled: bool = False
    triples: int = 5
    definitions: str = "answer"
    max_tokens: int | None = 64
    templates: str = "relation_templates"
    definition_source: str = "wordnet"
    examples: int = 0


@dataclass
class OptimConfig:
    """Optimisation (section ``train``).

    The defaults follow QA-GNN (Yasunaga et al., 2021): AdamW, LM learning rate 1e-5, GNN
    and fusion 1e-3, linear warm-up then linear decay.

    ``save_steps`` also writes a resumable ``checkpoint-<step>/`` every this many optimiser
    steps (``--resume auto`` picks the newest of them and the epoch-end ``last/``);
    ``save_total_limit`` keeps only that many of them (the epoch-end ``last/`` and ``best/``
    are kept regardless). Once a run has finished,
    ``last/`` drops its optimiser and scheduler state (twice the model's size with AdamW)
    unless ``keep_optimizer_state`` is true: keep it to continue the run with more epochs.

    ``group_by_length`` batches training questions of similar token length together
    (:class:`~kgfuse.tasks.train.LengthGroupedSampler`, still a pure function of seed and
    epoch) and evaluates each epoch's splits longest first: less padding, so shorter steps,
    but a different batch composition from the default random batches (compare runs with the
    same setting).

    ``early_stopping_patience`` ends the run once the selection metric (``metric``) has not
    improved by more than ``early_stopping_threshold`` for that many epochs in a row, as
    ``transformers.EarlyStoppingCallback`` does: with it, ``epochs`` is the most a run trains
    ("train until dev accuracy stops rising"). The learning-rate schedule still spans
    ``epochs``, so a run that stops early never decays to zero; the best epoch's model is kept
    as always.

    ``stop_after_hours`` ends this sitting, not the run: once this many hours of training have
    passed in this process, the loop saves a resumable ``checkpoint-<step>/`` after the current
    optimiser step and returns without the final evaluation; ``--resume auto`` continues the
    run exactly where it stopped (same schedule, same weights as an uninterrupted run). For
    machines lent for a fixed time: the sitting ends cleanly instead of losing the steps since
    the last ``save_steps`` checkpoint. It does not change the trajectory, so a resume may
    change or drop it.

    ``eval_train_at_end`` (default true): the final evaluation of the best model scores the
    training split too (train accuracy, ``predictions-train.jsonl``). False skips that pass,
    which on a CPU is a large share of the final evaluation (the training split is 4 to 10
    times the size of dev); the dev and test results are the same either way.
    """

    epochs: int = 3
    batch_size: int = 8
    eval_batch_size: int = 16
    lr_lm: float = 1e-5
    lr_gnn: float = 1e-3
    lr_fusion: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    freeze_lm_epochs: int = 0
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    # YAML reads a bare ``no`` (``--set train.mixed_precision=no``) as false: both mean "no"
    mixed_precision: str = field(default="auto", metadata={"false": "no"})
    seed: int = 42
    max_length: int = 64
    metric: str = "dev_accuracy"
    save_best: bool = True
    save_last: bool = True
    log_every: int = 10
    num_workers: int = 0
    max_steps: int | None = None
    save_steps: int | None = None
    save_total_limit: int | None = 1
    keep_optimizer_state: bool = False
    group_by_length: bool = False
    early_stopping_patience: int | None = None
    early_stopping_threshold: float = 0.0
    stop_after_hours: float | None = None
    eval_train_at_end: bool = True


@dataclass
class TrainConfig:
    """Everything a training run needs; ``base_dir`` is where relative paths are resolved."""

    data: DataConfig = field(default_factory=DataConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    linker: dict[str, Any] = field(default_factory=dict)
    retriever: dict[str, Any] = field(default_factory=lambda: {"type": "path"})
    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    knowledge_text: KnowledgeTextConfig = field(default_factory=KnowledgeTextConfig)
    output_dir: str | None = None
    cache_dir: str | None = None
    base_dir: str | None = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: str | os.PathLike | None = None, source: str = "<dict>") -> "TrainConfig":
        cfg = _from_dict(cls, dict(d), source, "", base_dir=None if base_dir is None else str(base_dir))
        validate_config(cfg, source)
        return cfg

    @classmethod
    def from_file(cls, path: str | os.PathLike, overrides: Sequence[str] = ()) -> "TrainConfig":
        return load_config(path, overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def path(self, value: str | None) -> Path | None:
        """Resolve a path value of this config (see :func:`resolve_path`)."""
        return resolve_path(value, self.base_dir)

    def resolved(self) -> "TrainConfig":
        """A copy with every path made absolute (so it can be saved and reloaded anywhere)."""
        c = TrainConfig.from_dict(self.to_dict(), base_dir=self.base_dir)
        for sec, keys in (("data", ("train", "dev", "test", "inhouse_qids")), ("graph", ("path",))):
            obj = getattr(c, sec)
            for k in keys:
                v = getattr(obj, k)
                if v is not None:
                    setattr(obj, k, str(self.path(v)))
        for k in ("output_dir", "cache_dir"):
            v = getattr(c, k)
            if v is not None:
                setattr(c, k, str(self.path(v)))
        if c.model.init_from:
            c.model.init_from = str(self.path(c.model.init_from))
        from kgfuse.kg.verbalize import is_path_like

        for k in ("templates", "definition_source"):
            v = getattr(c.knowledge_text, k)
            if v and is_path_like(v):
                setattr(c.knowledge_text, k, str(self.path(v)))
        c.model.text_encoder = text_encoder_source(c.model.text_encoder, self.base_dir)
        return c

    def with_overrides(self, overrides: Sequence[str]) -> "TrainConfig":
        d = apply_overrides(self.to_dict(), overrides)
        return TrainConfig.from_dict(d, base_dir=self.base_dir, source="overrides")


def _from_dict(cls: type, d: dict[str, Any], source: str, prefix: str, base_dir: str | None = None,
               default: Any = None) -> Any:
    """Config dataclass ``cls`` from ``d``, every key type-checked (unknown keys: did-you-mean).
    A field whose default is a dataclass is a section, parsed the same way from that default
    (so a config may give a section other defaults); ``default``: the instance that keys
    missing from ``d`` keep; ``base_dir`` fills that field of a top-level config."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in d if k not in fields]
    if unknown:
        raise ConfigError(_unknown_key(source, prefix, unknown[0], [k for k in fields if k != "base_dir"]))
    kwargs: dict[str, Any] = {}
    for k, v in d.items():
        section = _section_default(fields[k])
        if section is not None:
            if v is None:
                v = {}
            if not isinstance(v, dict):
                raise ConfigError(f"{source}: {prefix}{k} must be a mapping, got {type(v).__name__}")
            kwargs[k] = _from_dict(type(section), v, source, f"{prefix}{k}.", default=section)
        else:
            kwargs[k] = _check_type(cls, fields[k], v, source, prefix)
    if "base_dir" in fields and base_dir is not None and "base_dir" not in d:
        kwargs["base_dir"] = base_dir
    return dataclasses.replace(default, **kwargs) if default is not None else cls(**kwargs)


def _section_default(f: dataclasses.Field) -> Any:
    """The default instance of a section field (one holding a config dataclass), else ``None``."""
    value = None if f.default_factory is dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return value if dataclasses.is_dataclass(value) else None


def _check_type(cls: type, f: dataclasses.Field, v: Any, source: str, prefix: str) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
    ann = str(f.type)
    if v is None:
        if "None" in ann:
            return None
        raise ConfigError(f"{source}: {prefix}{f.name} may not be null")
    if isinstance(default, bool) or ann.startswith("bool"):
        if not isinstance(v, bool):
            raise ConfigError(f"{source}: {prefix}{f.name} must be true/false, got {v!r}")
        return v
    if ann.startswith("int"):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{source}: {prefix}{f.name} must be an integer, got {v!r}")
        return v
    if ann.startswith("float"):
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{source}: {prefix}{f.name} must be a number, got {v!r}")
        return float(v)
    if ann.startswith("str"):
        if v is False and "false" in f.metadata:  # a YAML word such as ``no`` that reads as false
            return f.metadata["false"]
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise ConfigError(f"{source}: {prefix}{f.name} must be a string, got {v!r}")
        return str(v)
    if ann.startswith("dict"):
        if not isinstance(v, dict):
            raise ConfigError(f"{source}: {prefix}{f.name} must be a mapping, got {v!r}")
        return dict(v)
    return v


def _unknown_key(source: str, prefix: str, key: str, valid: Sequence[str]) -> str:
    """``<source>: unknown key a.b; valid keys: [...]; did you mean 'c'?``"""
    import difflib

    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{source}: unknown key '{prefix}{key}'; valid keys: {sorted(valid)}{hint}"


# ------------------------------------------------------------------ keyword sections
# ``linker``, ``retriever`` and ``model.options`` are keyword arguments of a class. Their
# schema is that class's signature (one default, in one place); a key outside it, or a value
# of the wrong type, is a ConfigError naming the key path.

#: ``model.options`` keys that are not KGFusedConfig fields (build arguments).
MODEL_BUILD_OPTIONS = {"text_config": dict, "node_features": str, "name_embedding_cache": str}
_OPTION_TYPES = {"NoneType": type(None)}


def _signature_schema(fn: Any, skip: Sequence[str]) -> dict[str, Any]:
    import inspect

    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip or name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out[name] = p
    return out


def _value_matches(param: Any, v: Any) -> str | None:
    """``None`` when ``v`` fits ``param`` (an ``inspect.Parameter``), else what was expected."""
    ann = str(param.annotation) if param.annotation is not param.empty else ""
    heads = {alt.strip().split("[")[0].strip("'\" ") for alt in ann.split("|")} if ann else set()
    default = param.default
    if v is None:
        return None if ("None" in heads or default is None) else "a value (not null)"
    if not heads:
        heads = {type(default).__name__}
    table = {"bool": "bool", "int": "int", "float": "float", "str": "str", "Iterable": "list", "Sequence": "list",
             "list": "list", "tuple": "list", "frozenset": "list", "set": "list", "dict": "dict", "Mapping": "dict"}
    kinds = [table[h] for h in heads if h in table]
    if not kinds:
        return None
    ok = {
        "bool": isinstance(v, bool),
        "int": isinstance(v, int) and not isinstance(v, bool),
        "float": isinstance(v, (int, float)) and not isinstance(v, bool),
        "str": isinstance(v, str),
        "list": isinstance(v, list),
        "dict": isinstance(v, dict),
    }
    if any(ok[k] for k in kinds):
        return None
    names = {"bool": "true/false", "int": "an integer", "float": "a number", "str": "a string", "list": "a list",
             "dict": "a mapping"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def _check_kwargs(section: str, given: Mapping[str, Any], schema: Mapping[str, Any], source: str) -> None:
    for k, v in given.items():
        if k not in schema:
            raise ConfigError(_unknown_key(source, f"{section}.", k, list(schema)))
        expected = _value_matches(schema[k], v)
        if expected is not None:
            raise ConfigError(f"{source}: {section}.{k} must be {expected}, got {v!r}")


def linker_schema() -> dict[str, Any]:
    """The ``linker`` section: :class:`~kgfuse.kg.EntityLinker` keyword arguments."""
    from kgfuse.kg.linking import EntityLinker

    return _signature_schema(EntityLinker.__init__, ("graph", "nlp"))


def retriever_schema(kind: str) -> dict[str, Any]:
    """The ``retriever`` section for ``type: kind``: the retriever's keyword arguments."""
    from kgfuse.kg.retrieval import RETRIEVERS

    return _signature_schema(RETRIEVERS[kind].__init__, ("graph", "scorer"))


def model_options_schema() -> dict[str, Any]:
    """``model.options``: :class:`~kgfuse.fusion.KGFusedConfig` fields set by the user, plus
    the build options of :data:`MODEL_BUILD_OPTIONS`."""
    import inspect

    from kgfuse.fusion.modeling import KGFusedConfig

    schema = _signature_schema(KGFusedConfig.__init__, ("num_concepts", "num_relations", "graph_hash", "text_config",
                                                       "text_encoder_name", "node_vocab_size"))
    for name, typ in MODEL_BUILD_OPTIONS.items():
        ann = "str | dict | None" if name == "node_features" else f"{typ.__name__} | None"
        schema[name] = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
    return schema


_PRECISIONS = ("auto", "no", "fp16", "bf16")


def _check_kge_spec(spec: Mapping[str, Any], source: str) -> None:
    """``model.options.node_features: {kge: ..., <train_kg_embeddings keyword>: ...}``."""
    from kgfuse.kg.embeddings import train_kg_embeddings

    if spec.get("kge") not in ("transe", "distmult", "rotate"):
        raise ConfigError(f"{source}: model.options.node_features.kge must be transe, distmult or rotate, "
                          f"got {spec.get('kge')!r}")
    schema = _signature_schema(train_kg_embeddings, ("graph", "model", "callback", "device", "log_every"))
    _check_kwargs("model.options.node_features", {k: v for k, v in spec.items() if k != "kge"}, schema, source)


def validate_config(cfg: Any, source: str = "<dict>") -> None:
    """Check the keyword sections and value ranges of a config (:class:`TrainConfig` or one of
    the same sections, e.g. :class:`~kgfuse.tasks.pretrain_config.PretrainConfig`): those it
    has of ``linker``, ``retriever``, ``model``, ``train``, ``knowledge_text``, then each
    section's and the config's own ``validate(source)``. Raises :class:`ConfigError`."""
    if getattr(cfg, "linker", None):
        _check_kwargs("linker", cfg.linker, linker_schema(), source)
    if hasattr(cfg, "retriever"):
        from kgfuse.kg.retrieval import RETRIEVERS

        ret = dict(cfg.retriever or {})
        kind = ret.pop("type", "path")
        if kind not in RETRIEVERS:
            raise ConfigError(f"{source}: retriever.type must be one of {sorted(RETRIEVERS)}, got {kind!r}")
        _check_kwargs("retriever", ret, retriever_schema(kind), source)
    if hasattr(cfg, "model"):
        if cfg.model.options:
            _check_kwargs("model.options", cfg.model.options, model_options_schema(), source)
            nf = cfg.model.options.get("node_features")
            if isinstance(nf, dict):
                _check_kge_spec(nf, source)
            elif isinstance(nf, str) and nf not in ("learned", "name"):
                raise ConfigError(f"{source}: model.options.node_features must be learned, name or "
                                  f"{{kge: transe | distmult | rotate, ...}}, got {nf!r}")
            from kgfuse.fusion.configuration import TEXT_POOLING_CHOICES

            tp = cfg.model.options.get("text_pooling", "model")
            if tp not in TEXT_POOLING_CHOICES:
                raise ConfigError(f"{source}: model.options.text_pooling must be one of {list(TEXT_POOLING_CHOICES)}, "
                                  f"got {tp!r}")
        from .graph_input import GRAPH_INPUTS

        if cfg.model.graph_input not in GRAPH_INPUTS:
            raise ConfigError(f"{source}: model.graph_input must be one of {list(GRAPH_INPUTS)}, got {cfg.model.graph_input!r}")
        if cfg.model.node_vocab not in (None, "train"):
            raise ConfigError(f"{source}: model.node_vocab must be null or 'train', got {cfg.model.node_vocab!r}")
        if hasattr(cfg, "retriever"):
            _check_node_score(cfg, source)
    if hasattr(cfg, "train"):
        t = cfg.train
        for key in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "max_length"):
            v = getattr(t, key)
            if v < 1:
                raise ConfigError(f"{source}: train.{key} must be >= 1, got {v}")
        if t.mixed_precision not in _PRECISIONS:
            raise ConfigError(f"{source}: train.mixed_precision must be one of {list(_PRECISIONS)}, got {t.mixed_precision!r}")
        for key in ("save_steps", "max_steps", "save_total_limit", "early_stopping_patience"):
            v = getattr(t, key)
            if v is not None and v < 1:
                raise ConfigError(f"{source}: train.{key} must be >= 1 or null, got {v}")
        for key in ("lr_lm", "lr_gnn", "lr_fusion"):
            if getattr(t, key) < 0:
                raise ConfigError(f"{source}: train.{key} must be >= 0, got {getattr(t, key)}")
        if t.early_stopping_threshold < 0:
            raise ConfigError(f"{source}: train.early_stopping_threshold must be >= 0, got {t.early_stopping_threshold}")
        if t.stop_after_hours is not None and not t.stop_after_hours > 0:
            raise ConfigError(f"{source}: train.stop_after_hours must be > 0 or null, got {t.stop_after_hours}")
    if hasattr(cfg, "knowledge_text"):
        _validate_knowledge_text(cfg.knowledge_text, source)
    for f in dataclasses.fields(cfg):
        sec = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sec) and callable(getattr(sec, "validate", None)):
            sec.validate(f"{source}: {f.name}")
    if callable(getattr(cfg, "validate", None)):
        cfg.validate(source)


def _check_node_score(cfg: Any, source: str) -> None:
    """Relevance scores as a QA-GNN node feature need relevance-ranked subgraphs reaching a
    QA-GNN encoder."""
    opts = cfg.model.options or {}
    if not (opts.get("graph_encoder_kwargs") or {}).get("use_node_score"):
        return
    ret = cfg.retriever or {}
    needs = {"model.options.graph_encoder": (opts.get("graph_encoder") == "qagnn", "qagnn"),
             "retriever.type": (ret.get("type") == "subgraph", "subgraph"),
             "retriever.ranking": (ret.get("ranking") == "relevance", "relevance"),
             "model.lm_only": (not cfg.model.lm_only, "false"),
             "model.graph_input": (cfg.model.graph_input != "none", "not none")}
    bad = [f"{k} must be {want}" for k, (ok, want) in needs.items() if not ok]
    if bad:
        raise ConfigError(f"{source}: model.options.graph_encoder_kwargs.use_node_score needs " + "; ".join(bad))


def _validate_knowledge_text(kt: "KnowledgeTextConfig", source: str) -> None:
    from kgfuse.kg.verbalize import DEFINITION_MODES, definition_source_names, is_path_like, template_preset_names

    if kt.triples < 0:
        raise ConfigError(f"{source}: knowledge_text.triples must be >= 0, got {kt.triples}")
    if kt.max_tokens is not None and kt.max_tokens < 1:
        raise ConfigError(f"{source}: knowledge_text.max_tokens must be >= 1 or null, got {kt.max_tokens}")
    if kt.definitions not in DEFINITION_MODES:
        raise ConfigError(f"{source}: knowledge_text.definitions must be one of {list(DEFINITION_MODES)}, "
                          f"got {kt.definitions!r}")
    if not is_path_like(kt.templates) and kt.templates not in template_preset_names():
        raise ConfigError(f"{source}: knowledge_text.templates must be a template preset {template_preset_names()} "
                          f"or the path of a JSON file, got {kt.templates!r}")
    names = [n for n in definition_source_names() if n != "file"]
    if not is_path_like(kt.definition_source) and kt.definition_source.lower() not in names:
        raise ConfigError(f"{source}: knowledge_text.definition_source must be one of {names} or the path of a "
                          f"definitions file (.json or .tsv), got {kt.definition_source!r}")
    if kt.examples < 0:
        raise ConfigError(f"{source}: knowledge_text.examples must be >= 0, got {kt.examples}")
    if kt.enabled and kt.triples == 0 and kt.definitions == "none" and kt.examples == 0:
        raise ConfigError(f"{source}: knowledge_text is enabled with triples 0, definitions none and examples 0: "
                          "it adds nothing")


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(d: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (value parsed as YAML); returns a new dict."""
    out = json.loads(json.dumps(d))
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} is not of the form section.key=value")
        key, text = ov.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override {ov!r} has an empty key")
        cur = out
        for p in parts[:-1]:
            if cur.get(p) is None:
                cur[p] = {}
            if not isinstance(cur[p], dict):
                raise ConfigError(f"override {ov!r}: {p!r} is not a section")
            cur = cur[p]
        cur[parts[-1]] = _parse_value(text)
    return out


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML: {e}") from e
    else:
        import yaml

        try:
            d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return d


def load_config(path: str | os.PathLike, overrides: Sequence[str] = (), *, cls: type | None = None) -> Any:
    """Load a :class:`TrainConfig` (or ``cls``, e.g.
    :class:`~kgfuse.tasks.pretrain_config.PretrainConfig`) from YAML/TOML and apply dotted
    overrides. Relative paths in the file are resolved against the file's folder."""
    path = Path(path).expanduser().resolve()
    d = apply_overrides(read_config_file(path), overrides)
    d.pop("base_dir", None)
    return (cls or TrainConfig).from_dict(d, base_dir=path.parent, source=str(path))
