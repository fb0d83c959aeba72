"""Concept-name embeddings: node features from the text encoder.

:func:`concept_name_embeddings` encodes every concept name of a graph with a Hugging Face
text encoder (mean over the name's sub-tokens) and caches the table under a key made of the
graph hash, the encoder's weights hash and ``max_length``. It lives in the encoders layer
because it needs a text encoder; the graph layer (:mod:`kgfuse.kg`) needs none.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..fingerprint import source_fingerprint

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from kgfuse.kg.graph import KnowledgeGraph

__all__ = ["concept_name_embeddings"]


def concept_name_embeddings(
    graph: "KnowledgeGraph",
    encoder: str | os.PathLike | None = None,
    *,
    batch_size: int = 256,
    max_length: int = 16,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = True,
    device: str = "cpu",
) -> "torch.Tensor":
    """Embed every concept name with the text encoder (mean over the name's tokens).

    Names are written with spaces (``ice_cream`` -> ``ice cream``); the mean runs over
    the name's sub-tokens only (no ``[CLS]``/``[SEP]``). With ``cache_dir`` the
    ``[num_concepts, hidden]`` float32 table is stored as safetensors under a key made of
    the graph hash, the encoder's weights hash, ``max_length`` and this module's source
    (:func:`~kgfuse.fingerprint.source_fingerprint`).

    Args:
        encoder: text-encoder name or folder (default: shipped all-MiniLM-L6-v2).
    """
    import torch
    from safetensors.torch import load_file, save_file

    from .text import load_text_encoder, resolve_text_encoder, weights_hash

    key = hashlib.sha256(
        json.dumps({"format": "kgfuse-names-v1", "code": source_fingerprint(__name__), "graph": graph.hash,
                    "encoder": weights_hash(encoder), "max_length": max_length}, sort_keys=True).encode()
    ).hexdigest()[:32]
    path = Path(cache_dir) / f"names-{key}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        return load_file(str(path))["embeddings"]
    tok, model = load_text_encoder(encoder, local_files_only=local_files_only)
    model = model.to(device).eval()
    names = [str(n).replace("_", " ") for n in graph.concepts]
    order = sorted(range(len(names)), key=lambda i: len(names[i]))
    out = torch.zeros(len(names), model.config.hidden_size)
    with torch.no_grad():
        for i0 in range(0, len(order), batch_size):
            idx = order[i0 : i0 + batch_size]
            enc = tok([names[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt", return_special_tokens_mask=True)
            special = enc.pop("special_tokens_mask")
            enc = {k: v.to(device) for k, v in enc.items()}
            hs = model(**enc).last_hidden_state
            m = (enc["attention_mask"].bool() & ~special.bool().to(device)).unsqueeze(-1).to(hs.dtype)
            vec = (hs * m).sum(1) / m.sum(1).clamp(min=1.0)
            out[torch.as_tensor(idx)] = vec.float().cpu()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"embeddings": out.contiguous()}, str(tmp),
                  metadata={"graph_hash": graph.hash, "encoder": str(resolve_text_encoder(encoder))})
        os.replace(tmp, path)
    return out
