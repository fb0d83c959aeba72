"""Dataset-level grounding and retrieval, in parallel, cached on disk without pickle.

One module because the cache's writer, reader and validator are three views of one on-disk
format (field lists, dtypes, manifest, key) that must change together.

:func:`preprocess_dataset` grounds every (question, choice) statement of a dataset with an
:class:`~kgfuse.kg.EntityLinker` and cuts its subgraph with a retriever
(:class:`~kgfuse.kg.PathRetriever` or :class:`~kgfuse.kg.SubgraphRetriever`), in several
worker processes (``fork``: the workers inherit the graph, the linker and the retriever from
the parent; only example index ranges and small result arrays cross process boundaries).

The result is stored in ``cache_dir/<key>/`` where ``key`` is the SHA-256 of

- the cache format version (:data:`FORMAT_VERSION`),
- the source of :mod:`kgfuse.kg` (:func:`kgfuse.fingerprint.source_fingerprint`: code that
  links or retrieves differently never reads another version's cache),
- the graph's content hash (:attr:`KnowledgeGraph.hash`),
- the linker's and the retriever's ``config``,
- the dataset hash (SHA-256 of the data file, given as ``dataset_hash``, or of the
  examples' ids, questions and choices as canonical JSON),

so a second run with the same inputs reads the cache and any change -- including a new
format version -- rebuilds. The layout:

``meta.json``
    format, key, inputs, edge mode, counts and statistics.
``groundings.json``
    example ids, and per statement the :meth:`Grounding.to_dict` record.
``arrays/*.npy``
    the *node sets* of all statements concatenated: ``concept_ids`` (int32), ``node_type``
    (int8) and, for paths, ``paths`` (local node indices: int16 when all fit, else int32),
    ``path_rels`` (int8 for graphs of fewer than 64 relations, else int16), ``path_len``
    (int8), with CSR-style offsets ``node_ptr`` / ``path_ptr`` per statement
    and ``choice_ptr`` per example. With a relevance-ranked
    :class:`~kgfuse.kg.SubgraphRetriever` also ``node_score`` (float32, one per node, aligned
    with ``concept_ids``; ``meta.json`` says ``"has_node_score": true``). A cache without
    the field (any other retriever, or one written before it existed) reads as before.
    Read with ``mmap_mode="r"``; no pickle anywhere.
``manifest.json``
    the size and content hash of every other file (:mod:`kgfuse.integrity`), written last.

**Edges are not stored.** A retriever's ``edge_mode`` says how they follow from the node
set: ``"induced"`` (:class:`~kgfuse.kg.SubgraphRetriever`: every graph edge among the
nodes) or ``"paths"`` (:class:`~kgfuse.kg.PathRetriever`: the edges walked by the kept
paths). They are rebuilt, vectorised, when a statement is read
(:class:`~kgfuse.kg.retrieval.EdgeRebuilder`; ``"induced"`` needs the graph:
``PreprocessedDataset.load(path, graph=kg)``), so the cache of all CommonsenseQA is a few
tens of MB however dense the graph is, and a machine without spaCy (a GPU box) needs only
the cache folder and the compiled graph. A retriever without ``retrieve_nodes`` (a third
party one) has its edges stored (``edge_mode`` ``"stored"``: ``edge_index`` as ``[e, 2]``
int32 rows, ``edge_type`` int16, ``edge_ptr``).

The folder is built under a temporary name and renamed into place, and ``manifest.json`` is
its last file. Loading checks the format version, then that ``manifest.json`` exists and
every listed file has its recorded size and content hash (a partial copy, a truncated file or
a flipped bit is refused), then every array's shape, dtype kind, offsets and value ranges;
any problem raises :class:`CacheFormatError` naming the file (and field) and saying how to
rebuild, instead of handing a model other subgraphs or malformed tensors. Hashing costs one
read of the folder: with xxh3, 0.02 s for the 46 MB node-set cache and 0.15 s for the 360 MB
path cache of all CommonsenseQA (``benchmarks/corruption_sweep.py --open-cost 54305``).

With ``retriever=None`` only the groundings are stored:
``PreprocessedDataset.load(path).with_retriever(SubgraphRetriever(KnowledgeGraph.load(g)))``
cuts subgraphs from them on access. This module imports neither spaCy nor torch at import
time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np

from ..fingerprint import source_fingerprint
from ..integrity import list_files, verify_manifest, write_manifest
from .linking import Grounding

if TYPE_CHECKING:  # pragma: no cover
    from .graph import KnowledgeGraph
    from .linking import EntityLinker
    from .retrieval import KGData

__all__ = ["preprocess_dataset", "PreprocessedDataset", "CacheFormatError", "examples_hash", "cache_key",
           "FORMAT_VERSION", "EDGE_MODES"]

logger = logging.getLogger(__name__)

#: Version of the on-disk layout; part of every cache key and checked on load.
#: v2: node sets only, edges rebuilt on read (v1 stored every edge).
#: v3: ``manifest.json`` with the size and content hash of every file.
FORMAT_VERSION = "kgfuse-preprocess-v3"

#: The cache folder's manifest (:mod:`kgfuse.integrity`), written last.
MANIFEST = "manifest.json"
_MANIFEST_KIND = "preprocess-cache"

#: How edges are obtained when a statement is read (``meta.json`` field ``edges``).
EDGE_MODES = ("induced", "paths", "stored")

_NODE_FIELDS = ("concept_ids", "node_type")
_SCORE_FIELD = "node_score"  # optional float node field (relevance-ranked subgraphs)
_EDGE_FIELDS = ("edge_index", "edge_type")
_PATH_FIELDS = ("paths", "path_rels", "path_len")
# on-disk dtypes (read back as int64); preprocess_dataset widens them for huge graphs
_DTYPES = {
    "concept_ids": np.int32, "node_type": np.int8, "edge_index": np.int32, "edge_type": np.int16,
    "paths": np.int32, "path_rels": np.int16, "path_len": np.int8, _SCORE_FIELD: np.float32,
}


class CacheFormatError(ValueError):
    """A preprocessed-dataset folder that is stale (older format), incomplete, corrupt or malformed."""


def _rebuild_hint(path: Path) -> str:
    return f"delete {path} (or call preprocess_dataset(..., rebuild=True)) to rebuild the cache"

_HEADER = 128  # bytes reserved for the .npy header of streamed arrays
_CHUNK = 1 << 20  # rows per chunk when rewriting or validating large arrays


class _NpyStream:
    """Append rows to a ``.npy`` file without holding them in memory (header written last)."""

    def __init__(self, path: Path, dtype, row_shape: tuple[int, ...]) -> None:
        self.path, self.dtype, self.row_shape, self.rows = path, np.dtype(dtype), tuple(row_shape), 0
        self.f = open(path, "wb")
        self.f.write(b"\x00" * _HEADER)

    def write(self, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a, dtype=self.dtype)
        if a.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path.name}: rows of shape {a.shape[1:]}, expected {self.row_shape}")
        self.f.write(a.tobytes())
        self.rows += a.shape[0]

    def close(self) -> None:
        header = repr({"descr": self.dtype.str, "fortran_order": False, "shape": (self.rows, *self.row_shape)})
        body = header.encode("latin1")
        pad = _HEADER - 10 - len(body) - 1
        if pad < 0:  # pragma: no cover - shapes are short
            raise ValueError("npy header too long")
        self.f.seek(0)
        self.f.write(b"\x93NUMPY\x01\x00" + (_HEADER - 10).to_bytes(2, "little") + body + b" " * pad + b"\n")
        self.f.close()


# --------------------------------------------------------------------------- inputs
def _field(ex: Any, name: str, i: int) -> Any:
    if isinstance(ex, Mapping):
        if name in ex:
            return ex[name]
    elif hasattr(ex, name):
        return getattr(ex, name)
    raise ValueError(f"example {i}: missing field {name!r} (examples need .id, .question, .choices)")


def _normalise(examples: Sequence[Any]) -> tuple[list[str], list[str], list[list[str]]]:
    ids, questions, choices = [], [], []
    for i, ex in enumerate(examples):
        eid = _field(ex, "id", i)
        q = _field(ex, "question", i)
        cs = _field(ex, "choices", i)
        if not isinstance(q, str):
            raise ValueError(f"example {i} (id {eid!r}): field 'question' must be a string, not {type(q).__name__}")
        if isinstance(cs, str) or not all(isinstance(c, str) for c in cs):
            raise ValueError(f"example {i} (id {eid!r}): field 'choices' must be a list of strings")
        ids.append(str(eid))
        questions.append(q)
        choices.append(list(cs))
    return ids, questions, choices


def examples_hash(examples: Sequence[Any]) -> str:
    """SHA-256 of the examples' ids, questions and choices (canonical JSON)."""
    ids, qs, cs = _normalise(examples)
    h = hashlib.sha256()
    for rec in zip(ids, qs, cs):
        h.update(json.dumps(rec, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def cache_key(graph_hash: str, linker_config: Mapping[str, Any], retriever_config: Mapping[str, Any] | None,
              dataset_hash: str) -> str:
    """The cache directory name for these inputs."""
    blob = json.dumps(
        {
            "format": FORMAT_VERSION,
            "code": source_fingerprint("kgfuse.kg"),
            "graph": graph_hash,
            "linker": linker_config,
            "retriever": retriever_config,
            "dataset": dataset_hash,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- workers
# Worker state is installed by the Pool initializer. With the "fork" start method the
# initializer's arguments are inherited, not pickled, so an 800k-concept graph is never
# serialised; each worker process has its own copy-on-write view of it.
_STATE: dict[str, Any] = {}


def _init_worker(state: dict[str, Any]) -> None:
    _STATE.clear()
    _STATE.update(state)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _edge_mode(retriever: Any) -> str | None:
    """``"induced"``/``"paths"`` for retrievers that can split off their edges, else
    ``"stored"``; ``None`` without a retriever."""
    if retriever is None:
        return None
    mode = getattr(retriever, "edge_mode", None)
    if mode in ("induced", "paths") and callable(getattr(retriever, "retrieve_nodes", None)):
        return mode
    return "stored"


def _needs_context(retriever: Any) -> bool:
    """Whether the retriever reads the statement text (``retrieve_nodes(g, context=...)``)."""
    return retriever is not None and bool(getattr(retriever, "needs_context", False))


def _work(rng: tuple[int, int]) -> list[list[tuple[dict[str, Any], dict[str, np.ndarray] | None]]]:
    linker, retriever = _STATE["linker"], _STATE["retriever"]
    questions, choices = _STATE["questions"], _STATE["choices"]
    mode, dtypes = _STATE["edge_mode"], _STATE["dtypes"]
    with_context = _needs_context(retriever)
    out = []
    for i in range(*rng):
        rows = []
        for c in choices[i]:
            g = linker.ground(questions[i], c)
            kw = {"context": (questions[i], c)} if with_context else {}
            arrays = None
            if mode == "stored":
                arrays = retriever.retrieve_arrays(g, **kw)
                arrays["edge_index"] = np.asarray(arrays["edge_index"]).T  # [e, 2] rows stream to disk
            elif mode is not None:
                arrays = retriever.retrieve_nodes(g, **kw)
            if arrays is not None:
                arrays = {k: np.ascontiguousarray(v, dtype=dtypes[k]) for k, v in arrays.items() if k in dtypes}
            rows.append((g.to_dict(), arrays))
        out.append(rows)
    return out


def _dtypes(graph: "KnowledgeGraph") -> dict[str, Any]:
    d = dict(_DTYPES)
    if graph.num_concepts >= 2**31:  # pragma: no cover - not a graph one machine holds
        d["concept_ids"] = np.int64
    if 2 * graph.num_relations < 2**7:
        d["path_rels"] = np.int8
    elif 2 * graph.num_relations >= 2**15:
        d["edge_type"] = d["path_rels"] = np.int32
    return d


def _narrow(path: Path, dtype) -> None:
    """Rewrite the ``.npy`` array at ``path`` with a smaller integer dtype, in chunks."""
    a = np.load(path, mmap_mode="r")
    tmp = path.with_suffix(".narrow")
    st = _NpyStream(tmp, dtype, a.shape[1:])
    for i in range(0, a.shape[0], _CHUNK):
        st.write(np.asarray(a[i : i + _CHUNK]))
    st.close()
    del a
    os.replace(tmp, path)


# --------------------------------------------------------------------------- main entry
def preprocess_dataset(
    examples: Sequence[Any],
    graph: "KnowledgeGraph",
    linker: "EntityLinker",
    retriever: Any | None,
    cache_dir: str | os.PathLike,
    *,
    dataset_hash: str | None = None,
    num_workers: int | None = None,
    chunk_size: int = 32,
    progress: bool = True,
    rebuild: bool = False,
) -> "PreprocessedDataset":
    """Ground and retrieve every (question, choice) statement of a dataset, with a cache.

    Args:
        examples: objects (or mappings) with ``id``, ``question`` (str), ``choices`` (list
            of str).
        graph: the knowledge graph (the linker and retriever must use it).
        linker: an :class:`~kgfuse.kg.EntityLinker`.
        retriever: a :class:`~kgfuse.kg.PathRetriever`, a
            :class:`~kgfuse.kg.SubgraphRetriever` (node sets stored, edges rebuilt on read),
            anything else with ``retrieve_arrays`` and ``config`` (edges stored), or
            ``None`` to store groundings only. A retriever with ``needs_context`` (a
            relevance-ranked ``SubgraphRetriever``) gets each statement's ``(question,
            choice)`` (and, first, all of them through its ``prepare``); one whose
            ``fork_safe`` is false runs in this process whatever ``num_workers`` says.
        cache_dir: folder holding one sub-folder per cache key.
        dataset_hash: SHA-256 of the dataset file (e.g. ``hashlib.sha256(path.read_bytes())``);
            default: :func:`examples_hash`.
        num_workers: worker processes (``fork``); default ``os.cpu_count()``; ``<= 1`` runs
            in this process.
        chunk_size: examples per task.
        progress: show a tqdm progress bar over statements.
        rebuild: ignore an existing cache entry (and replace it).

    Returns:
        :class:`PreprocessedDataset` (attached to ``graph``); ``pre[i][j]`` is
        ``(Grounding, KGData)`` of example ``i``, choice ``j``; ``pre.cache_hit`` tells
        whether it was read from the cache.

    Raises:
        CacheFormatError: the cache entry exists but is incomplete, corrupt or malformed
            (see :meth:`PreprocessedDataset.load`); it is not rebuilt silently: delete it
            or pass ``rebuild=True``.
    """
    if linker.graph is not graph and linker.graph.hash != graph.hash:
        raise ValueError("the linker was built on a different graph than `graph`")
    if retriever is not None and retriever.graph is not graph and retriever.graph.hash != graph.hash:
        raise ValueError("the retriever was built on a different graph than `graph`")
    ids, questions, choices = _normalise(examples)
    dhash = dataset_hash or examples_hash(examples)
    rconf = retriever.config if retriever is not None else None
    key = cache_key(graph.hash, linker.config, rconf, dhash)
    root = Path(cache_dir)
    target = root / key
    if not rebuild and ((target / MANIFEST).is_file() or (target / "meta.json").is_file()):
        pre = PreprocessedDataset.load(target, graph=graph)
        pre.cache_hit = True
        logger.info("preprocess: cache hit %s", target)
        return pre

    t0 = time.perf_counter()
    # a cache miss: build the linker's and the retriever's indexes before workers fork
    for part in (linker, retriever):
        if callable(getattr(part, "build", None)):
            part.build()
    n = len(ids)
    statements = sum(len(c) for c in choices)
    mode = _edge_mode(retriever)
    state = {"linker": linker, "retriever": retriever, "questions": questions, "choices": choices,
             "edge_mode": mode, "dtypes": _dtypes(graph)}
    tasks = [(s, min(n, s + chunk_size)) for s in range(0, n, chunk_size)]
    workers = (os.cpu_count() or 1) if num_workers is None else int(num_workers)
    workers = max(1, min(workers, len(tasks)))
    if retriever is not None and not getattr(retriever, "fork_safe", True):
        workers = 1  # e.g. a relevance scorer: one text encoder and one memo, in this process
    if _needs_context(retriever) and callable(getattr(retriever, "prepare", None)):
        retriever.prepare([(q, c) for q, cs in zip(questions, choices) for c in cs])
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=root))
    sink = _Sink(tmp, state["dtypes"])
    bar = _progress(statements, progress, f"grounding{' + retrieval' if retriever is not None else ''}")
    try:
        if workers <= 1 or "fork" not in mp.get_all_start_methods():
            _init_worker(state)
            try:
                for t in tasks:
                    part = _work(t)
                    sink.add(part)
                    bar.update(sum(len(r) for r in part))
            finally:
                _STATE.clear()
        else:
            ctx = mp.get_context("fork")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(state,)) as pool:
                for part in pool.imap(_work, tasks):
                    sink.add(part)
                    bar.update(sum(len(r) for r in part))
        seconds = time.perf_counter() - t0
        if callable(getattr(retriever, "flush", None)):
            retriever.flush()
        _finish(tmp, target, key, ids, choices, sink, graph, linker, rconf, retriever, mode, dhash, seconds, workers)
    except BaseException:
        sink.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    pre = PreprocessedDataset.load(target, graph=graph)
    pre.cache_hit = False
    logger.info("preprocess: built %s (%d statements in %.1fs, %d workers)", target, statements, seconds, workers)
    return pre


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="stmt")


class _Sink:
    """Collects worker results: groundings in memory (small), node-set (and, for stored
    edges, edge) arrays streamed to ``arrays/*.npy`` as they arrive."""

    def __init__(self, tmp: Path, dtypes: Mapping[str, Any]) -> None:
        self.dir = tmp / "arrays"
        self.dir.mkdir()
        self.dtypes = dtypes
        self.groundings: list[list[dict[str, Any]]] = []
        self.streams: dict[str, _NpyStream] = {}
        self.counts: dict[str, list[int]] = {"node": [], "edge": [], "path": []}
        self.has_paths = False
        self.has_node_score = False
        self.max_path_node = -1

    def _stream(self, name: str, a: np.ndarray) -> None:
        st = self.streams.get(name)
        if st is None:
            st = self.streams[name] = _NpyStream(self.dir / f"{name}.npy", self.dtypes[name], a.shape[1:])
        st.write(a)

    def add(self, part) -> None:
        for rows in part:
            self.groundings.append([g for g, _ in rows])
            for _, a in rows:
                if a is None:
                    continue
                for k in _NODE_FIELDS:
                    self._stream(k, a[k])
                self.counts["node"].append(a["concept_ids"].shape[0])
                if _SCORE_FIELD in a:
                    if a[_SCORE_FIELD].shape != a["concept_ids"].shape:
                        raise ValueError(f"retriever returned {a[_SCORE_FIELD].shape[0]} node scores for "
                                         f"{a['concept_ids'].shape[0]} nodes")
                    self.has_node_score = True
                    self._stream(_SCORE_FIELD, a[_SCORE_FIELD])
                if "edge_type" in a:
                    for k in _EDGE_FIELDS:
                        self._stream(k, a[k])
                    self.counts["edge"].append(a["edge_type"].shape[0])
                if "paths" in a:
                    self.has_paths = True
                    for k in _PATH_FIELDS:
                        self._stream(k, a[k])
                    self.counts["path"].append(a["path_len"].shape[0])
                    if a["paths"].size:
                        self.max_path_node = max(self.max_path_node, int(a["paths"].max()))

    def close(self) -> None:
        for st in self.streams.values():
            st.close()
        # local node indices of paths are small: int16 whenever every one fits
        st = self.streams.get("paths")
        if st is not None and st.dtype.itemsize > 2 and self.max_path_node < 2**15:
            _narrow(st.path, np.int16)

    def abort(self) -> None:
        for st in self.streams.values():
            if not st.f.closed:
                st.f.close()


def _ptr(counts: list[int]) -> np.ndarray:
    p = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=p[1:])
    return p


def _finish(tmp: Path, target: Path, key: str, ids, choices, sink: _Sink, graph, linker, rconf, retriever,
            mode: str | None, dhash: str, seconds: float, workers: int) -> None:
    sink.close()
    groundings = sink.groundings
    choice_ptr = _ptr([len(c) for c in choices])
    stats: dict[str, Any] = {
        "statements": int(choice_ptr[-1]),
        "no_question_concept": sum(1 for rows in groundings for g in rows if not g["question_concepts"]),
        "no_answer_concept": sum(1 for rows in groundings for g in rows if not g["answer_concepts"]),
        "linked": sum(1 for rows in groundings for g in rows if g["question_concepts"] or g["answer_concepts"]),
        "seconds": round(seconds, 3),
        "workers": workers,
    }
    with open(tmp / "groundings.json", "w", encoding="utf-8") as f:
        json.dump({"ids": ids, "groundings": groundings}, f, ensure_ascii=False, separators=(",", ":"))
    arr_dir = sink.dir
    np.save(arr_dir / "choice_ptr.npy", choice_ptr, allow_pickle=False)
    max_hops = None
    if mode is not None:
        fields = list(_NODE_FIELDS) + (list(_EDGE_FIELDS) if mode == "stored" else [])
        probe = None
        if int(choice_ptr[-1]) == 0:
            kw = {"context": ("", "")} if _needs_context(retriever) else {}
            probe = retriever.retrieve_arrays(_empty_grounding(), **kw)
        if probe is not None and "paths" in probe:
            fields += list(_PATH_FIELDS)
            sink.has_paths = True
        if probe is not None and _SCORE_FIELD in probe:
            sink.has_node_score = True
        if sink.has_node_score:
            fields.append(_SCORE_FIELD)
            if _SCORE_FIELD in sink.streams and sink.streams[_SCORE_FIELD].rows != sum(sink.counts["node"]):
                raise ValueError("the retriever returned node_score for some statements and not for others")
        for name in fields:
            if name not in sink.streams:  # no statements
                shape = (2,) if name == "edge_index" else (probe[name].shape[1:] if probe and name in probe else ())
                np.save(arr_dir / f"{name}.npy", np.zeros((0, *shape), sink.dtypes[name]), allow_pickle=False)
        np.save(arr_dir / "node_ptr.npy", _ptr(sink.counts["node"]), allow_pickle=False)
        nodes = np.asarray(sink.counts["node"])
        stats.update(
            mean_nodes=round(float(nodes.mean()), 3) if nodes.size else 0.0,
            empty_subgraphs=int((nodes == 0).sum()),
        )
        if mode == "stored":
            np.save(arr_dir / "edge_ptr.npy", _ptr(sink.counts["edge"]), allow_pickle=False)
            stats["mean_edges"] = round(float(np.mean(sink.counts["edge"])), 3) if sink.counts["edge"] else 0.0
        if sink.has_paths:
            np.save(arr_dir / "path_ptr.npy", _ptr(sink.counts["path"]), allow_pickle=False)
            stats["mean_paths"] = round(float(np.mean(sink.counts["path"])), 3) if sink.counts["path"] else 0.0
            max_hops = int(np.load(arr_dir / "path_rels.npy", mmap_mode="r").shape[1])
    meta = {
        "format": FORMAT_VERSION,
        "key": key,
        "code": source_fingerprint("kgfuse.kg"),
        "graph_hash": graph.hash,
        "num_concepts": graph.num_concepts,
        "num_relations": graph.num_relations,
        "linker": linker.config,
        "retriever": rconf,
        "dataset_hash": dhash,
        "num_examples": len(ids),
        "has_subgraphs": mode is not None,
        "edges": mode,
        "has_paths": sink.has_paths,
        "has_node_score": sink.has_node_score,
        "max_hops": max_hops,
        "stats": stats,
    }
    with open(tmp / "meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    # last: a folder with a manifest is complete, and the manifest records what was written
    write_manifest(tmp, list_files(tmp), MANIFEST, kind=_MANIFEST_KIND)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def _empty_grounding() -> Grounding:
    return Grounding([], [], [])


# --------------------------------------------------------------------------- reading
class PreprocessedDataset:
    """A preprocessed dataset read from its cache folder (no spaCy needed).

    ``pre[i]`` is the list, over the choices of example ``i``, of ``(Grounding, KGData)``;
    ``pre[i][j]`` one statement. ``pre.grounding(i, j)`` and ``pre.arrays(i, j)`` give the
    parts without building tensors. Edges are rebuilt on access (see the module notes);
    ``"induced"`` caches need the graph (``load(path, graph=kg)``, done by
    :func:`preprocess_dataset`). Without stored subgraphs (``retriever=None`` at
    preprocessing time) the ``KGData`` is ``None`` unless a retriever is attached with
    :meth:`with_retriever`.

    Attributes:
        path: the cache folder.
        meta: the content of ``meta.json``.
        ids: example ids.
        graph: the attached graph, or ``None``.
        cache_hit: whether :func:`preprocess_dataset` read it from the cache.
    """

    def __init__(self, path: Path, meta: dict[str, Any], ids: list[str], groundings: list[list[dict[str, Any]]],
                 arrays: dict[str, np.ndarray], graph: "KnowledgeGraph | None" = None) -> None:
        self.path = path
        self.meta = meta
        self.ids = ids
        self._groundings = groundings
        self._arrays = arrays
        self._retriever: Any | None = None
        self._rebuilder: Any | None = None
        self.graph = graph
        self.cache_hit = False
        if graph is not None and meta.get("edges") == "induced" and graph.num_edges > 100_000:
            graph.pair_index()  # built once here, before DataLoader workers fork

    @classmethod
    def load(cls, path: str | os.PathLike, graph: "KnowledgeGraph | None" = None, *,
             mmap: bool = True, verify: bool = True) -> "PreprocessedDataset":
        """Open and validate a cache folder written by :func:`preprocess_dataset`.

        Args:
            path: the cache folder (``cache_dir/<key>``).
            graph: the graph it was made from (checked by hash); needed to rebuild the
                edges of ``"induced"`` caches (:class:`~kgfuse.kg.SubgraphRetriever`).
            mmap: memory-map the arrays.
            verify: compare every file's content hash with ``manifest.json`` (one read of
                the folder). The manifest's presence and the file sizes are always checked.

        Raises:
            FileNotFoundError: neither ``meta.json`` nor ``manifest.json``: not a cache folder.
            CacheFormatError: another format version; ``manifest.json`` missing (a partial
                folder); a file missing, truncated or changed since it was written; or an
                array whose shape, dtype, offsets or values do not fit. The message names
                the file (and field) and says how to rebuild.
            ValueError: ``graph`` is not the graph of the cache.
        """
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            if (path / MANIFEST).is_file():
                raise CacheFormatError(f"{meta_file}: missing (listed in {MANIFEST}); {_rebuild_hint(path)}")
            raise FileNotFoundError(f"{meta_file}: not a preprocessed dataset (meta.json missing)")
        try:
            with open(meta_file, encoding="utf-8") as f:
                meta = json.load(f)
        except ValueError as e:
            raise CacheFormatError(f"{meta_file}: not valid JSON ({e}); {_rebuild_hint(path)}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise CacheFormatError(
                f"{meta_file}: field 'format' is {found!r}, expected {FORMAT_VERSION!r} (a cache of another "
                "kgfuse version, or a damaged one; delete the folder, preprocess_dataset rebuilds it under a new key)"
            )
        manifest = verify_manifest(path, MANIFEST, kind=_MANIFEST_KIND, error=CacheFormatError,
                                   hint=_rebuild_hint(path), hashes=verify)
        gfile = path / "groundings.json"
        try:
            with open(gfile, encoding="utf-8") as f:
                g = json.load(f)
        except (OSError, ValueError) as e:
            raise CacheFormatError(f"{gfile}: cannot read ({e})") from None
        arrays = {}
        listed = sorted(rel for rel in manifest["files"] if rel.startswith("arrays/") and rel.endswith(".npy"))
        for p in (path / rel for rel in listed):
            try:
                arrays[p.stem] = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise CacheFormatError(f"{p}: not a readable .npy array ({e})") from None
        _validate(path, meta, g, arrays)
        if graph is not None and graph.hash != meta["graph_hash"]:
            raise ValueError(
                f"{meta_file}: made on graph {meta['graph_hash'][:12]}, the given graph is {graph.hash[:12]}"
            )
        return cls(path, meta, g["ids"], g["groundings"], arrays, graph)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_statements(self) -> int:
        return int(self._arrays["choice_ptr"][-1])

    @property
    def num_linked(self) -> int:
        """Statements with at least one question or answer concept (``meta["stats"]["linked"]``,
        counted when the cache was built; counted from the groundings for older caches)."""
        n = (self.meta.get("stats") or {}).get("linked")
        if isinstance(n, int):
            return n
        return sum(1 for rows in self._groundings for g in rows if g.get("question_concepts") or g.get("answer_concepts"))

    @property
    def has_subgraphs(self) -> bool:
        return bool(self.meta["has_subgraphs"]) or self._retriever is not None

    def num_choices(self, i: int) -> int:
        return len(self._groundings[i])

    def concepts(self, limit: int | None = None) -> np.ndarray:
        """Sorted distinct concept ids of the first ``limit`` examples (all by default): every
        node of the stored subgraphs, or, without subgraphs (or with a retriever attached),
        every grounded question and answer concept."""
        n = len(self) if limit is None else min(int(limit), len(self))
        if self.meta["has_subgraphs"] and self._retriever is None:
            a = self._arrays
            s = int(a["choice_ptr"][n])
            return np.unique(np.asarray(a["concept_ids"][: int(a["node_ptr"][s])], dtype=np.int64))
        out: set[int] = set()
        for i in range(n):
            for j in range(self.num_choices(i)):
                if self._retriever is not None:
                    out.update(int(c) for c in self.arrays(i, j)["concept_ids"])
                else:
                    g = self._groundings[i][j]
                    out.update(int(c) for c in g.get("question_concepts", ()))
                    out.update(int(c) for c in g.get("answer_concepts", ()))
        return np.array(sorted(out), dtype=np.int64)

    def grounding(self, i: int, j: int) -> Grounding:
        return Grounding.from_dict(self._groundings[i][j])

    def arrays(self, i: int, j: int) -> dict[str, np.ndarray] | None:
        """Stored (or, with :meth:`with_retriever`, recomputed) subgraph arrays (int64;
        ``node_score``, when stored, float32)."""
        if self._retriever is not None:
            return self._retriever.retrieve_arrays(self.grounding(i, j))
        if not self.meta["has_subgraphs"]:
            return None
        if not 0 <= j < self.num_choices(i):
            raise IndexError(f"example {i} has {self.num_choices(i)} choices, not {j + 1}")
        out = self.node_arrays(i, j)
        mode = self.meta["edges"]
        a = self._arrays
        if mode == "stored":
            s = int(a["choice_ptr"][i]) + j
            e0, e1 = int(a["edge_ptr"][s]), int(a["edge_ptr"][s + 1])
            out["edge_index"] = np.asarray(a["edge_index"][e0:e1], dtype=np.int64).T.copy()
            out["edge_type"] = np.asarray(a["edge_type"][e0:e1], dtype=np.int64)
        elif mode == "paths":
            from .retrieval import path_edges

            out["edge_index"], out["edge_type"] = path_edges(
                out["concept_ids"], out["paths"], out["path_rels"], out["path_len"], self.meta["num_relations"]
            )
        else:  # induced
            if self.graph is None:
                raise ValueError(
                    f"{self.path}: this cache stores node sets whose edges are rebuilt from the graph; open it with "
                    f"PreprocessedDataset.load(path, graph=KnowledgeGraph.load(...)) (graph hash "
                    f"{self.meta['graph_hash'][:12]})"
                )
            if self._rebuilder is None:
                from .retrieval import EdgeRebuilder

                self._rebuilder = EdgeRebuilder(self.graph)
            out["edge_index"], out["edge_type"] = self._rebuilder.induced(out["concept_ids"])
        return out

    @property
    def has_node_score(self) -> bool:
        """Whether the stored subgraphs carry ``node_score`` (a relevance-ranked retriever)."""
        return bool(self.meta.get("has_node_score", False))

    def node_arrays(self, i: int, j: int) -> dict[str, np.ndarray]:
        """The stored node set of statement (i, j) (int64): ``concept_ids``, ``node_type``,
        ``node_score`` (float32) when stored, and, for paths, ``paths``, ``path_rels``,
        ``path_len``; no edges."""
        if not self.meta["has_subgraphs"]:
            raise ValueError(f"{self.path}: no subgraphs stored (preprocessed with retriever=None)")
        a = self._arrays
        s = int(a["choice_ptr"][i]) + j
        n0, n1 = int(a["node_ptr"][s]), int(a["node_ptr"][s + 1])
        out = {k: np.asarray(a[k][n0:n1], dtype=np.int64) for k in _NODE_FIELDS}
        if self.has_node_score:
            out[_SCORE_FIELD] = np.array(a[_SCORE_FIELD][n0:n1], dtype=np.float32)  # a copy: mmap is read-only
        if self.meta["has_paths"]:
            p0, p1 = int(a["path_ptr"][s]), int(a["path_ptr"][s + 1])
            for k in _PATH_FIELDS:
                out[k] = np.asarray(a[k][p0:p1], dtype=np.int64)
        return out

    def statement(self, i: int, j: int) -> tuple[Grounding, "KGData | None"]:
        arrays = self.arrays(i, j)
        if arrays is None:
            return self.grounding(i, j), None
        from .retrieval import arrays_to_kgdata

        return self.grounding(i, j), arrays_to_kgdata(arrays)

    def __getitem__(self, i: int) -> list[tuple[Grounding, "KGData | None"]]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"example index {i} out of range for {len(self)} examples")
        i = i % len(self)
        return [self.statement(i, j) for j in range(self.num_choices(i))]

    def __iter__(self) -> Iterator[list[tuple[Grounding, "KGData | None"]]]:
        for i in range(len(self)):
            yield self[i]

    def with_retriever(self, retriever: Any) -> "PreprocessedDataset":
        """A view that cuts subgraphs from the stored groundings with ``retriever``.

        The retriever's graph must be the graph the groundings were made on (same hash).
        """
        if retriever.graph.hash != self.meta["graph_hash"]:
            raise ValueError(
                f"{self.path}: groundings were made on graph {self.meta['graph_hash'][:12]}, "
                f"the retriever uses graph {retriever.graph.hash[:12]}"
            )
        if _needs_context(retriever):
            raise ValueError(
                f"{retriever!r} reads the statement text, which the cache does not store; give the retriever to "
                "preprocess_dataset(examples, ...) instead"
            )
        view = PreprocessedDataset(self.path, self.meta, self.ids, self._groundings, self._arrays, retriever.graph)
        view._retriever = retriever
        view.cache_hit = self.cache_hit
        return view

    def __repr__(self) -> str:
        return (
            f"PreprocessedDataset(path={str(self.path)!r}, examples={len(self)}, statements={self.num_statements}, "
            f"subgraphs={self.has_subgraphs}, cache_hit={self.cache_hit})"
        )


# --------------------------------------------------------------------------- validation
def _validate(path: Path, meta: Mapping[str, Any], g: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Check a cache folder's structure; raise :class:`CacheFormatError` naming file and field."""

    def fail(file: str, field: str, msg: str) -> None:
        raise CacheFormatError(f"{path / file}: field {field!r}: {msg} (delete the folder to rebuild it)")

    for field, kind in (("graph_hash", str), ("num_examples", int), ("num_concepts", int), ("num_relations", int),
                        ("has_subgraphs", bool), ("has_paths", bool)):
        if not isinstance(meta.get(field), kind):
            fail("meta.json", field, f"missing or not {kind.__name__}")
    has_score = meta.get("has_node_score", False)  # absent in caches written before the field existed
    if not isinstance(has_score, bool):
        fail("meta.json", "has_node_score", "not bool")
    if has_score and not meta["has_subgraphs"]:
        fail("meta.json", "has_node_score", "node scores without stored subgraphs")
    mode = meta.get("edges")
    if meta["has_subgraphs"] and mode not in EDGE_MODES:
        fail("meta.json", "edges", f"{mode!r} is not one of {EDGE_MODES}")
    n_ex = meta["num_examples"]
    if not isinstance(g, dict) or not isinstance(g.get("ids"), list) or not isinstance(g.get("groundings"), list):
        fail("groundings.json", "ids/groundings", "missing or not lists")
    if len(g["ids"]) != n_ex or len(g["groundings"]) != n_ex:
        fail("groundings.json", "groundings", f"{len(g['groundings'])} examples, meta.json says {n_ex}")

    def arr(name: str, ndim: int, width: int | None = None) -> np.ndarray:
        file = f"arrays/{name}.npy"
        if name not in arrays:
            fail(file, name, "file missing")
        a = arrays[name]
        if a.dtype.kind not in "iu":
            fail(file, name, f"dtype {a.dtype} is not an integer type")
        if a.ndim != ndim or (width is not None and a.shape[1] != width):
            want = "[n]" if ndim == 1 else f"[n, {width if width is not None else '?'}]"
            fail(file, name, f"shape {tuple(a.shape)}, expected {want}")
        return a

    def ptr(name: str, size: int, total: int) -> np.ndarray:
        p = np.asarray(arr(name, 1))
        if p.shape[0] != size + 1:
            fail(f"arrays/{name}.npy", name, f"{p.shape[0]} offsets, expected {size + 1}")
        if size + 1 and (p[0] != 0 or p[-1] != total or (np.diff(p) < 0).any()):
            fail(f"arrays/{name}.npy", name, f"offsets must rise from 0 to {total}")
        return p

    def in_range(name: str, a: np.ndarray, lo: Any, hi: Any) -> None:
        for i in range(0, a.shape[0], _CHUNK):  # chunks: bounded temporaries on big caches
            c = np.asarray(a[i : i + _CHUNK])
            if c.size and (c.min() < lo or c.max() >= hi):
                fail(f"arrays/{name}.npy", name, "values outside the valid range")

    def local(name: str, a: np.ndarray, counts: np.ndarray, rows_ptr: np.ndarray) -> None:
        """Every local node index of a row lies in [0, nodes of its statement)."""
        lim = np.repeat(counts, np.diff(rows_ptr))
        for i in range(0, a.shape[0], _CHUNK):
            c = np.asarray(a[i : i + _CHUNK])
            if c.size and (c.min() < 0 or (c.max(axis=1) >= lim[i : i + _CHUNK]).any()):
                fail(f"arrays/{name}.npy", name, "local node index outside its statement's nodes")

    counts = [len(rows) if isinstance(rows, list) else -1 for rows in g["groundings"]]
    n_st = sum(counts)
    cp = ptr("choice_ptr", n_ex, n_st)
    if not np.array_equal(np.diff(cp), counts):
        fail("arrays/choice_ptr.npy", "choice_ptr", "choices per example differ from groundings.json")
    if not meta["has_subgraphs"]:
        return
    cid, nt = arr("concept_ids", 1), arr("node_type", 1)
    if cid.shape != nt.shape:
        fail("arrays/node_type.npy", "node_type", f"{nt.shape[0]} entries, concept_ids has {cid.shape[0]}")
    npt = ptr("node_ptr", n_st, cid.shape[0])
    in_range("concept_ids", cid, 0, meta["num_concepts"])
    in_range("node_type", nt, 0, 3)
    if has_score:
        file = f"arrays/{_SCORE_FIELD}.npy"
        if _SCORE_FIELD not in arrays:
            fail(file, _SCORE_FIELD, "file missing")
        sc = arrays[_SCORE_FIELD]
        if sc.dtype.kind != "f" or sc.ndim != 1:
            fail(file, _SCORE_FIELD, f"dtype {sc.dtype}, shape {tuple(sc.shape)}; expected a float array [n]")
        if sc.shape != cid.shape:
            fail(file, _SCORE_FIELD, f"{sc.shape[0]} entries, concept_ids has {cid.shape[0]}")
        for i in range(0, sc.shape[0], _CHUNK):
            if not np.isfinite(np.asarray(sc[i : i + _CHUNK])).all():
                fail(file, _SCORE_FIELD, "values that are not finite")
    n_nodes = np.diff(npt)
    if mode == "stored":
        ei, et = arr("edge_index", 2, 2), arr("edge_type", 1)
        if et.shape[0] != ei.shape[0]:
            fail("arrays/edge_type.npy", "edge_type", f"{et.shape[0]} entries, edge_index has {ei.shape[0]}")
        ept = ptr("edge_ptr", n_st, ei.shape[0])
        in_range("edge_type", et, 0, meta["num_relations"])
        local("edge_index", ei, n_nodes, ept)
    if meta["has_paths"]:
        H = meta.get("max_hops")
        if not isinstance(H, int) or H < 1:
            fail("meta.json", "max_hops", f"{H!r} is not a positive int")
        pa, pr, pl = arr("paths", 2, H + 1), arr("path_rels", 2, H), arr("path_len", 1)
        if not pa.shape[0] == pr.shape[0] == pl.shape[0]:
            fail("arrays/path_len.npy", "paths/path_rels/path_len", "different numbers of paths")
        ppt = ptr("path_ptr", n_st, pa.shape[0])
        in_range("path_len", pl, 0, H + 1)
        in_range("path_rels", pr, 0, 2 * meta["num_relations"])
        local("paths", pa, n_nodes, ppt)
    elif mode == "paths":
        fail("meta.json", "has_paths", "edge mode 'paths' without stored paths")
