"""Saving and verified loading, shared by every kgfuse model: :class:`KGFusedPreTrainedModel`.

``save_pretrained`` also writes ``kgfuse_manifest.json`` (size and content hash of
``config.json`` and the weight files, :mod:`kgfuse.integrity`), and ``from_pretrained``
checks a folder against it before reading, then refuses weights that do not cover the model
(a missing or unknown tensor raises :class:`ModelLoadError` naming them) unless
``allow_partial=True``. A folder saved by one kgfuse class loads into another: the head
modules only one of them has start fresh or are dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from ..encoders.text import own_weight_memory
from ..integrity import MODEL_MANIFEST, verify_model_manifest, write_model_manifest
from .configuration import KGFusedConfig

__all__ = ["KGFusedPreTrainedModel", "ModelLoadError", "GRAPH_INDEPENDENT_PREFIXES", "transfer_pretrained_weights"]

logger = logging.getLogger(__name__)

#: Parameter-name prefixes whose meaning does not depend on the graph's concept and relation
#: ids: they transfer from a checkpoint trained on another graph.
GRAPH_INDEPENDENT_PREFIXES = ("text_encoder.", "text_layer_copies.", "entity_proj.", "fusion_layers.")


class ModelLoadError(RuntimeError):
    """A saved model folder is damaged (a file differs from its manifest), or its weights do
    not cover the model (missing or unknown tensors)."""


class KGFusedPreTrainedModel(PreTrainedModel):
    """Weight initialisation, saving and verified loading for kgfuse models.

    ``save_pretrained`` writes :data:`~kgfuse.integrity.MODEL_MANIFEST` after the
    transformers files. ``from_pretrained`` takes the transformers arguments plus:

    Args:
        verify: check the folder's files against its manifest before reading them (a
            folder without one, e.g. saved by another library, is read unchecked).
        allow_partial: accept weights that miss some of the model's tensors (they are
            initialised afresh, buffers zeroed) or hold unknown ones; logged as a warning.
            Without it such weights raise :class:`ModelLoadError` naming the tensors.

    A folder saved by another kgfuse class loads across heads: the head modules one class
    has and the other lacks (the multiple-choice ``classifier``, the pre-training
    ``mlm_head`` / ``dea_head``) start fresh or are dropped, as ``config.architectures`` says
    the folder was saved by the other class; every other tensor must be there.

    Raises (``from_pretrained``):
        ModelLoadError: a file differs from the manifest (named), or tensors are missing
            or unexpected (named).
    """

    config_class = KGFusedConfig
    base_model_prefix = "kgfuse"
    main_input_name = "input_ids"
    _supports_sdpa = True
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        from transformers import initialization as init

        super()._init_weights(module)
        if getattr(module, "_kgfuse_zero_init", False):
            init.zeros_(module.weight)

    # ------------------------------------------------------------------ saving / loading
    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        """``PreTrainedModel.save_pretrained``, then the manifest of the files it wrote."""
        folder = Path(save_directory)
        main = args[0] if args else kwargs.get("is_main_process", True)
        if main:
            (folder / MODEL_MANIFEST).unlink(missing_ok=True)  # never leave a stale one
        out = super().save_pretrained(save_directory, *args, **kwargs)
        if main and (folder / "config.json").is_file() and not kwargs.get("distributed_checkpoint", False):
            write_model_manifest(folder)
        return out

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args: Any,
                        verify: bool = True, allow_partial: bool = False, **kwargs: Any):
        """``PreTrainedModel.from_pretrained`` with the checks of the class docstring
        (``verify``, ``allow_partial``); ``output_loading_info=True`` still returns the
        transformers report."""
        want_info = kwargs.pop("output_loading_info", False)
        folder = None
        if pretrained_model_name_or_path is not None and Path(pretrained_model_name_or_path).is_dir():
            folder = Path(pretrained_model_name_or_path) / (kwargs.get("subfolder") or "")
        if folder is not None and verify:
            verify_model_manifest(folder, error=ModelLoadError,
                                  hint="the saved model is damaged: save it again or copy it anew "
                                       "(from_pretrained(..., verify=False) reads it unchecked)")
        model, info = super().from_pretrained(pretrained_model_name_or_path, *model_args, output_loading_info=True,
                                              **kwargs)
        own_weight_memory(model)  # the same logits as before saving, to the last bit
        file_keys = _saved_keys(folder) if folder is not None and kwargs.get("state_dict") is None else None
        missing, unexpected = _uncovered(model, info, file_keys)
        if missing or unexpected:
            where = folder if folder is not None else pretrained_model_name_or_path
            msg = (f"{where}: the saved weights do not match {cls.__name__}: "
                   f"{_names('missing', missing)}{'; ' if missing and unexpected else ''}{_names('unexpected', unexpected)}")
            if not allow_partial:
                raise ModelLoadError(msg + ". A damaged or foreign save: load another copy; pass allow_partial=True "
                                           "to load it anyway (missing tensors start fresh)")
            logger.warning("%s; loaded anyway (allow_partial=True): missing tensors start fresh, missing buffers "
                           "are zero", msg)
            _zero_missing_buffers(model, missing)
        return (model, info) if want_info else model


    #: Head-module prefixes whose weights do not depend on the graph either (a head class
    #: sets them; they transfer across graphs with :data:`GRAPH_INDEPENDENT_PREFIXES`).
    _graph_independent_heads: tuple[str, ...] = ()

    @classmethod
    def from_pretrained_on_graph(cls, folder: str | os.PathLike, graph: Any = None, **config_overrides: Any):
        """This class initialised from a saved kgfuse model folder (any kgfuse class), for
        ``graph``, which may differ from the graph the folder was trained on.

        - Same graph (``graph`` is None, its hash is the folder's ``graph_hash``, or the
          folder records no hash and the concept and relation counts agree):
          ``from_pretrained`` — every weight both classes have is kept; head modules only
          this class has start fresh.
        - Another graph: concept and relation ids mean other things, so the node table and
          the graph encoder start fresh (sized for ``graph``, learned node features); the
          weights under :data:`GRAPH_INDEPENDENT_PREFIXES` (text encoder, its fused layer
          copies, entity projection, fusion layers) and the class's graph-independent head
          modules are copied. A warning says so.

        Args:
            folder: a saved model folder.
            graph: the :class:`~kgfuse.kg.KnowledgeGraph` the model will be used with.
            **config_overrides: :class:`KGFusedConfig` fields to change (e.g.
                ``classifier_dropout``).

        Raises:
            ValueError: a copied tensor has another shape in the new model (another text
                encoder or fusion width).
        """
        folder = Path(folder)
        cfg = KGFusedConfig.from_pretrained(str(folder))
        same = graph is None or cfg.graph_hash == graph.hash or (
            cfg.graph_hash is None and cfg.num_concepts == graph.num_concepts and cfg.num_relations == graph.num_relations)
        if same:
            return cls.from_pretrained(str(folder), **config_overrides)
        d = cfg.to_dict()
        for k in ("architectures", "transformers_version", "model_type"):
            d.pop(k, None)
        d.update(num_concepts=graph.num_concepts, num_relations=graph.num_relations, graph_hash=graph.hash,
                 node_feature_kind="learned")
        d.update(config_overrides)
        model = cls(KGFusedConfig(**d))
        info = transfer_pretrained_weights(folder, model, prefixes=GRAPH_INDEPENDENT_PREFIXES + cls._graph_independent_heads)
        if info["mismatched"]:
            raise ValueError(f"{folder}: parameters {info['mismatched'][:5]} have other shapes than the new model's "
                             "(a different text encoder or fusion width?)")
        logger.warning(
            "kgfuse: %s was trained on another graph (hash %s, not %s): %d text/fusion tensors copied; node "
            "embeddings and graph encoder start fresh", folder, cfg.graph_hash, graph.hash, len(info["loaded"]))
        return model


def _names(what: str, keys: set[str], limit: int = 8) -> str:
    if not keys:
        return ""
    ks = sorted(keys)
    more = f" and {len(ks) - limit} more" if len(ks) > limit else ""
    return f"{len(ks)} {what} tensor{'s' if len(ks) > 1 else ''} ({', '.join(ks[:limit])}{more})"


def _saved_keys(folder: Path) -> set[str] | None:
    """Tensor names of the safetensors weights in ``folder`` (headers only), or ``None``."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    try:
        if index.is_file():
            return set(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
        if (folder / "model.safetensors").is_file():
            with safe_open(str(folder / "model.safetensors"), "pt") as f:
                return set(f.keys())
    except Exception:  # noqa: BLE001 - transformers read them already; this check is extra
        return None
    return None


def _uncovered(model: PreTrainedModel, info: dict[str, Any], file_keys: set[str] | None) -> tuple[set[str], set[str]]:
    """The missing and unexpected tensor names of a load that are not explained by a head swap."""
    missing = set(info.get("missing_keys") or ())
    unexpected = set(info.get("unexpected_keys") or ())
    own = set(model.state_dict())
    if file_keys is not None:
        # transformers hides missing keys matching _keys_to_ignore_on_load_missing (the
        # pre-training heads); they are missing all the same when the file lacks them
        tied = set(getattr(model, "all_tied_weights_keys", None) or ())
        patterns = [re.compile(p) for p in (model._keys_to_ignore_on_load_missing or ())]
        missing |= {k for k in own - file_keys - tied if any(p.search(k) for p in patterns)}
    saved_by = list(getattr(model.config, "architectures", None) or [])
    if saved_by and type(model).__name__ not in saved_by:
        # saved by another kgfuse class: whole head modules the file lacks, or the model lacks, are expected
        top = (lambda k: k.split(".", 1)[0])
        in_file = {top(k) for k in file_keys} if file_keys is not None else {top(k) for k in own - missing}
        in_model = {top(k) for k in own}
        missing = {k for k in missing if top(k) in in_file}
        unexpected = {k for k in unexpected if top(k) in in_model}
    return missing, unexpected


def _zero_missing_buffers(model: nn.Module, missing: set[str]) -> None:
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for k in missing:
            if k in buffers:
                buffers[k].zero_()


# --------------------------------------------------------------------------------------
# moving weights across graphs


def _read_state_dict(folder: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {folder}")
    sd: dict[str, Tensor] = {}
    for f in files:
        sd.update(load_file(str(f)))
    return sd


def transfer_pretrained_weights(folder: str | os.PathLike, model: nn.Module,
                                prefixes: tuple[str, ...] = GRAPH_INDEPENDENT_PREFIXES) -> dict[str, list[str]]:
    """Copy the parameters of a saved kgfuse model whose names start with ``prefixes`` and
    whose shapes match into ``model``.

    Returns ``{"loaded": [...], "skipped": [...], "mismatched": [...]}`` (parameter names).
    """
    sd = _read_state_dict(Path(folder))
    own = model.state_dict()
    loaded, skipped, mismatched = [], [], []
    with torch.no_grad():
        for k, v in sd.items():
            if not k.startswith(prefixes) or k not in own:
                skipped.append(k)
            elif tuple(own[k].shape) != tuple(v.shape):
                mismatched.append(k)
            else:
                own[k].copy_(v)
                loaded.append(k)
    return {"loaded": loaded, "skipped": skipped, "mismatched": mismatched}
