"""The linker's pattern cache: the pattern index of a large graph kept as a verified
``.npz`` file (no pickles) in ``$KGFUSE_HOME/cache/linker``, so that a new
:class:`~kgfuse.kg.linking.EntityLinker` reads it instead of building it (see
``EntityLinker(pattern_cache=...)``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["PatternCacheError", "default_pattern_cache_dir", "PATTERN_CACHE_FORMAT", "PATTERN_CACHE_MIN_CONCEPTS"]

#: Format of the pattern cache files (``<key>.npz``); part of their key.
PATTERN_CACHE_FORMAT = 1

#: With ``pattern_cache="auto"`` (the default), graphs with fewer concepts build their
#: patterns in memory only (a few milliseconds).
PATTERN_CACHE_MIN_CONCEPTS = 20_000


class PatternCacheError(ValueError):
    """A linker pattern cache file is unreadable, damaged or made for other settings."""


def default_pattern_cache_dir() -> Path:
    """``$KGFUSE_HOME/cache/linker`` (``~/.cache/kgfuse/cache/linker`` by default)."""
    env = os.environ.get("KGFUSE_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        home = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "kgfuse"
    return home / "cache" / "linker"


def _spacy_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spacy")
    except PackageNotFoundError:  # pragma: no cover - spaCy imported from a source tree
        import spacy

        return spacy.__version__


def _pack_keys(keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings -> (UTF-8 bytes of all of them, offsets [n + 1])."""
    enc = [k.encode("utf-8") for k in keys]
    off = np.zeros(len(enc) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in enc], out=off[1:])
    return np.frombuffer(b"".join(enc), dtype=np.uint8), off


def _unpack_keys(blob: np.ndarray, off: np.ndarray) -> list[str]:
    b = blob.tobytes()
    o = off.tolist()
    return [b[o[i]:o[i + 1]].decode("utf-8") for i in range(len(o) - 1)]


def _digest(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


def _write_patterns(path: Path, key: str, idx: Mapping[str, Any]) -> None:
    """Write a pattern index as ``path`` (``.npz``, no pickles; atomic replace)."""
    se_keys, se_ids = list(idx["surface_extra"]), list(idx["surface_extra"].values())
    li_keys, li_ids = list(idx["lemma_index"]), list(idx["lemma_index"].values())
    se_blob, se_off = _pack_keys(se_keys)
    li_blob, li_off = _pack_keys(li_keys)
    arrays = {
        "key": np.frombuffer(key.encode("ascii"), dtype=np.uint8),
        "allowed": np.asarray(idx["allowed"], dtype=bool),
        "max_tokens": np.asarray([idx["max_tokens"]], dtype=np.int64),
        "surface_keys": se_blob, "surface_off": se_off, "surface_ids": np.asarray(se_ids, dtype=np.int64),
        "lemma_keys": li_blob, "lemma_off": li_off, "lemma_ids": np.asarray(li_ids, dtype=np.int64),
    }
    arrays["sha256"] = _digest(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_patterns(path: Path, key: str, num_concepts: int) -> dict[str, Any]:
    """Read and verify a file of :func:`_write_patterns`.

    Raises:
        PatternCacheError: unreadable, a checksum mismatch, another key or malformed arrays.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception as e:  # a truncated zip, a bad header, an object array...
        raise PatternCacheError(f"linker pattern cache {path} is unreadable ({type(e).__name__}: {e})") from None
    names = {"key", "allowed", "max_tokens", "surface_keys", "surface_off", "surface_ids",
             "lemma_keys", "lemma_off", "lemma_ids", "sha256"}
    if set(arrays) != names:
        raise PatternCacheError(f"linker pattern cache {path} has arrays {sorted(arrays)}, expected {sorted(names)}")
    stored = arrays.pop("sha256")
    if not np.array_equal(stored, _digest(arrays)):
        raise PatternCacheError(f"linker pattern cache {path} is damaged (checksum mismatch)")
    if arrays["key"].tobytes().decode("ascii", "replace") != key:
        raise PatternCacheError(f"linker pattern cache {path} was written for other settings")
    allowed = arrays["allowed"]
    ok = allowed.dtype == bool and allowed.shape == (num_concepts,)
    for part in ("surface", "lemma"):
        off, ids, blob = arrays[f"{part}_off"], arrays[f"{part}_ids"], arrays[f"{part}_keys"]
        ok = ok and off.ndim == 1 and off.size == ids.size + 1 and off[0] == 0 and int(off[-1]) == blob.size
        ok = ok and bool((np.diff(off) >= 0).all()) and (ids.size == 0 or (ids.min() >= 0 and ids.max() < num_concepts))
    if not ok:
        raise PatternCacheError(f"linker pattern cache {path} has malformed arrays")
    try:
        surface = dict(zip(_unpack_keys(arrays["surface_keys"], arrays["surface_off"]), arrays["surface_ids"].tolist()))
        lemma = dict(zip(_unpack_keys(arrays["lemma_keys"], arrays["lemma_off"]), arrays["lemma_ids"].tolist()))
    except UnicodeDecodeError:
        raise PatternCacheError(f"linker pattern cache {path} has malformed keys") from None
    return {"allowed": allowed, "surface_extra": surface, "lemma_index": lemma,
            "max_tokens": int(arrays["max_tokens"][0])}
