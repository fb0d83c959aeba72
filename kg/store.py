"""The compiled on-disk format of a :class:`~kgfuse.kg.graph.KnowledgeGraph`.

A compiled graph is a directory:

============== ================================================================
``graph.json`` format name and version, sizes, relation names, ``meta`` (loader and its
               parameters, load report), the content :attr:`~KnowledgeGraph.hash`, and
               for every array file its dtype, shape and byte size
``concepts.npy`` uint8: the UTF-8 bytes of the concept names joined by ``"\\n"``
``head.npy``     int64 ``[E]``, canonical order (sorted by head, relation, tail)
``relation.npy`` int64 ``[E]``
``tail.npy``     int64 ``[E]``
``weight.npy``   float32 ``[E]``
``in_ptr.npy``   int64 ``[N+1]``: in-CSR offsets
``in_order.npy`` int64 ``[E]``: edge ids sorted by tail (stable)
============== ================================================================

Arrays are plain ``.npy`` files (no pickle: they are read with ``allow_pickle=False``) and
are memory-mapped on load, so opening a full ConceptNet costs little more than decoding
the concept names. Writing is atomic: files go to a temporary sibling directory that is
renamed into place. Loading checks the format, every file's size, dtype and shape, the
canonical edge order and the in-CSR, and (``verify=True``) recomputes the content hash;
any problem raises :class:`KGFormatError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .graph import KnowledgeGraph

__all__ = ["KGFormatError", "save_graph", "load_graph", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "kgfuse-compiled-graph"
FORMAT_VERSION = 1

_ARRAYS = {  # name -> dtype
    "concepts": "|u1",
    "head": "<i8",
    "relation": "<i8",
    "tail": "<i8",
    "weight": "<f4",
    "in_ptr": "<i8",
    "in_order": "<i8",
}


class KGFormatError(ValueError):
    """A compiled graph directory is missing, truncated, corrupt or of another version."""


def _check_json(meta: Any) -> str:
    try:
        return json.dumps(meta, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f"graph.meta must be JSON-serialisable to be saved: {e}") from None


def save_graph(kg: KnowledgeGraph, directory: str | os.PathLike) -> Path:
    """Write ``kg`` in the compiled format to ``directory`` (atomically).

    An existing compiled graph at ``directory`` is replaced; an existing directory that is
    not a compiled graph (no ``graph.json``) and not empty is refused.

    Returns:
        The directory path.
    """
    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise FileExistsError(f"{directory} exists and is not a directory")
        if any(directory.iterdir()) and not (directory / "graph.json").is_file():
            raise FileExistsError(f"{directory} is a non-empty directory without graph.json; refusing to "
                                  "overwrite something that is not a compiled graph")
    meta_text = _check_json(kg.meta)
    names = kg._concepts  # noqa: SLF001  (the store is the graph's own serializer)
    blob = "\n".join(names).encode("utf-8")
    if blob.count(b"\n") != max(len(names) - 1, 0):
        bad = next(x for x in names if "\n" in x)
        raise ValueError(f"concept name contains a newline and cannot be saved: {bad!r}")
    arrays = {
        "concepts": np.frombuffer(blob, dtype=np.uint8),
        "head": kg.head,
        "relation": kg.relation,
        "tail": kg.tail,
        "weight": kg.weight,
        "in_ptr": kg.in_ptr,
        "in_order": kg.in_order,
    }
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        files: dict[str, Any] = {}
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr, dtype=np.dtype(_ARRAYS[name]))
            fn = tmp / f"{name}.npy"
            with open(fn, "wb") as f:
                np.save(f, arr, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            files[f"{name}.npy"] = {"dtype": _ARRAYS[name], "shape": list(arr.shape), "bytes": fn.stat().st_size}
        header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "hash": kg.hash,
            "num_concepts": kg.num_concepts,
            "num_relations": kg.num_relations,
            "num_edges": kg.num_edges,
            "relations": list(kg.relations),
            "files": files,
            "meta": json.loads(meta_text),
        }
        with open(tmp / "graph.json", "w", encoding="utf-8") as f:
            json.dump(header, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
            old.rmdir()
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _fail(path: Path, what: str) -> KGFormatError:
    return KGFormatError(f"{path}: {what}")


def _read_header(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise _fail(directory, "no such directory (expected a compiled graph written by KnowledgeGraph.save)")
    hp = directory / "graph.json"
    if not hp.is_file():
        raise _fail(hp, "missing (not a compiled kgfuse graph directory)")
    try:
        header = json.loads(hp.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(hp, f"corrupt or truncated JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise _fail(hp, f"not a compiled kgfuse graph (format={header.get('format') if isinstance(header, dict) else None!r})")
    if header.get("version") != FORMAT_VERSION:
        raise _fail(hp, f"format version {header.get('version')!r} is not supported (this kgfuse reads version "
                        f"{FORMAT_VERSION}); recompile the graph from its source")
    for key, typ in (("hash", str), ("num_concepts", int), ("num_relations", int), ("num_edges", int),
                     ("relations", list), ("files", dict), ("meta", dict)):
        if not isinstance(header.get(key), typ):
            raise _fail(hp, f"field {key!r} is missing or not a {typ.__name__}")
    return header


def _load_array(directory: Path, name: str, entry: Any, expected_shape: tuple[int, ...] | None,
                mmap: bool) -> np.ndarray:
    fn = directory / f"{name}.npy"
    if not fn.is_file():
        raise _fail(fn, "missing")
    if not isinstance(entry, dict):
        raise _fail(directory / "graph.json", f"no entry for {name}.npy in 'files'")
    size = fn.stat().st_size
    if size != entry.get("bytes"):
        raise _fail(fn, f"size is {size} bytes, graph.json records {entry.get('bytes')} "
                        f"({'truncated' if isinstance(entry.get('bytes'), int) and size < entry['bytes'] else 'corrupt'})")
    try:
        arr = np.load(fn, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError on bad headers
        raise _fail(fn, f"unreadable .npy file ({type(e).__name__}: {e})") from None
    if arr.dtype.str != _ARRAYS[name] and arr.dtype != np.dtype(_ARRAYS[name]):
        raise _fail(fn, f"dtype {arr.dtype.str}, expected {_ARRAYS[name]}")
    if arr.ndim != 1:
        raise _fail(fn, f"shape {arr.shape}, expected one dimension")
    if expected_shape is not None and arr.shape != expected_shape:
        raise _fail(fn, f"shape {arr.shape}, expected {expected_shape}")
    if list(arr.shape) != entry.get("shape"):
        raise _fail(fn, f"shape {list(arr.shape)} differs from graph.json's {entry.get('shape')}")
    return arr


def load_graph(directory: str | os.PathLike, mmap: bool = True, verify: bool = True) -> KnowledgeGraph:
    """Read a graph written by :func:`save_graph`.

    Args:
        directory: the compiled graph directory.
        mmap: memory-map the edge arrays (read-only) instead of reading them into memory.
        verify: recompute the content hash and compare it with the stored one, and check
            the in-CSR; costs a pass over the arrays (about 0.3 s for a full ConceptNet).
            Structural checks (sizes, dtypes, shapes, id ranges, canonical order) always run.

    Raises:
        KGFormatError: a file is missing, truncated or corrupt, or the hash differs.
    """
    directory = Path(directory)
    header = _read_header(directory)
    n, r, m = header["num_concepts"], header["num_relations"], header["num_edges"]
    files = header["files"]
    shapes = {"head": (m,), "relation": (m,), "tail": (m,), "weight": (m,), "in_ptr": (n + 1,),
              "in_order": (m,), "concepts": None}
    arrs = {name: _load_array(directory, name, files.get(f"{name}.npy"), shapes[name], mmap) for name in _ARRAYS}
    cfile = directory / "concepts.npy"
    try:
        text = arrs["concepts"].tobytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(cfile, f"concept names are not valid UTF-8 ({e})") from None
    names = text.split("\n") if (n or text) else []
    if len(names) != n:
        raise _fail(cfile, f"holds {len(names)} concept names, graph.json records {n}")
    relations = header["relations"]
    if len(relations) != r or not all(isinstance(x, str) for x in relations):
        raise _fail(directory / "graph.json", f"'relations' has {len(relations)} entries, expected {r} strings")

    head, rel, tail, in_ptr, in_order = arrs["head"], arrs["relation"], arrs["tail"], arrs["in_ptr"], arrs["in_order"]
    if m:
        for name, a, hi in (("head", head, n), ("tail", tail, n), ("relation", rel, r), ("in_order", in_order, m)):
            lo_v, hi_v = int(a.min()), int(a.max())
            if lo_v < 0 or hi_v >= hi:
                raise _fail(directory / f"{name}.npy", f"id {hi_v if hi_v >= hi else lo_v} outside [0, {hi})")
        # canonical order: (head, relation, tail) strictly increasing
        dh, dr, dt = np.diff(head), np.diff(rel), np.diff(tail)
        ok = (dh > 0) | ((dh == 0) & ((dr > 0) | ((dr == 0) & (dt > 0))))
        if not bool(ok.all()):
            bad = int(np.flatnonzero(~ok)[0]) + 1
            raise _fail(directory / "head.npy", f"edges not in canonical (head, relation, tail) order at edge {bad}")
    if int(in_ptr[0]) != 0 or int(in_ptr[-1]) != m:
        raise _fail(directory / "in_ptr.npy", f"offsets must run from 0 to {m}")
    if verify and m:
        if bool((np.diff(in_ptr) < 0).any()):
            raise _fail(directory / "in_ptr.npy", "offsets decrease")
        t = tail[in_order]
        dt, do = np.diff(t), np.diff(in_order)
        if not bool(((dt > 0) | ((dt == 0) & (do > 0))).all()):
            raise _fail(directory / "in_order.npy", "not the edge ids sorted by tail")
        counts = np.bincount(tail, minlength=n)
        if not np.array_equal(np.diff(in_ptr), counts):
            raise _fail(directory / "in_ptr.npy", "offsets do not match the in-degrees of tail.npy")

    kg = KnowledgeGraph(
        names, relations, head, rel, tail, arrs["weight"],
        meta=header["meta"], _canonical=True, _in_csr=(in_ptr, in_order), _hash=None if verify else header["hash"],
    )
    if verify and kg.hash != header["hash"]:
        raise _fail(directory, f"content hash {kg.hash[:16]}... differs from the recorded {header['hash'][:16]}...: "
                               "the arrays or names were modified or corrupted")
    return kg
