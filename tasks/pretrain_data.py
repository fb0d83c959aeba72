"""Pre-training data: corpora linked to the graph, and batches with MLM masking and dEA corruption.

- :func:`link_and_tokenise`: one text → token ids and token-entity alignments (each mention
  aligned to its first sub-token);
- :class:`LinkedTextDataset`: a corpus (:mod:`kgfuse.kg.corpora`) streamed, linked and
  tokenised on the fly, split into training and held-out records by a hash of the record id
  (:func:`held_out`);
- :class:`LinkedCorpus` / :func:`link_corpus` / :class:`LinkedFeatureDataset`: the same
  features linked once and saved (linking needs spaCy, training from the file does not);
- :class:`PretrainingCollator`: BERT's MLM masking and ERNIE's dEA corruption of a batch,
  with each sequence's input graph (the concepts still aligned and the graph's edges among
  them) and the targets of :class:`~kgfuse.fusion.pretraining.KGFusedForPreTraining`.

The run itself: :mod:`kgfuse.tasks.pretrain`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset

from .config import ConfigError, GraphConfig
from .pretrain_config import ObjectiveConfig

if TYPE_CHECKING:
    from .pretrain_config import PretrainConfig

__all__ = [
    "KIND_KEPT",
    "KIND_MASKED",
    "KIND_REPLACED",
    "held_out",
    "LinkingStats",
    "link_and_tokenise",
    "LinkedTextDataset",
    "LinkedCorpus",
    "LinkedFeatureDataset",
    "link_corpus",
    "tokenizer_fingerprint",
    "PretrainingCollator",
    "load_pretrain_graph",
]

logger = logging.getLogger(__name__)

_NODE_TYPE_TEXT = 0  # nodes of pre-training sequences are typed like question concepts
KIND_KEPT, KIND_MASKED, KIND_REPLACED = 0, 1, 2
KIND_NAMES = {KIND_KEPT: "kept", KIND_MASKED: "masked", KIND_REPLACED: "replaced"}


def load_pretrain_graph(cfg: GraphConfig, base_dir: str | os.PathLike | None = None):
    """The graph of a pre-training run, through the one resolver of every route
    (:func:`kgfuse.tasks.pipeline.load_graph`); ``format: wordnet`` with no ``path`` reads
    Debian's WordNet folder."""
    from .pipeline import load_graph

    return load_graph(cfg, base_dir)


# --------------------------------------------------------------------------------------
# linking and datasets


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


class _StreamPosition:
    """Where a training stream stands inside its current pass, for an exact resume.

    The stream counts the records it has read in the pass (``records``: those taken from the
    shuffled order, whether they became a sequence or were filtered out) and the sequences it
    has yielded (``sequences``). :meth:`position` is read at a checkpoint;
    :meth:`resume_at` makes the next pass over the same epoch skip that many records without
    linking or yielding them, so it continues with the record an uninterrupted run would
    read next. This holds when the stream is iterated in the training process itself (a
    ``DataLoader`` with ``num_workers=0``, as :func:`~kgfuse.tasks.pretrain.pretrain` uses):
    a worker process would count in its own copy.
    """

    epoch: int
    records_read: int = 0
    sequences_read: int = 0
    _resume: dict[str, Any] | None = None

    def position(self) -> dict[str, Any]:
        """``{"epoch", "records", "sequences"}`` of the pass in progress."""
        return {"epoch": int(self.epoch), "records": int(self.records_read), "sequences": int(self.sequences_read)}

    def resume_at(self, position: Mapping[str, Any]) -> None:
        """Continue pass ``position["epoch"]`` after its first ``position["records"]`` records
        (applies to the next iteration of that epoch, once)."""
        self._resume = {"epoch": int(position["epoch"]), "records": int(position["records"]),
                        "sequences": int(position.get("sequences", 0))}

    def _start_pass(self) -> int:
        """Reset the counters for a new pass; returns the records to skip (a pending resume)."""
        r, self._resume = self._resume, None
        if r is not None and r["epoch"] == self.epoch:
            self.records_read, self.sequences_read = 0, r["sequences"]
            return r["records"]
        self.records_read = self.sequences_read = 0
        return 0


class LinkedTextDataset(_StreamPosition, IterableDataset):
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
        skip = self._start_pass()
        if self.limit is not None and self.sequences_read >= self.limit:
            return
        for rec in self._shuffled(self.records()):
            self.records_read += 1
            if self.records_read <= skip:
                continue  # read before the checkpoint this pass resumes from (not linked again)
            self.stats.records += 1
            feat = link_and_tokenise(rec.text, self.linker, self.tokenizer, self.max_length, self.stats)
            if len(feat["entity_concepts"]) < self.min_entities:
                self.stats.too_few_entities += 1
                continue
            feat["id"] = rec.id
            self.stats.sequences += 1
            self.sequences_read += 1
            yield feat
            if self.limit is not None and self.sequences_read >= self.limit:
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


class LinkedFeatureDataset(_StreamPosition, IterableDataset):
    """Training sequences of a :class:`LinkedCorpus`, reshuffled every epoch (a permutation
    seeded by ``(seed, epoch)``; ``shuffle=False`` keeps the stored order); a resume
    (:meth:`resume_at`) continues the permutation where the checkpoint left it."""

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
        skip = self._start_pass()
        self.records_read = self.sequences_read = min(skip, len(order))
        for i in order[skip:]:
            self.records_read += 1
            self.sequences_read += 1
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

    def state_dict(self) -> dict[str, Any]:
        """The masking generator's state (JSON-able): a resumed run draws the masks an
        uninterrupted one would."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        rng = np.random.default_rng(self.seed)
        rng.bit_generator.state = dict(state["rng"])
        self.rng = rng

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
