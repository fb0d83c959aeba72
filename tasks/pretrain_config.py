"""The configuration of ERNIE pre-training (``kgfuse pretrain``): :class:`PretrainConfig`.

Built of the same typed sections as fine-tuning's :class:`~kgfuse.tasks.config.TrainConfig`
(``graph``, ``linker``, ``model``, ``train``), plus two of its own (``objective``,
``data``), and read by the same loader (:func:`kgfuse.tasks.config.load_config`): unknown
keys fail with a did-you-mean hint, values are type-checked, and
:func:`~kgfuse.tasks.config.validate_config` checks the ``linker`` and ``model.options``
keyword sections, the ``train`` ranges and each section's own ``validate``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import (ConfigError, GraphConfig, ModelConfig, OptimConfig, _from_dict, apply_overrides, load_config,
                     resolve_path, validate_config)

__all__ = ["ObjectiveConfig", "PretrainDataConfig", "PretrainConfig", "load_pretrain_config"]


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
        linked: a :class:`~kgfuse.tasks.pretrain_data.LinkedCorpus` file (``kgfuse pretrain
            --link-only``) to train on instead of linking ``corpus`` on the fly: no spaCy
            needed at training time.
    """

    eval_fraction: float = 0.02
    max_eval: int = 256
    eval_every: int = 100
    shuffle_buffer: int = 10000
    min_entities: int = 0
    linked: str | None = None

    def validate(self, source: str = "data") -> None:
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"{source}.eval_fraction must be in [0, 1), got {self.eval_fraction}")
        for k in ("max_eval", "eval_every", "shuffle_buffer", "min_entities"):
            if getattr(self, k) < 0:
                raise ConfigError(f"{source}.{k} must be >= 0, got {getattr(self, k)}")


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

    ``graph``, ``linker``, ``model`` and ``train`` are fine-tuning's sections
    (:mod:`kgfuse.tasks.config`); ``train`` starts from other defaults here (one epoch,
    batch 16, LM learning rate 2e-5). ``corpus`` is a list of corpus specs (a single spec
    or path is accepted too).
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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: str | os.PathLike | None = None,
                  source: str = "<dict>") -> "PretrainConfig":
        d = dict(d)
        corpus = d.get("corpus")
        if isinstance(corpus, (str, Mapping)):
            d["corpus"] = [corpus]
        cfg = _from_dict(cls, d, source, "", base_dir=None if base_dir is None else str(base_dir))
        validate_config(cfg, source)
        return cfg

    def validate(self, source: str = "<dict>") -> None:
        """The ``corpus`` list (the sections are checked by :func:`~kgfuse.tasks.config.validate_config`)."""
        c = self.corpus
        if not isinstance(c, list) or not all(isinstance(x, (str, Mapping)) for x in c):
            raise ConfigError(f"{source}: corpus must be a list of corpus specs (mappings with 'type') or paths")
        self.corpus = [dict(x) if isinstance(x, Mapping) else x for x in c]
        if self.train.group_by_length:
            raise ConfigError(f"{source}: train.group_by_length is a fine-tuning setting; pre-training streams its "
                              "corpus (shuffled within data.shuffle_buffer) and groups no batches by length")
        if self.train.early_stopping_patience is not None:
            raise ConfigError(f"{source}: train.early_stopping_patience is a fine-tuning setting; pre-training runs "
                              "all its train.max_steps steps; its held-out metrics (every data.eval_every steps) select no model")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def path(self, value: str | None) -> Path | None:
        return resolve_path(value, self.base_dir)

    def with_overrides(self, overrides: Sequence[str]) -> "PretrainConfig":
        return PretrainConfig.from_dict(apply_overrides(self.to_dict(), overrides), base_dir=self.base_dir,
                                        source="overrides")


def load_pretrain_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> PretrainConfig:
    """Read a YAML/TOML pre-training config and apply ``section.key=value`` overrides;
    relative paths resolve against the file's folder (:func:`kgfuse.tasks.config.load_config`)."""
    return load_config(path, overrides, cls=PretrainConfig)
