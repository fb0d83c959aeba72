"""Assemble a run from a config: graph → linker → retriever → preprocessed cache → features → model.

Each builder is a small public function, so a script can use any stage alone::

    graph = load_graph(config.graph, base_dir)
    linker = build_linker(graph, {"max_words": 4})
    retriever = build_retriever(graph, {"type": "path", "max_hops": 2})
    pre = preprocess(examples, graph, linker, retriever, cache_dir)
    verbalizer = build_verbalizer(graph, {"enabled": True, "triples": 3}, tokenizer)  # knowledge as text
    ds = MCFeatureDataset(examples, pre, tokenizer, max_length=128, verbalizer=verbalizer)

:func:`build_run` does all of it for a :class:`~kgfuse.tasks.config.TrainConfig` and returns
a :class:`Run` that :func:`kgfuse.tasks.train.train` trains and
:mod:`kgfuse.tasks.evaluate` evaluates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .config import ConfigError, GraphConfig, KnowledgeTextConfig, TrainConfig, default_home, text_encoder_source
from .datasets import MCExample, examples_hash, load_csqa_inhouse, load_examples

__all__ = [
    "PIPELINE_FILE",
    "load_graph",
    "build_linker",
    "build_retriever",
    "build_verbalizer",
    "preprocess",
    "MCFeatureDataset",
    "build_model",
    "model_tokenizer",
    "MODEL_HEADS",
    "model_class",
    "load_splits",
    "Run",
    "build_run",
    "write_pipeline_files",
]

logger = logging.getLogger(__name__)

PIPELINE_FILE = "kgfuse_pipeline.json"


# --------------------------------------------------------------------------------------
# graph / linker / retriever


def load_graph(cfg: GraphConfig | Mapping[str, Any], base_dir: str | os.PathLike | None = None):
    """Load the knowledge graph named by a :class:`GraphConfig` (or its dict).

    Goes through :func:`kgfuse.kg.formats.open_graph`, the one resolver every route uses:
    ``format="auto"`` tells a compiled folder, a WordNet folder, a ConceptNet 5 ``.csv``, a
    ConceptNet 4 table and other triples tables apart; ``options`` go to the loader.
    """
    from kgfuse.kg.formats import open_graph

    from .config import resolve_path

    if isinstance(cfg, Mapping):
        cfg = GraphConfig(**cfg)
    from kgfuse.kg.formats import GraphFormatError

    if cfg.path is None and cfg.format != "wordnet":
        raise ConfigError("graph.path is not set: give a compiled graph folder, a WordNet folder or a graph file")
    if cfg.path is None:
        from kgfuse.kg.loaders import DEFAULT_WORDNET

        path = Path(DEFAULT_WORDNET)
    else:
        path = resolve_path(cfg.path, base_dir)
    try:
        return open_graph(path, cfg.format, **dict(cfg.options))
    except (GraphFormatError, FileNotFoundError):
        raise
    except (TypeError, ValueError) as e:  # a loader option of the wrong name, type or value
        raise ConfigError(f"graph.options for {path} ({cfg.format}): {e}") from None


def build_linker(graph, options: Mapping[str, Any] | None = None):
    """An :class:`~kgfuse.kg.linking.EntityLinker` with keyword ``options``."""
    from kgfuse.kg.linking import EntityLinker

    return EntityLinker(graph, **dict(options or {}))


def build_retriever(graph, options: Mapping[str, Any] | None = None, *, text_encoder: str | None = None,
                    cache_dir: str | os.PathLike | None = None):
    """A retriever from ``{"type": <registered name>, **kwargs}`` (default type ``path``; see
    :data:`kgfuse.kg.retrieval.RETRIEVERS`). ``ranking: relevance`` (``subgraph``) gets a
    :class:`~kgfuse.encoders.relevance.TextRelevanceScorer` on ``text_encoder`` (``None``: the
    shipped MiniLM), its concept-name embeddings kept under ``cache_dir``."""
    from kgfuse.kg.retrieval import build_retriever as _build

    opts = dict(options or {})
    kind = opts.pop("type", "path")
    if opts.get("ranking") == "relevance" and "scorer" not in opts:
        from kgfuse.encoders.relevance import TextRelevanceScorer

        opts["scorer"] = TextRelevanceScorer(text_encoder, cache_dir=cache_dir)
    return _build(graph, kind, **opts)


def build_verbalizer(graph, cfg: KnowledgeTextConfig | Mapping[str, Any] | None, tokenizer: Any = None, *,
                     base_dir: str | os.PathLike | None = None):
    """The :class:`~kgfuse.kg.verbalize.Verbalizer` of a ``knowledge_text`` section, or ``None``
    when it is absent or not enabled.

    ``tokenizer`` counts the ``max_tokens`` budget (the model's tokenizer); file paths
    (``templates``, ``definition_source``) are resolved against ``base_dir`` like every
    config path.
    """
    from kgfuse.kg.verbalize import Verbalizer, is_path_like

    from .config import resolve_path

    if cfg is None:
        return None
    if isinstance(cfg, Mapping):
        cfg = KnowledgeTextConfig(**{k: v for k, v in cfg.items()})
    if not cfg.enabled:
        return None

    def where(v: str) -> Any:
        return str(resolve_path(v, base_dir)) if v and is_path_like(v) else v

    return Verbalizer(graph, triples=cfg.triples, definitions=cfg.definitions, max_tokens=cfg.max_tokens,
                      templates=where(cfg.templates), definition_source=where(cfg.definition_source),
                      tokenizer=tokenizer)


def preprocess(examples: Sequence[MCExample], graph, linker, retriever, cache_dir: str | os.PathLike | None, *,
               num_workers: int = 1, progress: bool = False):
    """Ground and retrieve every (question, choice) pair, cached by content.

    Delegates to :func:`kgfuse.kg.preprocess.preprocess_dataset`, whose cache key includes
    the graph hash, the linker and retriever configs and :func:`examples_hash`.
    """
    from kgfuse.kg.preprocess import preprocess_dataset

    return preprocess_dataset(examples, graph, linker, retriever, cache_dir, dataset_hash=examples_hash(examples),
                              num_workers=num_workers, progress=progress)


# --------------------------------------------------------------------------------------
# features


class MCFeatureDataset:
    """Model features of preprocessed examples, built on access.

    Items are :func:`kgfuse.tasks.features.build_features` dicts (with ``label`` when known)
    for :class:`kgfuse.tasks.features.MultipleChoiceCollator`.

    Args:
        examples, pre: the examples and their preprocessed (grounding, subgraph) records.
        tokenizer, max_length: as for :func:`~kgfuse.tasks.features.build_features`.
        verbalizer: a :class:`~kgfuse.kg.verbalize.Verbalizer`: each pair is followed by its
            knowledge text, computed here from the cached grounding and subgraph (so no
            cache holds the text; the verbaliser's settings are saved with the model).
        knowledge_pre: the records the verbaliser reads (default ``pre``): the retrieved
            subgraphs as they are when ``pre`` is a reduced view for the model
            (:mod:`kgfuse.tasks.graph_input`).
        graph_inputs: ``False`` for a model that gets no graph (``model.lm_only``, or
            ``model.graph_input: none``): empty groundings and subgraphs go to the model, the
            real ones to the verbaliser.
        example_retriever: a :class:`~kgfuse.tasks.retrieved_examples.ExampleRetriever`: its
            units for each question (never the question itself, by id and text) follow the
            verbaliser's in every choice's knowledge text.
    """

    def __init__(self, examples: Sequence[MCExample], pre: Any, tokenizer: Any, *, max_length: int | None = None,
                 verbalizer: Any = None, knowledge_pre: Any = None, graph_inputs: bool = True,
                 example_retriever: Any = None) -> None:
        self.examples = list(examples)
        self.pre = pre
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.verbalizer = verbalizer
        self.example_retriever = example_retriever
        self.knowledge_pre = knowledge_pre
        self.graph_inputs = graph_inputs
        if len(pre) != len(self.examples):
            raise ValueError(f"{len(self.examples)} examples but {len(pre)} preprocessed records")

    def __len__(self) -> int:
        return len(self.examples)

    def pairs(self, i: int) -> list[tuple[Any, Any]]:
        """``[(Grounding, KGData)]`` per choice of example ``i``."""
        rec = self.pre[i]
        return [rec[j] for j in range(len(self.examples[i].choices))]

    def retrieved_pairs(self, i: int) -> list[tuple[Any, Any]]:
        """Like :meth:`pairs`, before any ``graph_input`` view: the groundings and subgraphs as
        retrieved, which explanations and the knowledge text read."""
        kpre = getattr(self, "knowledge_pre", None)
        if kpre is None:
            return self.pairs(i)
        return [kpre[i][j] for j in range(len(self.examples[i].choices))]

    def num_linked_concepts(self, i: int) -> int:
        """Distinct concepts linked in the question and all choices of example ``i``."""
        s: set[int] = set()
        for g, _ in self.pairs(i):
            s.update(int(c) for c in g.question_concepts)
            s.update(int(c) for c in g.answer_concepts)
        return len(s)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from .features import build_features

        ex = self.examples[i]
        pairs = self.pairs(i)
        knowledge = knowledge_units(getattr(self, "verbalizer", None), getattr(self, "example_retriever", None),
                                    self.retrieved_pairs(i), ex.question, ex.id)
        if not getattr(self, "graph_inputs", True):
            pairs = _empty_pairs(len(pairs))
        return build_features(ex.question, ex.choices, [g for g, _ in pairs], [d for _, d in pairs], self.tokenizer,
                              max_length=self.max_length, label=ex.label, knowledge=knowledge)


class TextOnlyDataset(MCFeatureDataset):
    """Features for the LM-only ablation: no linking or retrieval (empty groundings/subgraphs)."""

    def __init__(self, examples: Sequence[MCExample], tokenizer: Any, *, max_length: int | None = None) -> None:
        self.examples = list(examples)
        self.pre = None
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.verbalizer = None
        self.example_retriever = None
        self.knowledge_pre = None
        self.graph_inputs = False

    def pairs(self, i: int) -> list[tuple[Any, Any]]:
        return _empty_pairs(len(self.examples[i].choices))


def knowledge_units(verbalizer: Any, example_retriever: Any, pairs: Sequence[tuple[Any, Any]], question: str,
                    question_id: str | None = None) -> list[list[str]] | None:
    """The knowledge units of each choice (``None`` without knowledge text): the verbaliser's
    sentences of its ``(grounding, subgraph)`` pair, then the question's retrieved examples
    (the same for every choice)."""
    if verbalizer is None and example_retriever is None:
        return None
    extra = example_retriever.units(question, exclude_id=question_id) if example_retriever is not None else []
    return [(list(verbalizer(g, d)) if verbalizer is not None else []) + extra for g, d in pairs]


def _empty_pairs(n: int) -> list[tuple[Any, Any]]:
    """``n`` (empty Grounding, empty KGData) pairs: the graph inputs of an LM-only model."""
    from kgfuse.kg.linking import Grounding

    empty = _empty_kgdata()
    return [(Grounding(), empty) for _ in range(n)]


def _empty_kgdata():
    import torch

    from kgfuse.kg.retrieval import KGData

    return KGData(concept_ids=torch.zeros(0, dtype=torch.long), node_type=torch.zeros(0, dtype=torch.long),
                  edge_index=torch.zeros(2, 0, dtype=torch.long), edge_type=torch.zeros(0, dtype=torch.long), num_nodes=0)


# --------------------------------------------------------------------------------------
# model


#: The heads :func:`build_model` puts on the fused model: ``"base"``
#: (:class:`~kgfuse.fusion.base.KGFusedModel`, no head), ``"multiple_choice"``
#: (:class:`~kgfuse.fusion.KGFusedForMultipleChoice`, fine-tuning) and ``"pretraining"``
#: (:class:`~kgfuse.fusion.pretraining.KGFusedForPreTraining`, MLM + dEA).
MODEL_HEADS = ("multiple_choice", "pretraining", "base")


def model_class(head: str):
    """The model class of a :data:`MODEL_HEADS` name."""
    if head not in MODEL_HEADS:
        raise ValueError(f"unknown model head {head!r}; valid heads: {list(MODEL_HEADS)}")
    if head == "pretraining":
        from kgfuse.fusion.pretraining import KGFusedForPreTraining

        return KGFusedForPreTraining
    from kgfuse.fusion.modeling import KGFusedForMultipleChoice, KGFusedModel

    return KGFusedForMultipleChoice if head == "multiple_choice" else KGFusedModel


def model_tokenizer(model_cfg, base_dir: str | os.PathLike | None = None):
    """The tokenizer of a :class:`~kgfuse.tasks.config.ModelConfig`: the ``init_from``
    folder's (or, when it has none, that model's text encoder's), else ``text_encoder``'s."""
    from kgfuse.encoders.text import load_tokenizer

    from .config import resolve_path

    if model_cfg.init_from:
        path = resolve_path(model_cfg.init_from, base_dir)
        if (Path(path) / "tokenizer_config.json").is_file():
            return load_tokenizer(str(path))
        from kgfuse.fusion.modeling import KGFusedConfig

        return load_tokenizer(KGFusedConfig.from_pretrained(str(path)).text_encoder_name)
    return load_tokenizer(text_encoder_source(model_cfg.text_encoder, base_dir))


def build_model(model_cfg, graph, *, base_dir: str | os.PathLike | None = None, head: str = "multiple_choice"):
    """The model of a :class:`~kgfuse.tasks.config.ModelConfig` (and its tokenizer).

    ``head`` (:data:`MODEL_HEADS`) is ``"multiple_choice"``
    (:class:`~kgfuse.fusion.KGFusedForMultipleChoice`, fine-tuning), ``"pretraining"``
    (:class:`~kgfuse.fusion.pretraining.KGFusedForPreTraining`: MLM + dEA heads,
    :mod:`kgfuse.tasks.pretrain`) or ``"base"`` (:class:`~kgfuse.fusion.base.KGFusedModel`).
    Every head is built the same way, from the same options.

    ``init_from`` loads a saved kgfuse model folder (pre-trained or fine-tuned, any head):
    on the same graph every weight that fits the head is kept; on another graph only the
    graph-independent ones (text encoder, fusion layers, and the MLM head of a pre-training
    model; see :meth:`~kgfuse.fusion.modeling.KGFusedPreTrainedModel.from_pretrained_on_graph`).
    ``options.text_config`` (a dict) builds a randomly initialised text encoder of that config
    (tests, probes) with the tokenizer of ``text_encoder`` and, unless given, a vocabulary of
    ``len(tokenizer)`` (added tokens included); otherwise the pretrained ``text_encoder`` is
    used. ``lm_only`` sets ``use_graph=False``.

    Returns:
        ``(model, tokenizer)``.
    """
    from .config import resolve_path

    cls = model_class(head)
    opts = dict(model_cfg.options)
    if model_cfg.lm_only:
        opts["use_graph"] = False
    tokenizer = model_tokenizer(model_cfg, base_dir)
    if model_cfg.init_from:
        # A checkpoint trained (or pre-trained) on another graph must not index its node
        # table with this graph's concept ids: only the graph-independent weights carry over.
        path = resolve_path(model_cfg.init_from, base_dir)
        return cls.from_pretrained_on_graph(str(path), graph), tokenizer
    te = model_cfg.text_encoder
    te_path = text_encoder_source(te, base_dir)
    if opts.get("use_graph", True):
        _check_node_dim(opts, te_path)  # before any name embedding or KGE training
    if isinstance(opts.get("node_features"), Mapping):
        opts["node_features"] = kge_node_features(graph, opts["node_features"])
    text_config = opts.pop("text_config", None)
    if text_config is not None:
        from transformers import BertConfig

        tc = dict(text_config)
        tc.setdefault("vocab_size", len(tokenizer))
        features = opts.pop("node_features", None)
        table = None
        if features is not None and not isinstance(features, str):
            table = features.entity_embeddings() if hasattr(features, "entity_embeddings") else features
            opts.update(node_dim=int(table.shape[1]), node_feature_kind="kge")
        model = cls.from_text_config(
            BertConfig(**tc) if "model_type" not in tc else tc,
            num_concepts=graph.num_concepts, num_relations=graph.num_relations, graph_hash=graph.hash,
            text_encoder_name=te, **opts,
        )
        if table is not None and model.config.use_graph:
            import torch

            with torch.no_grad():
                model.node_embeddings.weight.copy_(torch.as_tensor(table, dtype=torch.float32))
    else:
        if opts.get("node_features") == "name" and opts.get("use_graph", True):
            # every concept name embedded once per (graph, encoder weights), like KGE tables
            opts.setdefault("name_embedding_cache", str(default_home() / "cache" / "names"))
        model = cls.from_text_pretrained(te_path, graph=graph, **opts)
    return model, tokenizer


def _check_node_dim(opts: Mapping[str, Any], te_path: Any) -> None:
    """A ``node_dim`` option must match the width of ``node_features`` when these come as a
    table (``name``: the text encoder's hidden size; ``{kge: ..., dim: d}``: ``d``), since
    the table is the node-embedding matrix; checked before the table is computed."""
    nf, given = opts.get("node_features"), opts.get("node_dim")
    if given is None or nf is None or nf == "learned":
        return
    if isinstance(nf, Mapping):
        import inspect

        from kgfuse.kg.embeddings import train_kg_embeddings

        width = int(nf.get("dim", inspect.signature(train_kg_embeddings).parameters["dim"].default))
        what, fix = f"{{kge: {nf.get('kge')}}} gives {width}-dimensional node features (its 'dim')", f"node_features.dim: {given}"
    elif nf == "name":
        tc = opts.get("text_config")
        if tc is not None:
            width = int(dict(tc).get("hidden_size", 0)) or None
        else:
            from transformers import AutoConfig

            from kgfuse.encoders.text import resolve_text_encoder

            width = int(AutoConfig.from_pretrained(resolve_text_encoder(te_path), local_files_only=True).hidden_size)
        if width is None:
            return
        what, fix = f"'name' gives {width}-dimensional node features (the text encoder's width)", None
    else:
        return
    if int(given) != width:
        hint = f"set node_dim: {width}, leave node_dim out" + (f", or set {fix}" if fix else "")
        raise ConfigError(f"model.options.node_dim is {given}, but node_features {what}: {hint}")


def kge_node_features(graph, spec: Mapping[str, Any]):
    """``model.options.node_features: {kge: transe, dim: 100, epochs: 20, ...}``: KG embeddings
    (:func:`kgfuse.kg.embeddings.train_kg_embeddings` with the other keys) trained on ``graph``
    and cached under ``$KGFUSE_HOME/cache/kge`` by graph hash and settings, as the model's
    initial node table."""
    from kgfuse.kg.embeddings import train_kg_embeddings

    spec = dict(spec)
    kind = spec.pop("kge", None)
    if kind is None:
        raise ConfigError("model.options.node_features as a mapping needs 'kge: transe | distmult | rotate'")
    spec.setdefault("cache_dir", str(default_home() / "cache" / "kge"))
    return train_kg_embeddings(graph, model=kind, **spec)


# --------------------------------------------------------------------------------------
# data splits


def load_splits(config: TrainConfig) -> tuple[dict[str, list[MCExample]], dict[str, Any]]:
    """Examples per split (``train``, ``dev``, ``test``) and their load reports.

    Label policies (see :mod:`kgfuse.tasks.datasets`): ``train`` must be labelled (``required``);
    ``dev`` is labelled when any of its records is (``auto``); ``test`` may be unlabelled
    (``optional``: also a SWAG csv without its ``label`` column). In a labelled file a record
    without a label is an error, or with ``data.lenient`` a counted skip.

    Every report (a :class:`~kgfuse.tasks.datasets.LoadReport`) counts the records read,
    loaded, skipped (by reason) and ``used`` (after ``data.max_train``/``data.max_eval``). A
    non-train split left empty is dropped from the examples but keeps its report.
    """
    d = config.data
    policy = {"train": "required", "dev": "auto", "test": "optional"}
    splits: dict[str, list[MCExample]] = {}
    reports: dict[str, Any] = {}
    if d.inhouse_qids:
        if not (d.train and d.dev):
            raise ValueError("data.inhouse_qids needs data.train (official train) and data.dev (official dev)")
        parts = load_csqa_inhouse(config.path(d.train), config.path(d.dev), config.path(d.inhouse_qids), lenient=d.lenient)
        for k, (exs, rep) in parts.items():
            splits[k], reports[k] = exs, rep
    else:
        for k in ("train", "dev", "test"):
            p = getattr(d, k)
            if p:
                exs, rep = load_examples(config.path(p), d.format, lenient=d.lenient, labels=policy[k])
                splits[k], reports[k] = exs, rep
    for k in list(splits):
        limit = d.max_train if k == "train" else d.max_eval
        if limit is not None:
            splits[k] = splits[k][:limit]
        reports[k].used = len(splits[k])
        if not splits[k] and k != "train":
            del splits[k]
    return splits, reports


# --------------------------------------------------------------------------------------
# a whole run


@dataclass
class Run:
    """Everything built from a config (see :func:`build_run`)."""

    config: TrainConfig
    graph: Any
    linker: Any
    retriever: Any
    tokenizer: Any
    model: Any
    collator: Any
    examples: dict[str, list[MCExample]]
    datasets: dict[str, MCFeatureDataset]
    reports: dict[str, Any]
    output_dir: Path
    cache_dir: Path
    t0: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)
    verbalizer: Any = None
    example_retriever: Any = None

    def pipeline_info(self) -> dict[str, Any]:
        """The pipeline description saved next to the model (see :data:`PIPELINE_FILE`)."""
        return pipeline_info(self.config, self.graph, self.linker, self.retriever, self.verbalizer,
                             self.example_retriever)

    def export_extra(self, model_dir: Path) -> None:
        write_pipeline_files(model_dir, self.tokenizer, self.pipeline_info(), example_retriever=self.example_retriever)


def pipeline_info(config: TrainConfig, graph, linker, retriever, verbalizer=None, example_retriever=None) -> dict[str, Any]:
    """What inference needs to rebuild a run's input: graph, linker, retriever, ``max_length``,
    and ``knowledge_text`` (``None`` when off; else the resolved section as ``options``, the
    verbaliser's ``config``, which names the template table and definition source, and the
    retrieved examples' ``config`` with their content hash, or ``None``)."""
    c = config.resolved()
    ret_opts = dict(config.retriever)
    kt = None
    if c.knowledge_text.enabled:
        kt = {"options": dataclasses.asdict(c.knowledge_text),
              "config": verbalizer.config if verbalizer is not None else None,
              "examples": example_retriever.config if example_retriever is not None else None}
    return {
        "format": "kgfuse-pipeline-v1",
        "graph": {"path": c.graph.path, "format": c.graph.format, "options": c.graph.options, "hash": graph.hash,
                  "num_concepts": graph.num_concepts, "num_relations": graph.num_relations},
        "linker": {"options": dict(config.linker), "config": linker.config if linker is not None else None},
        "retriever": {"options": ret_opts, "config": retriever.config if retriever is not None else None,
                      "text_encoder": config.model.text_encoder},
        "max_length": config.train.max_length,
        "lm_only": config.model.lm_only,
        "graph_input": config.model.graph_input,
        "data_format": config.data.format,
        "knowledge_text": kt,
    }


def write_pipeline_files(model_dir: str | os.PathLike, tokenizer: Any, info: Mapping[str, Any], *,
                         example_retriever: Any = None) -> None:
    """Add the tokenizer and :data:`PIPELINE_FILE` (and the retrievable examples of
    ``knowledge_text.examples``, :data:`~kgfuse.tasks.retrieved_examples.EXAMPLES_FILE`) to a
    saved model folder."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if example_retriever is not None:
        from .retrieved_examples import EXAMPLES_FILE

        example_retriever.save(model_dir / EXAMPLES_FILE)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(model_dir))
    (model_dir / PIPELINE_FILE).write_text(json.dumps(info, indent=1, sort_keys=True))
    from kgfuse.integrity import MODEL_MANIFEST, write_model_manifest

    if (model_dir / MODEL_MANIFEST).is_file():  # a folder from save_pretrained: record the new files too
        write_model_manifest(model_dir)


def default_output_dir(config: TrainConfig) -> Path:
    h = hashlib.sha256(json.dumps(config.resolved().to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:12]
    return default_home() / "runs" / h


def apply_node_vocab(model, node_vocab: str, datasets: Mapping[str, Any]) -> int:
    """``model.node_vocab`` (:class:`~kgfuse.tasks.config.ModelConfig`): restrict the node
    table to the concepts of the training split's subgraphs. Returns the vocabulary size."""
    if node_vocab != "train":
        raise ConfigError(f"model.node_vocab must be null or 'train', not {node_vocab!r}")
    train = datasets.get("train")
    if train is None or not hasattr(train, "pre"):
        raise ConfigError("model.node_vocab='train' needs a train split with subgraphs (and model.lm_only false)")
    return model.restrict_node_table(train.pre.concepts())


def build_run(config: TrainConfig, *, progress: bool = True, log: Callable[[str], None] | None = None) -> Run:
    """Load the data and graph, build linker, retriever and model, preprocess every split.

    With ``progress``, what was built is reported through ``log`` (default: the
    ``kgfuse.tasks.pipeline`` logger at INFO level).
    """
    log = log if log is not None else logger.info
    from .features import MultipleChoiceCollator
    from .graph_input import graph_input_view

    t0 = time.time()
    timings: dict[str, float] = {}
    out = config.path(config.output_dir) if config.output_dir else default_output_dir(config)
    cache = config.path(config.cache_dir) if config.cache_dir else default_home() / "cache"
    splits, reports = load_splits(config)
    if "train" not in splits or not splits["train"]:
        raise ValueError("no training examples: set data.train")
    t = time.time()
    graph = load_graph(config.graph, config.base_dir)
    timings["graph"] = time.time() - t
    if progress:
        log(f"graph: {graph.num_concepts} concepts, {graph.num_relations} relations, {graph.num_edges} edges ({timings['graph']:.1f}s)")
    # The model's random initialisation (node table, GNN, fusion layers, head, a text encoder
    # built from a config) must depend on the run's seed only, not on what this process drew
    # before: seed every generator right before building it.
    from accelerate.utils import set_seed

    set_seed(config.train.seed)
    model, tokenizer = build_model(config.model, graph, base_dir=config.base_dir)
    lm_only = config.model.lm_only
    text_only = lm_only or config.model.graph_input == "none"
    linker = retriever = None
    # knowledge as text needs linking and retrieval even when the model gets no graph
    verbalizer = build_verbalizer(graph, config.knowledge_text, tokenizer, base_dir=config.base_dir)
    example_retriever = None
    if verbalizer is not None and config.knowledge_text.examples:
        from .retrieved_examples import build_example_retriever

        example_retriever = build_example_retriever(splits["train"], config.knowledge_text.examples)
    datasets: dict[str, MCFeatureDataset] = {}
    t = time.time()
    if text_only and verbalizer is None:
        for k, exs in splits.items():
            datasets[k] = TextOnlyDataset(exs, tokenizer, max_length=config.train.max_length)
    else:
        linker = build_linker(graph, config.linker)
        retriever = build_retriever(graph, config.retriever, text_encoder=config.model.text_encoder, cache_dir=cache)
        for k, exs in splits.items():
            full = preprocess(exs, graph, linker, retriever, cache, num_workers=config.data.preprocess_workers, progress=progress)
            pre = full if text_only else graph_input_view(full, config.model.graph_input)
            datasets[k] = MCFeatureDataset(exs, pre, tokenizer, max_length=config.train.max_length, verbalizer=verbalizer,
                                           knowledge_pre=full if pre is not full else None, graph_inputs=not text_only,
                                           example_retriever=example_retriever)
        if verbalizer is not None and progress:
            log(f"knowledge text: {verbalizer!r}" + (f", {example_retriever!r}" if example_retriever is not None else ""))
        if config.model.node_vocab is not None and not text_only:
            n = apply_node_vocab(model, config.model.node_vocab, datasets)
            if progress:
                log(f"node table: {n} concepts of the training subgraphs (of {graph.num_concepts}, "
                    f"{n / max(1, graph.num_concepts):.1%}) have their own row")
    timings["preprocess"] = time.time() - t
    if progress:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in splits.items())
        log(f"data: {sizes}; preprocessing {timings['preprocess']:.1f}s")
        for k, r in reports.items():
            if getattr(r, "skipped", 0):
                log(f"  {r}")
    collator = MultipleChoiceCollator(tokenizer, max_length=config.train.max_length)
    return Run(config=config, graph=graph, linker=linker, retriever=retriever, tokenizer=tokenizer, model=model,
               collator=collator, examples=splits, datasets=datasets, reports=reports, output_dir=out, cache_dir=cache,
               t0=t0, timings=timings, verbalizer=verbalizer, example_retriever=example_retriever)


def export_model(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a saved model folder to ``dst`` atomically (temp folder + rename)."""
    src, dst = Path(src), Path(dst)
    tmp = dst.parent / f".tmp-{dst.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    return dst
