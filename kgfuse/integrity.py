"""Content manifests: the size and hash of every file of a saved artefact, checked on read.

A manifest is a small JSON file next to the files it describes::

    {"format": "kgfuse-manifest-v1", "kind": "checkpoint", "algorithm": "xxh3_128",
     "files": {"model/model.safetensors": {"bytes": 1234, "hash": "9f0c..."}, ...}}

It is written after every file it lists (atomically: temporary file, ``fsync``, rename), so a
folder whose manifest exists was written completely, and :func:`verify_manifest` finds any
file that was truncated, extended, deleted or changed since. Sizes are compared first (a
``stat`` each), then contents are hashed in 4 MiB reads.

The hash is ``xxh3_128`` when the ``xxhash`` package is importable (a dependency of
torch-geometric, hence of kgfuse: about 6 GB/s), else ``sha256`` (about 0.7-1.5 GB/s with
SHA extensions); the manifest records which, and either is read back. These hashes detect
accidental damage (bad disks, partial copies, bit flips); they are not a signature.

Used by the preprocessing cache (:mod:`kgfuse.kg.preprocess`), training checkpoints
(:mod:`kgfuse.tasks.checkpoint`) and saved models (:mod:`kgfuse.fusion.modeling`:
:data:`MODEL_MANIFEST` next to ``config.json``). This module imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

__all__ = ["MANIFEST_FORMAT", "ALGORITHMS", "MODEL_MANIFEST", "default_algorithm", "file_hash", "list_files",
           "write_manifest", "read_manifest", "verify_manifest", "model_files", "write_model_manifest",
           "verify_model_manifest"]

MANIFEST_FORMAT = "kgfuse-manifest-v1"
ALGORITHMS = ("xxh3_128", "sha256")
_BLOCK = 1 << 22


def _xxhash():
    try:
        import xxhash
    except ImportError:  # pragma: no cover - torch-geometric installs it
        return None
    return xxhash


def default_algorithm() -> str:
    """``"xxh3_128"`` when ``xxhash`` is installed, else ``"sha256"``."""
    return "xxh3_128" if _xxhash() is not None else "sha256"


def _hasher(algorithm: str):
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "xxh3_128":
        xx = _xxhash()
        if xx is None:  # pragma: no cover - torch-geometric installs it
            raise RuntimeError("this manifest uses xxh3_128 hashes: install the xxhash package to verify it")
        return xx.xxh3_128()
    raise ValueError(f"unknown hash algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")


def file_hash(path: str | os.PathLike, algorithm: str | None = None) -> str:
    """Hex digest of the bytes of ``path`` (streamed in 4 MiB blocks)."""
    h = _hasher(algorithm or default_algorithm())
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def list_files(root: str | os.PathLike, exclude: Iterable[str] = ()) -> list[str]:
    """Every regular file under ``root`` as a sorted relative POSIX path, without ``exclude``."""
    root = Path(root)
    skip = set(exclude)
    out = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(root).as_posix()
            if rel not in skip:
                out.append(rel)
    return sorted(out)


def write_manifest(root: str | os.PathLike, files: Iterable[str], name: str, *, kind: str,
                   algorithm: str | None = None) -> Path:
    """Hash ``files`` (paths relative to ``root``) and write the manifest ``root/name`` atomically.

    Returns:
        The manifest path.
    """
    root = Path(root)
    algorithm = algorithm or default_algorithm()
    entries: dict[str, Any] = {}
    for rel in sorted(set(files)):
        _check_rel(rel)
        p = root / rel
        entries[rel] = {"bytes": p.stat().st_size, "hash": file_hash(p, algorithm)}
    body = {"format": MANIFEST_FORMAT, "kind": kind, "algorithm": algorithm, "files": entries}
    target = root / name
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def _check_rel(rel: Any) -> None:
    p = PurePosixPath(rel) if isinstance(rel, str) else None
    if p is None or not rel or p.is_absolute() or ".." in p.parts or "\\" in rel:
        raise ValueError(f"manifest entry {rel!r} is not a relative path inside the folder")


def read_manifest(root: str | os.PathLike, name: str, *, kind: str, error: type[Exception] = ValueError,
                  hint: str = "") -> dict[str, Any]:
    """Read and check the structure of ``root/name``; problems raise ``error`` naming the file."""
    path = Path(root) / name
    tail = f"; {hint}" if hint else ""
    if not path.is_file():
        raise error(f"{path}: missing (it is written last, after every other file: the folder is incomplete, "
                    f"or was written by a kgfuse without manifests){tail}")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise error(f"{path}: corrupt or truncated JSON ({e}){tail}") from None
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        found = m.get("format") if isinstance(m, dict) else None
        raise error(f"{path}: field 'format' is {found!r}, expected {MANIFEST_FORMAT!r}{tail}")
    if m.get("kind") != kind:
        raise error(f"{path}: a manifest of a {m.get('kind')!r}, expected a {kind!r}{tail}")
    if m.get("algorithm") not in ALGORITHMS:
        raise error(f"{path}: unknown hash algorithm {m.get('algorithm')!r}{tail}")
    files = m.get("files")
    if not isinstance(files, dict) or not files:
        raise error(f"{path}: field 'files' is missing or empty{tail}")
    for rel, e in files.items():
        try:
            _check_rel(rel)
        except ValueError as exc:
            raise error(f"{path}: {exc}{tail}") from None
        if (not isinstance(e, dict) or set(e) != {"bytes", "hash"} or not isinstance(e["bytes"], int)
                or isinstance(e["bytes"], bool) or not isinstance(e["hash"], str)):
            raise error(f"{path}: entry {rel!r} is malformed (expected {{'bytes': int, 'hash': str}}){tail}")
    return m


def verify_manifest(root: str | os.PathLike, name: str, *, kind: str, error: type[Exception] = ValueError,
                    hint: str = "", hashes: bool = True) -> dict[str, Any]:
    """Check every file listed in ``root/name``: present, of the recorded size and (with
    ``hashes``) of the recorded content hash.

    Files the manifest does not list are not looked at.

    Returns:
        The manifest.

    Raises:
        error: the manifest is missing or malformed, or a file is missing, of another size
            or another content; the message names the file and ends with ``hint``.
    """
    root = Path(root)
    m = read_manifest(root, name, kind=kind, error=error, hint=hint)
    tail = f"; {hint}" if hint else ""
    for rel, e in m["files"].items():
        p = root / rel
        if not p.is_file():
            raise error(f"{p}: missing (listed in {name}){tail}")
        size = p.stat().st_size
        if size != e["bytes"]:
            what = "truncated" if size < e["bytes"] else "longer than written"
            raise error(f"{p}: {size} bytes, {name} records {e['bytes']} ({what}){tail}")
    if hashes:
        for rel, e in m["files"].items():
            p = root / rel
            got = file_hash(p, m["algorithm"])
            if got != e["hash"]:
                raise error(f"{p}: content differs from the {m['algorithm']} hash in {name} "
                            f"({got[:12]}... instead of {e['hash'][:12]}...): the file was modified or corrupted{tail}")
    return m


# --------------------------------------------------------------------------------------
# saved model folders (save_pretrained layout)

#: The manifest kgfuse writes into a saved model folder (next to ``config.json``).
MODEL_MANIFEST = "kgfuse_manifest.json"
_MODEL_KIND = "model"
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: What ``kgfuse train`` adds to a model folder for raw-text inference: the pipeline file and
#: the tokenizer (recorded too when present, so predict reads what training wrote).
_PIPELINE_FILES = ("kgfuse_pipeline.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model")


def model_files(folder: str | os.PathLike) -> list[str]:
    """The files that define a saved model: ``config.json``, the weights (single file, or
    the index and every shard it names) and, when present, the pipeline file and tokenizer."""
    folder = Path(folder)
    out = [n for n in ("config.json",) if (folder / n).is_file()]
    for index in _WEIGHT_INDEXES:
        if (folder / index).is_file():
            out.append(index)
            try:
                shards = json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"].values()
            except (ValueError, KeyError, AttributeError, TypeError) as e:
                raise ValueError(f"{folder / index}: unreadable weight index ({e})") from None
            out.extend(sorted(set(shards)))
    out.extend(n for n in _WEIGHT_FILES if (folder / n).is_file())
    out.extend(n for n in _PIPELINE_FILES if (folder / n).is_file())
    return out


def write_model_manifest(folder: str | os.PathLike) -> Path:
    """Record :func:`model_files` of a saved model folder in :data:`MODEL_MANIFEST`."""
    files = model_files(folder)
    if not any(f != "config.json" for f in files):
        raise FileNotFoundError(f"{folder}: no model weights (model.safetensors or an index) to record")
    return write_manifest(folder, files, MODEL_MANIFEST, kind=_MODEL_KIND)


def verify_model_manifest(folder: str | os.PathLike, *, error: type[Exception] = ValueError, hint: str = "",
                          hashes: bool = True) -> dict[str, Any] | None:
    """Check a saved model folder against its :data:`MODEL_MANIFEST`; ``None`` (nothing
    checked) when the folder has none (saved by another library or an older kgfuse)."""
    if not (Path(folder) / MODEL_MANIFEST).is_file():
        return None
    return verify_manifest(folder, MODEL_MANIFEST, kind=_MODEL_KIND, error=error, hint=hint, hashes=hashes)
