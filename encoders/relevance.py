"""Relevance of concepts to a statement, from the text encoder: QA-GNN's node scoring.

QA-GNN (Yasunaga et al., 2021) scores every candidate node of a retrieved subgraph against
the question-and-choice context with a language model; the scores rank and prune the
subgraph and enter the GNN as a node feature. :class:`TextRelevanceScorer` computes such a
score with a sentence-embedding text encoder (by default the shipped all-MiniLM-L6-v2):

.. math::
    \\mathrm{rel}(c \\mid q, a) = \\cos\\big(E(\\text{"q a"}),\\, E(\\text{name}(c))\\big) \\in [-1, 1]

where :math:`E` is the mean of the encoder's last hidden states over the attention mask
(special tokens included, as sentence-transformers pools), L2-normalised, and concept names
are written with spaces (``ice_cream`` -> ``ice cream``). It implements the graph layer's
:class:`kgfuse.kg.retrieval.RelevanceScorer` protocol, so it plugs into
``SubgraphRetriever(ranking="relevance", scorer=TextRelevanceScorer())``.

Name embeddings are computed on demand (only the concepts that candidate sets reach; a
graph may have hundreds of thousands) and memoised; :meth:`TextRelevanceScorer.precompute`
embeds a given list (e.g. all of ``graph.concepts``) when asked. Statement embeddings are
computed in batches by :meth:`TextRelevanceScorer.prepare` (called by the preprocessing with
every statement of a dataset) and memoised too. With ``cache_dir`` the memoised name
embeddings are kept on disk (:meth:`TextRelevanceScorer.flush`, called after preprocessing)
under the scorer's fingerprint and read back by the next scorer with the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..fingerprint import source_fingerprint

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["TextRelevanceScorer", "concept_text"]

logger = logging.getLogger(__name__)


def concept_text(name: str) -> str:
    """A concept name as text: underscores written as spaces (``ice_cream`` -> ``ice cream``)."""
    return " ".join(str(name).replace("_", " ").split())


def _memory_fingerprint(tokenizer: Any, model: "torch.nn.Module") -> str:
    """Content hash of an in-memory encoder: its config, every tensor of its state dict and
    the tokenizer's vocabulary."""
    import torch

    h = hashlib.sha256()
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "to_json_string"):
        h.update(cfg.to_json_string(use_diff=False).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    h.update(vocab.encode())
    return "memory:" + h.hexdigest()


class TextRelevanceScorer:
    """Cosine relevance of concept names to a statement, from a sentence-embedding encoder.

    Args:
        encoder: a text-encoder name or local folder (default ``None``: the shipped
            all-MiniLM-L6-v2, loaded offline with
            :func:`kgfuse.encoders.text.load_text_encoder` on first use), or an in-memory
            ``(tokenizer, model)`` pair (a fast tokenizer and a Hugging Face encoder whose
            output has ``last_hidden_state``).
        max_length: token limit of each statement and name.
        batch_size: texts per forward pass.
        cache_dir: folder for the memoised name embeddings (``None``: memory only).
        device: where the encoder runs.
        local_files_only: never download (a name that is not local then fails to load).

    ``score(context, names)`` returns float32 cosines in ``[-1, 1]``. ``config`` (and its
    hash, ``fingerprint``) identifies the scores: the encoder's weights hash
    (:func:`kgfuse.encoders.text.weights_hash`, or a hash of the in-memory weights and
    vocabulary), ``max_length``, the pooling and the version; it enters the retriever's
    config and so the preprocessing cache key. ``batch_size`` and ``device`` do not.

    Memory: one float32 row of the encoder's width per distinct name scored (384 floats for
    MiniLM, 1.5 kB; 100,000 names take 150 MB) and per statement prepared.

    Example::

        from kgfuse.encoders.relevance import TextRelevanceScorer
        from kgfuse.kg.retrieval import SubgraphRetriever

        scorer = TextRelevanceScorer()                       # shipped MiniLM, offline
        scorer.score("Where do you keep a plate? cupboard", ["cupboard", "ice_cream"])
        sr = SubgraphRetriever(kg, max_nodes=200, ranking="relevance", scorer=scorer)
    """

    #: version of the scoring recipe (part of ``config``)
    VERSION = 1

    def __init__(
        self,
        encoder: "str | os.PathLike | tuple[Any, Any] | None" = None,
        *,
        max_length: int = 64,
        batch_size: int = 128,
        cache_dir: str | os.PathLike | None = None,
        device: str = "cpu",
        local_files_only: bool = True,
    ) -> None:
        if int(max_length) < 2:
            raise ValueError(f"max_length must be >= 2, got {max_length}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.device = device
        self.local_files_only = local_files_only
        self._tokenizer = self._model = None
        self._encoder_hash: str | None = None
        if isinstance(encoder, tuple):
            if len(encoder) != 2:
                raise TypeError("encoder must be a name, a folder, None or a (tokenizer, model) pair")
            self._tokenizer, self._model = encoder
            self.encoder_name = getattr(getattr(self._model, "config", None), "_name_or_path", "") or "in-memory"
            self._encoder_hash = _memory_fingerprint(self._tokenizer, self._model)
            self._model.to(device).eval()
        else:
            self.encoder_name = None if encoder is None else str(encoder)
        # memo: text -> row of _mat (names); text -> vector (statements)
        self._rows: dict[str, int] = {}
        self._mat: np.ndarray | None = None
        self._statements: dict[str, np.ndarray] = {}
        self._cache_loaded = False
        self._dirty = False

    # ------------------------------------------------------------------ identity
    @property
    def config(self) -> dict[str, Any]:
        """JSON-able identity of the scores (part of the preprocessing cache key): the encoder's
        weights, the settings and the source of this module
        (:func:`~kgfuse.fingerprint.source_fingerprint`)."""
        if self._encoder_hash is None:
            from .text import weights_hash

            self._encoder_hash = weights_hash(self.encoder_name)
        return {
            "class": "TextRelevanceScorer",
            "version": self.VERSION,
            "encoder": self._encoder_hash,
            "max_length": self.max_length,
            "pooling": "mean",
            "similarity": "cosine",
            "code": source_fingerprint(__name__),
        }

    @property
    def fingerprint(self) -> str:
        """SHA-256 of :attr:`config` (canonical JSON)."""
        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()

    @property
    def encoder_loaded(self) -> bool:
        """Whether the text encoder is in memory (it is loaded on the first embedding)."""
        return self._model is not None

    def __repr__(self) -> str:
        return (f"TextRelevanceScorer(encoder={self.encoder_name!r}, max_length={self.max_length}, "
                f"names={len(self._rows)}, statements={len(self._statements)})")

    # ------------------------------------------------------------------ embedding
    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            from .text import load_text_encoder

            self._tokenizer, model = load_text_encoder(self.encoder_name, local_files_only=self.local_files_only)
            self._model = model.to(self.device).eval()
        return self._tokenizer, self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings ``[n, hidden]`` (float32) of ``texts``, in
        batches of ``batch_size`` (sorted by length to pad little); nothing memoised."""
        import torch

        texts = [str(t) for t in texts]
        tok, model = self._load()
        width = int(model.config.hidden_size)
        out = np.zeros((len(texts), width), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for i0 in range(0, len(order), self.batch_size):
                idx = order[i0 : i0 + self.batch_size]
                enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                          return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items()}
                hs = model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(hs.dtype)
                vec = (hs * m).sum(1) / m.sum(1).clamp(min=1.0)
                vec = torch.nn.functional.normalize(vec.float(), dim=-1)
                out[np.asarray(idx)] = vec.cpu().numpy()
        return out

    def _name_rows(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of the name memo for ``texts`` (already written as text), embedding the new ones."""
        self._load_cache()
        missing = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if missing:
            vecs = self.embed(missing)
            start = 0 if self._mat is None else len(self._rows)
            need = start + len(missing)
            if self._mat is None or need > self._mat.shape[0]:
                grown = np.zeros((max(need, 2 * (0 if self._mat is None else self._mat.shape[0]), 1024),
                                  vecs.shape[1]), dtype=np.float32)
                if self._mat is not None:
                    grown[:start] = self._mat[:start]
                self._mat = grown
            self._mat[start:need] = vecs
            for k, t in enumerate(missing):
                self._rows[t] = start + k
            self._dirty = True
        return np.fromiter((self._rows[t] for t in texts), dtype=np.int64, count=len(texts))

    def name_embeddings(self, names: Sequence[str]) -> np.ndarray:
        """Embeddings ``[n, hidden]`` of concept names (graph spelling), memoised."""
        texts = [concept_text(n) for n in names]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        rows = self._name_rows(texts)  # first: it may read the disk cache into _mat
        return self._mat[rows]

    def precompute(self, names: Sequence[str]) -> int:
        """Embed every name of ``names`` not yet memoised (e.g. ``graph.concepts`` to embed a
        whole graph up front); returns how many names are memoised."""
        self._name_rows([concept_text(n) for n in names])
        return len(self._rows)

    def prepare(self, contexts: Sequence[str]) -> None:
        """Embed the statements ``contexts`` in batches and memoise them (the preprocessing
        calls this with every statement of a dataset before retrieval)."""
        missing = [t for t in dict.fromkeys(str(c) for c in contexts) if t not in self._statements]
        if missing:
            for t, v in zip(missing, self.embed(missing)):
                self._statements[t] = v

    def statement_embedding(self, context: str) -> np.ndarray:
        """The embedding ``[hidden]`` of one statement (memoised)."""
        context = str(context)
        if context not in self._statements:
            self.prepare([context])
        return self._statements[context]

    def score(self, context: str, names: Sequence[str]) -> np.ndarray:
        """Cosine relevance ``[len(names)]`` (float32, in ``[-1, 1]``) of each concept name
        (graph spelling, ``_`` read as a space) to the statement ``context``."""
        if len(names) == 0:
            return np.zeros(0, dtype=np.float32)
        s = self.statement_embedding(context)
        rows = self._name_rows([concept_text(n) for n in names])
        return np.clip(self._mat[rows] @ s, -1.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ disk cache
    @property
    def cache_file(self) -> Path | None:
        """Where the name embeddings are kept (``None`` without ``cache_dir``)."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"relevance-names-{self.fingerprint[:32]}.safetensors"

    def _load_cache(self) -> None:
        if self._cache_loaded:
            return
        self._cache_loaded = True
        path = self.cache_file
        if path is None or not path.is_file():
            return
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as f:
                meta = f.metadata() or {}
                mat = f.get_tensor("embeddings")
            names = json.loads(meta.get("names", "null"))
            ok = (isinstance(names, list) and mat.ndim == 2 and mat.shape[0] == len(names)
                  and json.loads(meta.get("config", "null")) == self.config and np.isfinite(mat).all())
        except Exception as e:  # a damaged cache is rebuilt, never trusted
            logger.warning("relevance scorer: ignoring unreadable cache %s (%s)", path, e)
            return
        if not ok:
            logger.warning("relevance scorer: ignoring cache %s (does not match this scorer)", path)
            return
        self._mat = np.array(mat, dtype=np.float32)
        self._rows = {str(t): i for i, t in enumerate(names)}

    def flush(self) -> Path | None:
        """Write the memoised name embeddings to ``cache_dir`` (when set and anything new was
        embedded); returns the file, or ``None``."""
        path = self.cache_file
        if path is None or not self._dirty or self._mat is None:
            return None
        from safetensors.numpy import save_file

        names = sorted(self._rows, key=self._rows.__getitem__)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({"embeddings": np.ascontiguousarray(self._mat[: len(names)])}, str(tmp),
                  metadata={"names": json.dumps(names, ensure_ascii=False), "config": json.dumps(self.config)})
        os.replace(tmp, path)
        self._dirty = False
        return path
