r"""ERNIE knowledgeable pre-training: ``kgfuse pretrain`` and :func:`pretrain`.

Continued pre-training of the fused model's text encoder, graph encoder and fusion layers
on any text corpus (:mod:`kgfuse.kg.corpora`: plain text, jsonl, WordNet glosses,
OpenBookQA facts), linked to a knowledge graph with the project's
:class:`~kgfuse.kg.linking.EntityLinker`. Objectives (Zhang et al., ERNIE, ACL 2019):

- **MLM** (Devlin et al., 2019): ``mlm_probability`` (15%) of the non-special tokens are
  selected; of those 80% become ``[MASK]``, 10% a random token, 10% stay; the model
  predicts the original token at every selected position.
- **dEA** (denoising entity auto-encoder): each token-entity alignment (the first sub-token
  of a mention and the mention's concept) is, independently, replaced by a random entity of
  the graph with probability ``dea_replace`` (5%), removed (the token gets no entity; the
  entity is dropped from the input when no other token mentions it) with probability
  ``dea_mask`` (15%), and kept otherwise (80%). From the final state of each aligned token
  the model predicts its original entity among the sequence's entities (softmax over the
  candidates; see :mod:`kgfuse.fusion.pretraining`). With ``dea_predict="all"`` (ERNIE)
  every alignment is supervised, with ``"corrupted"`` only the replaced and removed ones.

Loss: ``mlm_weight * L_mlm + dea_weight * L_dEA``. A slice of the corpus, chosen by a hash
of each record id (``data.eval_fraction``, at most ``data.max_eval`` records), is held out;
MLM loss and dEA accuracy on it (overall, and separately on kept / removed / replaced
alignments, next to the chance level ``mean(1 / #candidates)``) are measured every
``data.eval_every`` steps and at the end.

Output folder: ``model/`` (the pre-trained model with its tokenizer: give it to
``kgfuse train`` as ``model.init_from``), ``metrics.json``, ``report.md``, ``curves.png``
(MLM loss and dEA accuracy), ``log.jsonl``, ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from .config import ConfigError, GraphConfig, _check_type, ModelConfig, OptimConfig, apply_overrides, default_home, read_config_file, resolve_path

__all__ = [
    "ObjectiveConfig",
    "PretrainDataConfig",
    "PretrainConfig",
    "load_pretrain_config",
    "LinkedTextDataset",
    "PretrainingCollator",
    "load_pretrain_graph",
    "PretrainResult",
    "pretrain",
    "LinkedCorpus",
    "LinkedFeatureDataset",
    "link_corpus",
    "tokenizer_fingerprint",
]

logger = logging.getLogger(__name__)

_NODE_TYPE_TEXT = 0  # nodes of pre-training sequences are typed like question concepts
KIND_KEPT, KIND_MASKED, KIND_REPLACED = 0, 1, 2
_KIND_NAMES = {KIND_KEPT: "kept", KIND_MASKED: "masked", KIND_REPLACED: "replaced"}


# --------------------------------------------------------------------------------------
# configuration


@dataclass
class ObjectiveConfig:
    """The pre-training objectives (section ``objective``).

    Args:
        mlm_probability: share of non-special tokens selected for MLM (BERT: 0.15).
        mlm_mask, mlm_random: of the selected tokens, the share replaced by ``[MASK]`` (0.8)
            and by a random token (0.1); the rest are left unchanged.
        dea_replace: share of alignments whose entity is replaced by a random entity (ERNIE: 0.05).
        dea_mask: share of alignments removed (ERNIE: 0.15); the rest (0.8) are kept.
        dea_predict: ``"all"`` alignments are supervised (ERNIE) or only the ``"corrupted"`` ones.
        mlm_weight, dea_weight: loss weights (0 switches an objective off).
    """

    mlm_probability: float = 0.15
    mlm_mask: float = 0.8
    mlm_random: float = 0.1
    dea_replace: float = 0.05
    dea_mask: float = 0.15
    dea_predict: str = "all"
    mlm_weight: float = 1.0
    dea_weight: float = 1.0

    def validate(self, source: str = "objective") -> None:
        for k in ("mlm_probability", "mlm_mask", "mlm_random", "dea_replace", "dea_mask"):
            v = getattr(self, k)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{source}.{k} must be in [0, 1], got {v}")
        if self.mlm_mask + self.mlm_random > 1.0:
            raise ConfigError(f"{source}: mlm_mask + mlm_random must be <= 1, got {self.mlm_mask + self.mlm_random}")
        if self.dea_replace + self.dea_mask > 1.0:
            raise ConfigError(f"{source}: dea_replace + dea_mask must be <= 1, got {self.dea_replace + self.dea_mask}")
        if self.dea_predict not in ("all", "corrupted"):
            raise ConfigError(f"{source}.dea_predict must be 'all' or 'corrupted', not {self.dea_predict!r}")
        if self.mlm_weight < 0 or self.dea_weight < 0 or self.mlm_weight + self.dea_weight == 0:
            raise ConfigError(f"{source}: loss weights must be >= 0 and not both 0")


@dataclass
class PretrainDataConfig:
    """Held-out split and streaming (section ``data``).

    Args:
        eval_fraction: share of records held out (by a hash of the record id).
        max_eval: at most this many held-out records are evaluated.
        eval_every: evaluate every this many optimiser steps (0: only at the end).
        shuffle_buffer: records shuffled within a buffer of this size (streaming shuffle).
        min_entities: skip sequences with fewer aligned entities (counted in the report).
        linked: a :class:`LinkedCorpus` file (``kgfuse pretrain --link-only``) to train on
            instead of linking ``corpus`` on the fly: no spaCy needed at training time.
    """

    eval_fraction: float = 0.02
    max_eval: int = 256
    eval_every: int = 100
    shuffle_buffer: int = 10000
    min_entities: int = 0
    linked: str | None = None


@dataclass
class PretrainConfig:
    """Everything a pre-training run needs; maps 1:1 onto a YAML/TOML file::

        corpus:    [{type: wordnet_glosses, limit: 5000}]   # kgfuse.kg.corpora specs
        graph:     {format: wordnet}                        # or a compiled/ConceptNet/triples graph
        linker:    {max_words: 4}
        model:     {text_encoder: all-MiniLM-L6-v2, options: {num_fusion_layers: 2}}
        objective: {dea_replace: 0.05, dea_mask: 0.15, mlm_weight: 1.0, dea_weight: 1.0}
        data:      {eval_fraction: 0.02, max_eval: 256, eval_every: 100}
        train:     {batch_size: 16, max_steps: 500, lr_lm: 2.0e-5, lr_fusion: 1.0e-3, max_length: 64}
        output_dir: runs/pretrain
    """

    corpus: list[Any] = field(default_factory=list)
    graph: GraphConfig = field(default_factory=GraphConfig)
    linker: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    train: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=1, batch_size=16, lr_lm=2e-5))
    output_dir: str | None = None
    cache_dir: str | None = None
    base_dir: str | None = None

    _SECTIONS = {"graph": GraphConfig, "model": ModelConfig, "objective": ObjectiveConfig,
                 "data": PretrainDataConfig, "train": OptimConfig}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: str | os.PathLike | None = None,
                  source: str = "<dict>") -> "PretrainConfig":
        d = dict(d)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in d if k not in fields]
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r}; valid keys: {sorted(fields - {'base_dir'})}")
        kw: dict[str, Any] = {}
        for k, v in d.items():
            sec = cls._SECTIONS.get(k)
            if sec is not None:
                if v is None:
                    v = {}
                if not isinstance(v, Mapping):
                    raise ConfigError(f"{source}: {k} must be a mapping, got {type(v).__name__}")
                kw[k] = _section(sec, dict(v), source, k, default=cls().train if k == "train" else None)
            elif k == "corpus":
                if isinstance(v, (str, Mapping)):
                    v = [v]
                if not isinstance(v, list) or not all(isinstance(x, (str, Mapping)) for x in v):
                    raise ConfigError(f"{source}: corpus must be a list of corpus specs (mappings with 'type') or paths")
                kw[k] = [dict(x) if isinstance(x, Mapping) else x for x in v]
            elif k == "linker":
                if v is not None and not isinstance(v, Mapping):
                    raise ConfigError(f"{source}: linker must be a mapping")
                kw[k] = dict(v or {})
            else:
                if v is not None and not isinstance(v, str):
                    raise ConfigError(f"{source}: {k} must be a string path, got {v!r}")
                kw[k] = v
        if base_dir is not None and "base_dir" not in d:
            kw["base_dir"] = str(base_dir)
        cfg = cls(**kw)
        cfg.objective.validate(f"{source}: objective")
        if not 0.0 <= cfg.data.eval_fraction < 1.0:
            raise ConfigError(f"{source}: data.eval_fraction must be in [0, 1), got {cfg.data.eval_fraction}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def path(self, value: str | None) -> Path | None:
        return resolve_path(value, self.base_dir)

    def with_overrides(self, overrides: Sequence[str]) -> "PretrainConfig":
        return PretrainConfig.from_dict(apply_overrides(self.to_dict(), overrides), base_dir=self.base_dir,
                                        source="overrides")


def _section(cls: type, d: dict[str, Any], source: str, name: str, default: Any = None) -> Any:
    """One section of the config, type-checked with the training config's rules."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in d if k not in fields]
    if unknown:
        raise ConfigError(f"{source}: unknown key {name}.{unknown[0]}; valid keys: {sorted(fields)}")
    base = dataclasses.asdict(default) if default is not None else {}
    base.update(d)
    return cls(**{k: _check_type(cls, fields[k], v, source, f"{name}.") for k, v in base.items()})


def load_pretrain_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> PretrainConfig:
    """Read a YAML/TOML pre-training config and apply ``section.key=value`` overrides;
    relative paths resolve against the file's folder."""
    path = Path(path).expanduser().resolve()
    d = apply_overrides(read_config_file(path), overrides)
    d.pop("base_dir", None)
    return PretrainConfig.from_dict(d, base_dir=path.parent, source=str(path))


# --------------------------------------------------------------------------------------
# graph and model


def load_pretrain_graph(cfg: GraphConfig, base_dir: str | os.PathLike | None = None):
    """The graph of a pre-training run, through the one resolver of every route
    (:func:`kgfuse.tasks.pipeline.load_graph`); ``format: wordnet`` with no ``path`` reads
    Debian's WordNet folder."""
    from .pipeline import load_graph

    return load_graph(cfg, base_dir)


# --------------------------------------------------------------------------------------
# data


def held_out(record_id: str, fraction: float) -> bool:
    """Whether a record belongs to the held-out slice: a pure function of its id."""
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.sha1(record_id.encode("utf-8")).digest()[:8], "big")
    return h / 2.0**64 < fraction


@dataclass
class LinkingStats:
    """Counts of what happened to records and mentions (reported, not silent)."""

    records: int = 0
    sequences: int = 0
    too_few_entities: int = 0
    mentions: int = 0
    aligned: int = 0
    truncated: int = 0
    shared_token: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def link_and_tokenise(text: str, linker, tokenizer, max_length: int, stats: LinkingStats | None = None) -> dict[str, Any]:
    """Features of one text: token ids (with special tokens, truncated to ``max_length``),
    ``entity_concepts`` (distinct linked concepts that kept an aligned token, in order of
    first mention) and ``entity_local`` (per token: index into ``entity_concepts`` or -1).

    Each mention is aligned to its first sub-token (:func:`kgfuse.tasks.features.align_mentions`).
    """
    from .features import AlignmentStats, align_mentions

    mentions = linker.link(text)
    enc = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    c2n: dict[int, int] = {}
    for m in mentions:
        c2n.setdefault(int(m.concept), len(c2n))
    ast = AlignmentStats()
    local = align_mentions(enc["offset_mapping"], enc.sequence_ids(), mentions, c2n, ast)
    # keep only concepts some token is aligned to (others were truncated away); renumber
    order: dict[int, int] = {}
    for x in local:
        if x >= 0 and x not in order:
            order[x] = len(order)
    inv = {v: k for k, v in c2n.items()}
    concepts = [0] * len(order)
    for old, new in order.items():
        concepts[new] = inv[old]
    if stats is not None:
        stats.mentions += len(mentions)
        stats.aligned += ast.aligned
        stats.truncated += ast.truncated
        stats.shared_token += ast.shared_token
    feat = {
        "input_ids": list(enc["input_ids"]),
        "attention_mask": list(enc["attention_mask"]),
        "entity_concepts": concepts,
        "entity_local": [order[x] if x >= 0 else -1 for x in local],
    }
    if "token_type_ids" in enc:
        feat["token_type_ids"] = list(enc["token_type_ids"])
    return feat


class LinkedTextDataset(IterableDataset):
    """A corpus streamed, linked and tokenised on the fly.

    Args:
        corpus: corpus specs (:func:`kgfuse.kg.corpora.open_corpus`).
        linker: an :class:`~kgfuse.kg.linking.EntityLinker` on the graph.
        tokenizer: a fast tokenizer.
        max_length: tokens per sequence (truncation).
        split: ``"train"`` (records not held out), ``"eval"`` (held out) or ``"all"``.
        eval_fraction: see :func:`held_out`.
        shuffle_buffer: streaming shuffle buffer (0: corpus order); the order is a function of
            ``(seed, epoch)`` (call :meth:`set_epoch`).
        min_entities: sequences with fewer aligned entities are skipped.
        base_dir: folder relative corpus paths resolve against.
        limit: stop after this many sequences.
    """

    def __init__(self, corpus: Sequence[Any], linker, tokenizer, *, max_length: int = 64, split: str = "train",
                 eval_fraction: float = 0.0, shuffle_buffer: int = 0, min_entities: int = 0, seed: int = 0,
                 base_dir: str | os.PathLike | None = None, limit: int | None = None) -> None:
        if split not in ("train", "eval", "all"):
            raise ValueError(f"split must be train, eval or all, not {split!r}")
        self.corpus = list(corpus)
        self.linker = linker
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.split = split
        self.eval_fraction = float(eval_fraction)
        self.shuffle_buffer = int(shuffle_buffer)
        self.min_entities = int(min_entities)
        self.seed = int(seed)
        self.base_dir = base_dir
        self.limit = limit
        self.epoch = 0
        self.stats = LinkingStats()
        self.reports: list[Any] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def records(self) -> Iterator[Any]:
        from kgfuse.kg.corpora import iter_corpora

        self.reports = []
        for rec in iter_corpora(self.corpus, base_dir=self.base_dir, reports=self.reports):
            if self.split == "all" or held_out(rec.id, self.eval_fraction) == (self.split == "eval"):
                yield rec

    def _shuffled(self, it: Iterator[Any]) -> Iterator[Any]:
        if self.shuffle_buffer <= 1:
            yield from it
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        buf: list[Any] = []
        for x in it:
            if len(buf) < self.shuffle_buffer:
                buf.append(x)
                continue
            j = int(rng.integers(len(buf)))
            yield buf[j]
            buf[j] = x
        rng.shuffle(buf)
        yield from buf

    def __iter__(self) -> Iterator[dict[str, Any]]:
        n = 0
        for rec in self._shuffled(self.records()):
            self.stats.records += 1
            feat = link_and_tokenise(rec.text, self.linker, self.tokenizer, self.max_length, self.stats)
            if len(feat["entity_concepts"]) < self.min_entities:
                self.stats.too_few_entities += 1
                continue
            feat["id"] = rec.id
            self.stats.sequences += 1
            yield feat
            n += 1
            if self.limit is not None and n >= self.limit:
                return


LINKED_FORMAT = "kgfuse-linked-corpus"
LINKED_VERSION = 1


def tokenizer_fingerprint(tokenizer) -> str:
    """Content hash of a tokenizer's vocabulary and special tokens (linked features are only
    valid for the tokenizer that made them)."""
    h = hashlib.sha256()
    for tok, i in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        h.update(f"{i}\t{tok}\n".encode("utf-8"))
    h.update(json.dumps(sorted((k, str(v)) for k, v in tokenizer.special_tokens_map.items())).encode("utf-8"))
    return h.hexdigest()[:16]


@dataclass
class LinkedCorpus:
    """A pre-training corpus linked and tokenised once (train and held-out features).

    Linking needs spaCy; training from a :class:`LinkedCorpus` does not. Make it where spaCy
    runs (:func:`link_corpus`, then :meth:`save`), train where the GPU is
    (``pretrain(config, linked=path)`` or ``data.linked: path`` in the config). The file
    records what the features depend on (graph hash, tokenizer fingerprint, max length,
    linker, corpus specs, held-out split), and :meth:`check` refuses a mismatch.

    File format: gzip'd JSON lines; line 1 is the header (``meta``), then one feature record
    per line with ``"split": "train" | "eval"``.
    """

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        import gzip

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            f.write(json.dumps({"format": LINKED_FORMAT, "version": LINKED_VERSION, **self.meta,
                                "num_train": len(self.train), "num_eval": len(self.eval)}) + "\n")
            for split, feats in (("train", self.train), ("eval", self.eval)):
                for ft in feats:
                    f.write(json.dumps({"split": split, **ft}, separators=(",", ":")) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LinkedCorpus":
        import gzip

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: linked corpus not found")
        train: list[dict[str, Any]] = []
        ev: list[dict[str, Any]] = []
        with gzip.open(path, "rt", encoding="utf-8") as f:
            try:
                meta = json.loads(f.readline())
            except (json.JSONDecodeError, OSError, EOFError) as e:
                raise ValueError(f"{path}:1: not a linked corpus header ({e})") from e
            if not isinstance(meta, dict) or meta.get("format") != LINKED_FORMAT:
                raise ValueError(f"{path}:1: field 'format' must be {LINKED_FORMAT!r}")
            if meta.get("version") != LINKED_VERSION:
                raise ValueError(f"{path}:1: field 'version' is {meta.get('version')!r}; this kgfuse reads "
                                 f"version {LINKED_VERSION} (re-link the corpus)")
            for no, line in enumerate(f, start=2):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{no}: invalid JSON ({e.msg})") from e
                for k in ("split", "input_ids", "attention_mask", "entity_concepts", "entity_local"):
                    if k not in rec:
                        raise ValueError(f"{path}:{no}: field {k!r} missing")
                if len(rec["entity_local"]) != len(rec["input_ids"]):
                    raise ValueError(f"{path}:{no}: field 'entity_local' has {len(rec['entity_local'])} entries for "
                                     f"{len(rec['input_ids'])} tokens")
                split = rec.pop("split")
                if split not in ("train", "eval"):
                    raise ValueError(f"{path}:{no}: field 'split' must be 'train' or 'eval', not {split!r}")
                (train if split == "train" else ev).append(rec)
        for k, got in (("num_train", len(train)), ("num_eval", len(ev))):
            if meta.get(k) != got:
                raise ValueError(f"{path}: header field {k!r} says {meta.get(k)} records, the file has {got} (truncated?)")
        for k in ("format", "version", "num_train", "num_eval"):
            meta.pop(k, None)
        return cls(train, ev, meta)

    def check(self, graph, tokenizer, max_length: int, source: str = "linked corpus") -> None:
        """Raise ``ValueError`` unless these features fit ``graph``, ``tokenizer`` and ``max_length``."""
        m = self.meta
        if m.get("graph_hash") != graph.hash:
            raise ValueError(f"{source}: linked to graph {str(m.get('graph_hash'))[:12]}, not to this graph "
                             f"({graph.hash[:12]}): concept ids would mean other things; re-link")
        fp = tokenizer_fingerprint(tokenizer)
        if m.get("tokenizer") != fp:
            raise ValueError(f"{source}: tokenised with tokenizer {m.get('tokenizer')}, not this one ({fp}); re-link")
        if int(m.get("max_length", -1)) != int(max_length):
            raise ValueError(f"{source}: tokenised with max_length {m.get('max_length')}, the run uses {max_length}")
        n = graph.num_concepts
        for split, feats in (("train", self.train), ("eval", self.eval)):
            for i, ft in enumerate(feats):
                bad = [c for c in ft["entity_concepts"] if not 0 <= int(c) < n]
                if bad:
                    raise ValueError(f"{source}: {split} record {i} ({ft.get('id')}): concept id {bad[0]} outside the graph's {n}")


def link_corpus(config: "PretrainConfig", *, graph=None, tokenizer=None, progress: bool = True,
                log: Callable[[str], None] | None = None) -> LinkedCorpus:
    """Link and tokenise ``config.corpus`` once, as :func:`pretrain` would on the fly: the
    training records (corpus order; :func:`pretrain` shuffles them per epoch) and at most
    ``data.max_eval`` held-out records, with the linking statistics and corpus reports."""
    from .pipeline import build_linker

    if not config.corpus:
        raise ConfigError("corpus is empty: give at least one corpus spec (e.g. {type: wordnet_glosses})")
    t0 = time.time()
    if graph is None:
        graph = load_pretrain_graph(config.graph, config.base_dir)
    if tokenizer is None:
        from .pipeline import model_tokenizer

        tokenizer = model_tokenizer(config.model, config.base_dir)
    linker = build_linker(graph, config.linker)
    opt, dc = config.train, config.data
    train_ds, eval_ds = _linked_text_datasets(config, linker, tokenizer, shuffle_buffer=0)
    train = list(train_ds)
    ev = list(eval_ds) if dc.eval_fraction > 0 and dc.max_eval > 0 else []
    meta = {
        "graph_hash": graph.hash, "tokenizer": tokenizer_fingerprint(tokenizer), "max_length": opt.max_length,
        "linker": linker.config, "corpus": config.corpus, "eval_fraction": dc.eval_fraction, "max_eval": dc.max_eval,
        "min_entities": dc.min_entities, "train_linking": train_ds.stats.to_dict(), "eval_linking": eval_ds.stats.to_dict(),
        "corpus_reports": [r.to_dict() for r in train_ds.reports], "seconds": round(time.time() - t0, 2),
    }
    if progress:
        (log or logger.info)(f"linked corpus: {len(train)} training and {len(ev)} held-out sequences, "
            f"{train_ds.stats.mentions} mentions ({time.time() - t0:.1f}s)")
    return LinkedCorpus(train, ev, meta)


def _linked_text_datasets(config: "PretrainConfig", linker, tokenizer, *, shuffle_buffer: int):
    """The training and held-out :class:`LinkedTextDataset` of a run's corpus."""
    opt, dc = config.train, config.data
    common = dict(max_length=opt.max_length, eval_fraction=dc.eval_fraction, min_entities=dc.min_entities,
                  seed=opt.seed, base_dir=config.base_dir)
    return (LinkedTextDataset(config.corpus, linker, tokenizer, split="train", shuffle_buffer=shuffle_buffer, **common),
            LinkedTextDataset(config.corpus, linker, tokenizer, split="eval", limit=dc.max_eval, **common))


class LinkedFeatureDataset(IterableDataset):
    """Training sequences of a :class:`LinkedCorpus`, reshuffled every epoch (a permutation
    seeded by ``(seed, epoch)``; ``shuffle=False`` keeps the stored order)."""

    def __init__(self, features: Sequence[Mapping[str, Any]], *, shuffle: bool = True, seed: int = 0,
                 stats: Mapping[str, int] | None = None, reports: Sequence[Any] = ()) -> None:
        self.features = list(features)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0
        self.stats = LinkingStats(**dict(stats or {}))
        self.reports = list(reports)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def records(self) -> Iterator[Mapping[str, Any]]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        order = np.arange(len(self.features))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.features))
        for i in order:
            yield dict(self.features[int(i)])


class PretrainingCollator:
    """Batch linked sequences, applying MLM masking and dEA corruption.

    Args:
        tokenizer: the tokenizer (``mask_token_id``, ``pad_token_id``, special-token mask).
        graph: the :class:`~kgfuse.kg.KnowledgeGraph` (random entities; induced edges).
        objective: masking proportions.
        seed: the random stream; :meth:`reset` restarts it (used for a fixed eval masking).
        pad_to_multiple_of: pad the sequence length to a multiple of this.

    Each sequence's input graph holds the concepts still aligned after corruption (kept and
    random replacement entities) with the graph's edges among them. Returns the model
    inputs (``input_ids`` ``[S, L]``, ``attention_mask``, ``token_type_ids``, ``entity_index``,
    ``node_concept_ids``, ``node_type``, ``node_batch``, ``edge_index``, ``edge_type``) and
    targets (``mlm_labels`` ``[S, L]``, ``dea_token``, ``dea_candidates``,
    ``dea_candidate_batch``, ``dea_target``) plus ``dea_kind`` ``[A]`` (0 kept, 1 removed,
    2 replaced; for metrics only).
    """

    def __init__(self, tokenizer, graph, objective: ObjectiveConfig | None = None, *, seed: int = 0,
                 pad_to_multiple_of: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.graph = graph
        self.objective = objective if objective is not None else ObjectiveConfig()
        self.seed = int(seed)
        self.pad_to_multiple_of = pad_to_multiple_of
        if tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token; MLM needs one")
        self.vocab_size = len(tokenizer)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(self.seed if seed is None else seed)

    # ---------------------------------------------------------------- MLM
    def mask_tokens(self, ids: list[int]) -> tuple[list[int], list[int]]:
        """BERT masking of one sequence: ``(corrupted ids, labels with -100 where unselected)``."""
        ob = self.objective
        special = self.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
        ids = list(ids)
        labels = [-100] * len(ids)
        if ob.mlm_weight == 0 or ob.mlm_probability == 0:
            return ids, labels
        u = self.rng.random(len(ids))
        v = self.rng.random(len(ids))
        rnd = self.rng.integers(0, self.vocab_size, len(ids))
        for t in range(len(ids)):
            if special[t] or u[t] >= ob.mlm_probability:
                continue
            labels[t] = ids[t]
            if v[t] < ob.mlm_mask:
                ids[t] = self.tokenizer.mask_token_id
            elif v[t] < ob.mlm_mask + ob.mlm_random:
                ids[t] = int(rnd[t])
        return ids, labels

    # ---------------------------------------------------------------- dEA
    def corrupt_entities(self, entity_local: Sequence[int], concepts: Sequence[int]) -> tuple[list[int], list[int], list[tuple[int, int, int]]]:
        """dEA corruption of one sequence.

        Returns ``(input entity_local, input node concepts, alignments)``: the per-token local
        node index into the input node list (``-1`` for none), the concept id of each input
        node, and per original alignment ``(token, target index into concepts, kind)``.
        """
        ob = self.objective
        nodes: list[int] = []
        node_of: dict[int, int] = {}

        def node(c: int) -> int:
            i = node_of.get(c)
            if i is None:
                i = node_of[c] = len(nodes)
                nodes.append(c)
            return i

        out = [-1] * len(entity_local)
        aligns: list[tuple[int, int, int]] = []
        positions = [t for t, x in enumerate(entity_local) if x >= 0]
        u = self.rng.random(len(positions))
        n_c = self.graph.num_concepts
        for t, uu in zip(positions, u):
            target = int(entity_local[t])
            c = int(concepts[target])
            if uu < ob.dea_replace and n_c > 1:
                r = int(self.rng.integers(0, n_c - 1))
                r = r + 1 if r >= c else r  # uniform over the other concepts
                out[t] = node(r)
                kind = KIND_REPLACED
            elif uu < ob.dea_replace + ob.dea_mask:
                kind = KIND_MASKED
            else:
                out[t] = node(c)
                kind = KIND_KEPT
            aligns.append((t, target, kind))
        return out, nodes, aligns

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("PretrainingCollator got an empty batch")
        ob = self.objective
        S = len(features)
        L = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            L = (L + m - 1) // m * m
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((S, L), pad, dtype=torch.long)
        attention_mask = torch.zeros((S, L), dtype=torch.long)
        token_type_ids = torch.zeros((S, L), dtype=torch.long)
        mlm_labels = torch.full((S, L), -100, dtype=torch.long)
        entity_index = torch.full((S, L), -1, dtype=torch.long)
        node_c: list[int] = []
        node_b: list[int] = []
        e_src: list[np.ndarray] = []
        e_dst: list[np.ndarray] = []
        e_rel: list[np.ndarray] = []
        dea_token: list[int] = []
        dea_target: list[int] = []
        dea_kind: list[int] = []
        cand: list[int] = []
        cand_b: list[int] = []
        use_dea = ob.dea_weight > 0
        for s, f in enumerate(features):
            n = len(f["input_ids"])
            ids, labels = self.mask_tokens(f["input_ids"])
            input_ids[s, :n] = torch.tensor(ids)
            mlm_labels[s, :n] = torch.tensor(labels)
            attention_mask[s, :n] = torch.tensor(f["attention_mask"])
            if "token_type_ids" in f:
                token_type_ids[s, :n] = torch.tensor(f["token_type_ids"])
            concepts = [int(c) for c in f.get("entity_concepts", [])]
            local = f.get("entity_local", [-1] * n)
            if use_dea:
                ent_in, nodes, aligns = self.corrupt_entities(local, concepts)
            else:
                ent_in, nodes, aligns = list(local), concepts, []
            off = len(node_c)
            entity_index[s, :n] = torch.tensor([x + off if x >= 0 else -1 for x in ent_in], dtype=torch.long)
            node_c.extend(nodes)
            node_b.extend([s] * len(nodes))
            if nodes:
                arr = np.asarray(nodes, dtype=np.int64)
                eids = self.graph.induced_edges(arr)
                if eids.size:
                    lookup = {c: i for i, c in enumerate(nodes)}
                    e_src.append(np.fromiter((lookup[int(c)] + off for c in self.graph.head[eids]), np.int64, eids.size))
                    e_dst.append(np.fromiter((lookup[int(c)] + off for c in self.graph.tail[eids]), np.int64, eids.size))
                    e_rel.append(np.asarray(self.graph.relation[eids], dtype=np.int64))
            c_off = len(cand)
            cand.extend(concepts)
            cand_b.extend([s] * len(concepts))
            for t, target, kind in aligns:
                if ob.dea_predict == "corrupted" and kind == KIND_KEPT:
                    continue
                dea_token.append(s * L + t)
                dea_target.append(c_off + target)
                dea_kind.append(kind)
        long = lambda x: torch.as_tensor(np.asarray(x, dtype=np.int64))  # noqa: E731
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "entity_index": entity_index,
            "node_concept_ids": long(node_c),
            "node_type": torch.full((len(node_c),), _NODE_TYPE_TEXT, dtype=torch.long),
            "node_batch": long(node_b),
            "edge_index": torch.stack((long(np.concatenate(e_src)), long(np.concatenate(e_dst)))) if e_src
            else torch.zeros(2, 0, dtype=torch.long),
            "edge_type": long(np.concatenate(e_rel)) if e_rel else torch.zeros(0, dtype=torch.long),
            "mlm_labels": mlm_labels,
        }
        if use_dea:
            batch.update(dea_token=long(dea_token), dea_target=long(dea_target), dea_kind=long(dea_kind),
                         dea_candidates=long(cand), dea_candidate_batch=long(cand_b))
        return batch


# --------------------------------------------------------------------------------------
# metrics


class _Meter:
    """Sums for MLM loss/accuracy and dEA loss/accuracy (overall and by alignment kind)."""

    def __init__(self) -> None:
        self.s: dict[str, float] = {}

    def add(self, k: str, v: float) -> None:
        self.s[k] = self.s.get(k, 0.0) + float(v)

    def update(self, out, batch: Mapping[str, torch.Tensor]) -> None:
        self.add("batches", 1)
        if out.mlm_loss is not None and out.mlm_logits is not None and out.mlm_logits.shape[0]:
            m = out.mlm_logits.shape[0]
            lab = batch["mlm_labels"].reshape(-1)
            lab = lab[lab != -100]
            self.add("mlm_loss_sum", float(out.mlm_loss.detach()) * m)
            self.add("mlm_count", m)
            self.add("mlm_correct", int((out.mlm_logits.argmax(-1) == lab).sum()))
        if out.dea_scores is not None and out.dea_scores.shape[0]:
            a = out.dea_scores.shape[0]
            pred = out.dea_scores.argmax(-1)
            ok = pred == batch["dea_target"]
            self.add("dea_loss_sum", float(out.dea_loss.detach()) * a)
            self.add("dea_count", a)
            self.add("dea_correct", int(ok.sum()))
            n_cand = torch.isfinite(out.dea_scores).sum(-1).clamp(min=1).float()
            self.add("dea_chance_sum", float((1.0 / n_cand).sum()))
            kind = batch["dea_kind"]
            for k, name in _KIND_NAMES.items():
                sel = kind == k
                self.add(f"dea_{name}_count", int(sel.sum()))
                self.add(f"dea_{name}_correct", int(ok[sel].sum()))

    def result(self) -> dict[str, float | None]:
        s = self.s
        div = lambda a, b: (s.get(a, 0.0) / s[b]) if s.get(b) else None  # noqa: E731
        r: dict[str, float | None] = {
            "mlm_loss": div("mlm_loss_sum", "mlm_count"),
            "mlm_accuracy": div("mlm_correct", "mlm_count"),
            "dea_loss": div("dea_loss_sum", "dea_count"),
            "dea_accuracy": div("dea_correct", "dea_count"),
            "dea_chance": div("dea_chance_sum", "dea_count"),
            "mlm_count": int(s.get("mlm_count", 0)),
            "dea_count": int(s.get("dea_count", 0)),
        }
        for name in _KIND_NAMES.values():
            r[f"dea_{name}_accuracy"] = div(f"dea_{name}_correct", f"dea_{name}_count")
            r[f"dea_{name}_count"] = int(s.get(f"dea_{name}_count", 0))
        return r


_METRIC_ONLY = ("dea_kind",)


def _model_inputs(batch: Mapping[str, torch.Tensor], ob: ObjectiveConfig) -> dict[str, Any]:
    inp = {k: v for k, v in batch.items() if k not in _METRIC_ONLY}
    inp["mlm_weight"] = ob.mlm_weight
    inp["dea_weight"] = ob.dea_weight
    if ob.mlm_weight == 0:
        inp.pop("mlm_labels", None)
    return inp


@torch.no_grad()
def evaluate_pretraining(model, features: Sequence[Mapping[str, Any]], collator: PretrainingCollator, ob: ObjectiveConfig,
                         *, batch_size: int = 32, device: Any = None, seed: int = 1234) -> dict[str, Any]:
    """MLM loss/accuracy and dEA accuracy on held-out features, with a fixed masking seed
    (the same corruption at every evaluation)."""
    was_training = model.training
    model.eval()
    collator.reset(seed)
    meter = _Meter()
    for i in range(0, len(features), batch_size):
        batch = collator(features[i:i + batch_size])
        if device is not None:
            batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**_model_inputs(batch, ob))
        meter.update(out, batch)
    collator.reset()
    if was_training:
        model.train()
    return meter.result()


# --------------------------------------------------------------------------------------
# the run


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns (also written as ``metrics.json``)."""

    output_dir: Path
    model_dir: Path
    global_step: int = 0
    wall_time: float = 0.0
    final: dict[str, Any] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_log: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "model_dir": str(self.model_dir), "global_step": self.global_step,
                "wall_time": self.wall_time, "initial": self.initial, "final": self.final, "history": self.history,
                "train_log": self.train_log, "data": self.data}


def _count_steps(ds: LinkedTextDataset, cfg: PretrainConfig) -> int:
    opt = cfg.train
    if opt.max_steps is not None:
        return int(opt.max_steps)
    n = sum(1 for _ in ds.records())
    per_epoch = math.ceil(n / opt.batch_size / max(1, opt.grad_accum))
    return max(1, per_epoch * opt.epochs)


def pretrain(config: PretrainConfig, *, graph=None, linked: "LinkedCorpus | str | os.PathLike | None" = None,
             progress: bool = True, accelerator: Any | None = None,
             log: Callable[[str], None] | None = None) -> PretrainResult:
    """Run ERNIE pre-training as configured; see the module docstring.

    Args:
        config: the run.
        graph: a :class:`~kgfuse.kg.KnowledgeGraph` to use instead of loading ``config.graph``.
        progress: progress bar and log lines on the main process.
        accelerator: an ``accelerate.Accelerator`` (made from ``config.train`` when None).
        linked: a :class:`LinkedCorpus` (or its file) to train on instead of linking
            ``config.corpus`` on the fly (default: ``config.data.linked`` when set). No linker
            and no spaCy are needed then; the features are checked against the graph, the
            tokenizer and ``train.max_length``.

    The number of optimiser steps is ``train.max_steps`` when set, else ``train.epochs``
    passes over the (non-held-out) corpus. Accelerator, optimiser and schedule, the
    accumulation / clipping step and ``log.jsonl`` are those of fine-tuning
    (:mod:`kgfuse.tasks.train`); progress lines go to ``log`` (default: this module's logger).
    """
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from .pipeline import build_linker, build_model
    from .train import _RunLog, make_accelerator, make_optimizer, optimizer_step

    log = log if log is not None else logger.info
    t0 = time.time()
    opt, ob, dc = config.train, config.objective, config.data
    if linked is None and dc.linked:
        linked = config.path(dc.linked)
    linked_source = None
    if linked is not None and not isinstance(linked, LinkedCorpus):
        linked_source = str(linked)
        linked = LinkedCorpus.load(linked)
    if linked is None and not config.corpus:
        raise ConfigError("corpus is empty: give at least one corpus spec (e.g. {type: wordnet_glosses}) or data.linked")
    ob.validate()
    # the entity output of the last fusion layer feeds no pre-training loss: DDP must allow it
    acc = accelerator if accelerator is not None else make_accelerator(opt, find_unused_parameters=True)
    set_seed(opt.seed)
    out = config.path(config.output_dir) if config.output_dir else default_home() / "pretrain" / _config_hash(config)
    is_main = acc.is_main_process
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    t = time.time()
    if graph is None:
        graph = load_pretrain_graph(config.graph, config.base_dir)
    linker = build_linker(graph, config.linker) if linked is None else None
    if progress and is_main:
        log(f"graph: {graph.num_concepts} concepts, {graph.num_relations} relations, {graph.num_edges} edges; "
            + (f"linker ready ({time.time() - t:.1f}s)" if linker is not None else
               f"pre-linked corpus: {len(linked.train)} training / {len(linked.eval)} held-out sequences"))
    model, tokenizer = build_model(config.model, graph, base_dir=config.base_dir, head="pretraining")
    if linked is not None:
        linked.check(graph, tokenizer, opt.max_length, source=linked_source or "linked corpus")
    if ob.dea_weight > 0 and getattr(model, "dea_head", None) is None:
        raise ConfigError("objective.dea_weight > 0 needs fusion layers (model.options.num_fusion_layers > 0, "
                          "use_graph and use_fusion true, a BERT-family encoder); set objective.dea_weight=0 for MLM only")
    if linked is None:
        train_ds, eval_ds = _linked_text_datasets(config, linker, tokenizer, shuffle_buffer=dc.shuffle_buffer)
        eval_feats = list(eval_ds) if dc.eval_fraction > 0 and dc.max_eval > 0 else []
    else:
        train_ds = LinkedFeatureDataset(linked.train, shuffle=dc.shuffle_buffer > 1, seed=opt.seed,
                                        stats=linked.meta.get("train_linking"), reports=linked.meta.get("corpus_reports", ()))
        eval_ds = LinkedFeatureDataset(linked.eval[: dc.max_eval], shuffle=False, stats=linked.meta.get("eval_linking"))
        eval_feats = list(eval_ds) if dc.max_eval > 0 else []
    total_steps = _count_steps(train_ds, config)
    if progress and is_main:
        log(f"held-out: {len(eval_feats)} sequences; optimiser steps: {total_steps}")

    collator = PretrainingCollator(tokenizer, graph, ob, seed=opt.seed + 17)
    eval_collator = PretrainingCollator(tokenizer, graph, ob, seed=opt.seed + 1234)
    loader = DataLoader(train_ds, batch_size=opt.batch_size, collate_fn=collator, num_workers=0)
    optimizer, scheduler = make_optimizer(model, opt, total_steps)
    model, optimizer, scheduler = acc.prepare(model, optimizer, scheduler)

    def evaluate(step: int) -> dict[str, Any]:
        if not eval_feats:
            return {}
        r = evaluate_pretraining(acc.unwrap_model(model), eval_feats, eval_collator, ob, batch_size=opt.eval_batch_size,
                                 device=acc.device, seed=opt.seed + 1234)
        r["step"] = step
        return r

    result = PretrainResult(output_dir=out, model_dir=out / "model")
    if is_main:
        (out / "log.jsonl").unlink(missing_ok=True)
    run_log = _RunLog(out, is_main)
    initial = evaluate(0)
    if initial:
        result.history.append(initial)
        run_log.log({"eval": initial}, 0)
    step = 0
    meter = _Meter()
    accum = max(1, opt.grad_accum)
    model.train()
    pbar = tqdm(total=total_steps, desc="pretrain", disable=not (progress and is_main))
    micro = 0
    epoch = 0
    try:
        while step < total_steps:
            train_ds.set_epoch(epoch)
            seen = 0
            for batch in loader:
                seen += 1
                batch = {k: v.to(acc.device) for k, v in batch.items()}
                with acc.accumulate(model):
                    o = model(**_model_inputs(batch, ob))
                    optimizer_step(acc, model, optimizer, scheduler, o.loss, opt)
                meter.update(o, batch)
                micro += 1
                if micro % accum:
                    continue
                step += 1
                pbar.update(1)
                if opt.log_every and step % opt.log_every == 0:
                    rec = {"step": step, **{f"train_{k}": v for k, v in meter.result().items()},
                           "lr": scheduler.get_last_lr()[0], "seconds": time.time() - t0}
                    result.train_log.append(rec)
                    run_log.log({k: v for k, v in rec.items() if k != "step"}, step)
                    pbar.set_postfix(mlm=f"{rec['train_mlm_loss'] or 0:.3f}", dea=f"{rec['train_dea_accuracy'] or 0:.3f}")
                    meter = _Meter()
                if dc.eval_every and step % dc.eval_every == 0 and step < total_steps:
                    r = evaluate(step)
                    if r:
                        result.history.append(r)
                        run_log.log({"eval": r}, step)
                if step >= total_steps:
                    break
            if seen == 0:
                raise ValueError("the training corpus yielded no sequence (all held out, filtered or empty)")
            epoch += 1
    finally:
        pbar.close()
        run_log.close()
    final = evaluate(step)
    if final:
        result.history.append(final)
    result.initial, result.final, result.global_step = initial, final, step
    result.data = {
        "train_linking": train_ds.stats.to_dict(),
        "eval_linking": eval_ds.stats.to_dict(),
        "corpus": [r if isinstance(r, dict) else r.to_dict() for r in train_ds.reports],
        "linked": linked_source or ("in memory" if linked is not None else None),
        "eval_sequences": len(eval_feats),
        "epochs_started": epoch,
    }
    acc.wait_for_everyone()
    unwrapped = acc.unwrap_model(model)
    result.wall_time = time.time() - t0
    if is_main:
        unwrapped.save_pretrained(str(result.model_dir))
        tokenizer.save_pretrained(str(result.model_dir))
        (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=1))
        write_report(result, config, graph)
    result.model = unwrapped
    return result


def _config_hash(config: PretrainConfig) -> str:
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------
# report


def write_curves(result: PretrainResult, path: Path) -> None:
    """PNG with the MLM loss (train, held-out) and the dEA accuracy (held-out by alignment
    kind, train, chance) against optimiser steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    tl = result.train_log
    ev = result.history

    def series(rows, key):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        return ([p[0] for p in pts], [p[1] for p in pts]) if pts else ([], [])

    for rows, key, label, style in ((tl, "train_mlm_loss", "train", "-"), (ev, "mlm_loss", "held-out", "o-")):
        x, y = series(rows, key)
        if x:
            a1.plot(x, y, style, label=label)
    a1.set_xlabel("optimiser step")
    a1.set_ylabel("MLM loss")
    a1.set_title("Masked LM")
    a1.legend()
    for rows, key, label, style in ((tl, "train_dea_accuracy", "train (all)", "-"),
                                    (ev, "dea_accuracy", "held-out (all)", "o-"),
                                    (ev, "dea_masked_accuracy", "held-out (removed)", "s-"),
                                    (ev, "dea_replaced_accuracy", "held-out (replaced)", "^-"),
                                    (ev, "dea_chance", "chance", "k--")):
        x, y = series(rows, key)
        if x:
            a2.plot(x, y, style, label=label)
    a2.set_xlabel("optimiser step")
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1)
    a2.set_title("dEA: entity recovery")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: PretrainResult, config: PretrainConfig, graph) -> None:
    """``report.md`` and ``curves.png`` in the output folder."""
    from .evaluate import _fmt
    out = result.output_dir
    try:
        write_curves(result, out / "curves.png")
    except ImportError as e:  # matplotlib is optional on a training machine
        logger.warning("kgfuse: no curves.png (%s)", e)
    keys = ["mlm_loss", "mlm_accuracy", "dea_accuracy", "dea_kept_accuracy", "dea_masked_accuracy",
            "dea_replaced_accuracy", "dea_chance", "dea_count"]
    lines = [
        "# Pre-training report",
        "",
        f"- model: `{config.model.init_from or config.model.text_encoder}` "
        f"({'random text encoder ' + json.dumps(config.model.options.get('text_config')) if config.model.options.get('text_config') else 'pretrained text encoder'})",
        f"- graph: {graph.num_concepts} concepts, {graph.num_relations} relations, {graph.num_edges} edges (hash `{graph.hash[:12]}`)",
        f"- corpus: `{json.dumps(config.corpus)}`",
        f"- objective: MLM {config.objective.mlm_probability:.0%} (mask/random/keep "
        f"{config.objective.mlm_mask:.0%}/{config.objective.mlm_random:.0%}/"
        f"{1 - config.objective.mlm_mask - config.objective.mlm_random:.0%}), dEA replace/remove/keep "
        f"{config.objective.dea_replace:.0%}/{config.objective.dea_mask:.0%}/"
        f"{1 - config.objective.dea_replace - config.objective.dea_mask:.0%}, predict {config.objective.dea_predict}, "
        f"weights MLM {config.objective.mlm_weight} / dEA {config.objective.dea_weight}",
        f"- optimiser steps: {result.global_step} (batch {config.train.batch_size}, max length {config.train.max_length}); "
        f"wall time {result.wall_time:.0f} s",
        f"- linking (train stream): {json.dumps(result.data.get('train_linking', {}))}",
        "",
        "## Held-out metrics",
        "",
        "dEA accuracy: share of supervised alignments whose original entity gets the highest score among the "
        "sequence's entities; by kind: kept alignments (the token saw its entity), removed ones (it saw none), "
        "replaced ones (it saw a random entity). `dea_chance` = mean of 1 / (number of candidates).",
        "",
        "| metric | before | after |",
        "| --- | --- | --- |",
    ]
    for k in keys:
        lines.append(f"| {k} | {_fmt(result.initial.get(k))} | {_fmt(result.final.get(k))} |")
    lines += ["", "![curves](curves.png)", "", f"Fine-tune from it: `kgfuse train <config> --set model.init_from={result.model_dir}`", ""]
    (out / "report.md").write_text("\n".join(lines))
