"""Training checkpoints: pickle-free, atomic, complete enough to resume bit-for-bit.

A checkpoint is a folder::

    <name>/
      model/                     model.save_pretrained(...) (config.json + model.safetensors),
                                 or model.safetensors for a plain torch module (absent from a
                                 record saved with ``model=None``, such as a run's ``best/``)
      optimizer.safetensors      optimizer state tensors, keys "state.<param index>.<name>"
      optimizer.json             param_groups and non-tensor state
      scheduler.json             scheduler.state_dict() (JSON)
      rng-<rank>.json            python and numpy RNG states of process <rank>
      rng-<rank>.safetensors     torch CPU (and CUDA) RNG states of process <rank>
      trainer_state.json         epoch, global step, best metric, history, anything the trainer adds
      manifest.json              size and content hash of every file above (kgfuse.integrity)
      COMPLETE                   written last

It is written into a temporary folder next to the target (same parent, hence same file
system), ``manifest.json`` and then the ``COMPLETE`` marker are written last, and the folder
is renamed into place, so a crash never leaves a half-written folder under the final name.

Every read is verified: :func:`load_checkpoint` refuses (:class:`CheckpointError`, naming
the file) a folder without the marker or the manifest (an interrupted write or a partial
copy), and a file that is missing, truncated or whose content hash differs from the manifest
(a damaged disk or copy). Files added to the folder later are not in the manifest and are
not checked.

:func:`drop_optimizer_state` removes the optimiser and scheduler state from a finished
checkpoint (a run's ``last/`` once the run is over): the manifest is rewritten first, so
the folder verifies at every moment. :func:`save_model_folder` writes a model folder
atomically (a run's exported ``model/``), :func:`folder_sizes` measures a run folder.

:func:`latest_checkpoint` takes the newest ``checkpoint-<step>`` that
verifies. A newer one that is unfinished or does not verify is skipped with a warning naming
the problem: resuming is bit-exact, so starting from the previous checkpoint gives the same run and costs
only the steps in between. When checkpoints exist but none verifies it raises
:class:`CheckpointError` instead of returning ``None`` (which would start a new run).
:func:`resume_point` (what ``--resume auto`` of a training run uses) compares that step checkpoint
with the epoch-end ``last/`` and returns the one further along.

A checkpoint written before manifests existed has none and is refused; if you trust it,
:func:`record_manifest` records its files as they are (or pass ``verify=False``).

No pickle anywhere: tensors go to safetensors, everything else to JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..integrity import list_files, verify_manifest, verify_model_manifest, write_manifest

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "has_optimizer_state",
    "drop_optimizer_state",
    "save_model_folder",
    "folder_sizes",
    "load_model_weights",
    "is_complete",
    "verify_checkpoint",
    "record_manifest",
    "latest_checkpoint",
    "get_rng_state",
    "set_rng_state",
    "COMPLETE",
    "MANIFEST",
]

COMPLETE = "COMPLETE"
MANIFEST = "manifest.json"
_FORMAT = "kgfuse-checkpoint-v1"
_KIND = "checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, damaged, or does not fit the objects it is loaded into."""


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint folder whose manifest and ``COMPLETE`` marker were
    written (a finished write; :func:`verify_checkpoint` checks the files themselves)."""
    return (Path(path) / COMPLETE).is_file() and (Path(path) / MANIFEST).is_file()


def record_manifest(path: str | Path) -> Path:
    """Record every file of the checkpoint folder ``path`` as it is now in its ``manifest.json``
    (and write the ``COMPLETE`` marker after it).

    :func:`save_checkpoint` does this itself; call it only to adopt a folder you trust that
    has no manifest (written by a kgfuse without manifests).
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {path}")
    write_manifest(path, list_files(path, exclude=(MANIFEST, COMPLETE)), MANIFEST, kind=_KIND)
    (path / COMPLETE).write_text("ok\n")
    return path


def verify_checkpoint(path: str | Path, *, hashes: bool = True) -> dict[str, Any]:
    """Check that ``path`` is a finished checkpoint whose files are all as written.

    Args:
        path: the checkpoint folder.
        hashes: also compare content hashes (one read of the folder); sizes are always compared.

    Returns:
        The manifest.

    Raises:
        CheckpointError: the folder, its ``COMPLETE`` marker or its ``manifest.json`` is
            missing, or a listed file is missing, of another size or another content (the
            message names the file).
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {path}")
    if not (path / COMPLETE).is_file():
        raise CheckpointError(
            f"{path} has no {COMPLETE} marker: the checkpoint was not finished (interrupted run?). "
            "Resume from an earlier checkpoint or delete this folder."
        )
    hint = (f"the checkpoint {path} is incomplete or damaged: resume from another checkpoint or delete it "
            "(a trusted folder without a manifest can be adopted with kgfuse.tasks.checkpoint.record_manifest)")
    return verify_manifest(path, MANIFEST, kind=_KIND, error=CheckpointError, hint=hint, hashes=hashes)


def latest_checkpoint(run_dir: str | Path, prefix: str = "checkpoint-", *, verify: bool = True) -> Path | None:
    """The newest checkpoint ``<run_dir>/<prefix><step>`` that verifies, or ``None`` when there is none.

    A folder without the ``COMPLETE`` marker (an interrupted write or copy) is skipped with
    a warning, and so is a finished one that fails :func:`verify_checkpoint` (the warning
    names the damaged file); the next older one is tried (resuming is bit-exact, so the run
    is the same).

    Args:
        run_dir: the run folder.
        prefix: folder name before the step number.
        verify: compare content hashes (else only presence and sizes of the files).

    Raises:
        CheckpointError: checkpoints were finished but none verifies (each is named with
            its problem); ``None`` would start a new run over them.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for p in run_dir.iterdir():
        if p.is_dir() and p.name.startswith(prefix):
            try:
                found.append((int(p.name[len(prefix):]), p))
            except ValueError:
                continue
    problems = []
    for _, p in sorted(found, reverse=True):
        if not (p / COMPLETE).is_file():
            warnings.warn(f"skipping {p}: no {COMPLETE} marker (an interrupted write or copy)", stacklevel=2)
            continue
        try:
            verify_checkpoint(p, hashes=verify)
        except CheckpointError as e:
            problems.append(str(e))
            warnings.warn(f"skipping a damaged checkpoint: {e}", stacklevel=2)
            continue
        return p
    if problems:
        raise CheckpointError(f"{run_dir}: no checkpoint verifies:\n  " + "\n  ".join(problems))
    return None


def resume_point(run_dir: str | Path, *, verify: bool = True) -> Path | None:
    """Where ``--resume auto`` continues a run: the newest of its resumable checkpoints.

    The step checkpoints (``checkpoint-<step>/``, chosen by :func:`latest_checkpoint`) and the
    end-of-epoch ``last/`` are compared by the ``global_step`` of their trainer state; ``last/``
    counts only while it still holds optimiser state (a finished run drops it) and verifies. With
    no step checkpoint, ``last/`` is returned as it is (a finished run's weights; loading a
    damaged one raises rather than starting a new run). ``None``: nothing to resume.

    Raises:
        CheckpointError: as :func:`latest_checkpoint`.
    """
    run_dir = Path(run_dir)
    ck = latest_checkpoint(run_dir, verify=verify)
    last = run_dir / "last"
    if not last.is_dir():
        return ck
    if ck is None:
        return last  # loading it verifies it: a damaged last/ is an error, not a new run
    if not is_complete(last) or not has_optimizer_state(last):
        return ck

    def step(p: Path) -> int:
        return int(_read_json(p / "trainer_state.json").get("global_step", -1))

    ck_step = step(ck)  # ck has verified: an error here is its own
    try:
        if step(last) <= ck_step:
            return ck
        verify_checkpoint(last, hashes=verify)  # hashed only when it would be taken
    except (CheckpointError, ValueError, AttributeError, OSError) as e:
        warnings.warn(f"skipping a damaged checkpoint: {last}: {e}", stacklevel=2)
        return ck
    return last


# --------------------------------------------------------------------------------------
# RNG


def get_rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The python, numpy and torch RNG states as (JSON part, tensor part)."""
    py = random.getstate()
    np_state = np.random.get_state()
    js = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    return js, tensors


def set_rng_state(js: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Restore states produced by :func:`get_rng_state`."""
    v, st, gauss = js["python"]
    random.setstate((v, tuple(st), gauss))
    name, keys, pos, has_gauss, cached = js["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k.split(".")[1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


# --------------------------------------------------------------------------------------
# optimizer / scheduler state without pickle


def _jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        if x.numel() == 1:
            return x.item()
        raise TypeError("tensor in JSON part")
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"cannot store {type(x).__name__} in a checkpoint without pickle")


def _optimizer_to_files(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{idx}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(idx), {})[k] = _jsonable(v)
    groups = []
    for g in sd["param_groups"]:
        g2 = {}
        for k, v in g.items():
            g2[k] = _jsonable(v)
        g2["_tuple_keys"] = [k for k, v in g.items() if isinstance(v, tuple)]
        groups.append(g2)
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_from_files(tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, t in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = t
    for idx, d in js.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(d)
    groups = []
    for g in js["param_groups"]:
        g = dict(g)
        for k in g.pop("_tuple_keys", []):
            g[k] = tuple(g[k])
        groups.append(g)
    return {"state": state, "param_groups": groups}


# --------------------------------------------------------------------------------------
# model weights


def _save_model(model: torch.nn.Module, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(str(folder), safe_serialization=True)
    else:
        from safetensors.torch import save_model

        save_model(model, str(folder / "model.safetensors"))


def load_model_weights(model: torch.nn.Module, folder: str | Path, *, verify: bool = True) -> None:
    """Load ``model.safetensors`` (or its shards) from ``folder`` into ``model`` in place.

    Every parameter and persistent buffer must be in the file, and nothing else: keys
    missing from the file are accepted only when the parameter shares storage with one that
    was loaded (tied weights, which ``save_pretrained`` writes once).

    Args:
        model: the model to fill.
        folder: a saved model folder.
        verify: check the files against the folder's ``kgfuse_manifest.json`` when it has one
            (kgfuse models write it in ``save_pretrained``).

    Raises:
        CheckpointError: a file is damaged, a tensor is missing or unknown, or a shape differs.
    """
    folder = Path(folder)
    if verify:
        verify_model_manifest(folder, error=CheckpointError,
                              hint="the saved model is damaged: save it again, or use another checkpoint")
    index = folder / "model.safetensors.index.json"
    try:
        if index.is_file():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            sd: dict[str, torch.Tensor] = {}
            for f in files:
                sd.update(load_file(str(folder / f)))
        elif (folder / "model.safetensors").is_file():
            sd = load_file(str(folder / "model.safetensors"))
        else:
            raise CheckpointError(f"{folder}: no model.safetensors (or index) found")
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{folder}: unreadable model weights ({type(e).__name__}: {e})") from None
    own = model.state_dict()
    unexpected = [k for k in sd if k not in own]
    if unexpected:
        raise CheckpointError(f"{folder}: weights for unknown parameters {unexpected[:5]} (model class or config differs?)")
    for k, v in sd.items():
        if own[k].shape != v.shape:
            raise CheckpointError(f"{folder}: shape of {k} is {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model")
    model.load_state_dict(sd, strict=False)
    loaded_ptrs = {own[k].data_ptr() for k in sd}
    missing = [k for k in own if k not in sd and own[k].data_ptr() not in loaded_ptrs]
    if missing:
        raise CheckpointError(f"{folder}: no weights for {missing[:5]}{' ...' if len(missing) > 5 else ''}")


# --------------------------------------------------------------------------------------
# save / load


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True), encoding="utf-8")


def _replace_folder(tmp: Path, dst: Path) -> None:
    """Move the finished folder ``tmp`` to ``dst``, replacing an existing one atomically."""
    old = None
    if dst.exists():
        old = dst.parent / f".old-{dst.name}-{uuid.uuid4().hex[:8]}"
        os.replace(dst, old)
    os.replace(tmp, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    trainer_state: dict[str, Any] | None = None,
    accelerator: Any | None = None,
    extra_json: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically.

    Args:
        path: the final folder; replaced if it exists.
        model: the (unwrapped) model; ``None`` writes a record without weights.
        optimizer, scheduler: saved when given.
        trainer_state: JSON-able trainer state (epoch, step, best metric, ...).
        accelerator: an ``accelerate.Accelerator`` in a multi-process run: every process
            must call this function; each writes its RNG state, the main process writes the
            rest and renames. ``None`` for a single process.
        extra_json: more files to write, ``{file name: JSON-able object}``.

    Returns:
        The final folder.
    """
    path = Path(path)
    main = accelerator is None or accelerator.is_main_process
    rank = 0 if accelerator is None else accelerator.process_index
    # the temporary name must be the same on every process
    tmp = path.parent / f".tmp-{path.name}"
    if main:
        path.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    if accelerator is not None:
        accelerator.wait_for_everyone()
    js, tens = get_rng_state()
    _write_json(tmp / f"rng-{rank}.json", js)
    save_file(tens, str(tmp / f"rng-{rank}.safetensors"))
    if accelerator is not None:
        accelerator.wait_for_everyone()
    if main:
        if model is not None:
            _save_model(model, tmp / "model")
        if optimizer is not None:
            ot, oj = _optimizer_to_files(optimizer)
            save_file(ot, str(tmp / "optimizer.safetensors"))
            _write_json(tmp / "optimizer.json", oj)
        if scheduler is not None:
            _write_json(tmp / "scheduler.json", _jsonable(scheduler.state_dict()))
        state = dict(trainer_state or {})
        state["format"] = _FORMAT
        state["num_processes"] = 1 if accelerator is None else accelerator.num_processes
        _write_json(tmp / "trainer_state.json", _jsonable(state))
        for name, obj in (extra_json or {}).items():
            _write_json(tmp / name, obj)
        record_manifest(tmp)  # manifest.json, then COMPLETE: last
        _replace_folder(tmp, path)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return path


_OPTIMIZER_FILES = ("optimizer.safetensors", "optimizer.json", "scheduler.json")


def has_optimizer_state(path: str | Path) -> bool:
    """Whether the checkpoint folder ``path`` holds optimiser and scheduler state."""
    return all((Path(path) / n).is_file() for n in _OPTIMIZER_FILES)


def drop_optimizer_state(path: str | Path) -> int:
    """Remove the optimiser and scheduler state of a finished checkpoint; returns the bytes freed.

    The manifest is rewritten without those files before they are deleted, so the folder
    verifies at every moment (a file left behind by a crash is not in the manifest and is
    not checked). The checkpoint can then be loaded without ``optimizer``/``scheduler``.
    """
    path = Path(path)
    present = [path / n for n in _OPTIMIZER_FILES if (path / n).is_file()]
    if not present:
        return 0
    verify_checkpoint(path, hashes=False)
    files = [f for f in list_files(path, exclude=(MANIFEST, COMPLETE, *_OPTIMIZER_FILES))]
    write_manifest(path, files, MANIFEST, kind=_KIND)
    freed = 0
    for f in present:
        freed += f.stat().st_size
        f.unlink()
    return freed


def save_model_folder(model: torch.nn.Module, dst: str | Path, extra: Any | None = None) -> Path:
    """Write ``model`` (``save_pretrained``, or ``model.safetensors`` for a plain module) to
    ``dst`` atomically: into a temporary sibling folder, ``extra(folder)`` adds more files
    (tokenizer, pipeline description), then the folder is renamed into place."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".tmp-{dst.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    _save_model(model, tmp)
    if extra is not None:
        extra(tmp)
    _replace_folder(tmp, dst)
    return dst


def folder_sizes(run_dir: str | Path) -> dict[str, int]:
    """Bytes on disk per part of a run folder: each sub-folder by name (all
    ``checkpoint-<step>`` together as ``checkpoints``), the loose files as ``files``, and
    ``total``."""
    run_dir = Path(run_dir)
    sizes: dict[str, int] = {}
    if not run_dir.is_dir():
        return {"total": 0}
    for p in sorted(run_dir.iterdir()):
        if p.name.startswith((".tmp-", ".old-")):
            continue
        if p.is_dir():
            key = "checkpoints" if p.name.startswith("checkpoint-") else p.name
            n = sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())
        elif p.is_file():
            key, n = "files", p.stat().st_size
        else:
            continue
        sizes[key] = sizes.get(key, 0) + n
    sizes["total"] = sum(sizes.values())
    return sizes


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
    process_index: int = 0,
    verify: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint into the given objects (in place) and return its trainer state.

    Args:
        path: the checkpoint folder.
        model, optimizer, scheduler: filled in place when given.
        restore_rng: restore the RNG states of process ``process_index``.
        verify: check the folder with :func:`verify_checkpoint` first (manifest present,
            every file of its recorded size and content hash). ``False`` loads a folder
            without a manifest (or a damaged one) unchecked.

    Raises:
        CheckpointError: the folder is missing, has no ``COMPLETE`` marker or manifest (an
            interrupted write or partial copy), a file is damaged (named), or a part that was
            asked for is missing or does not fit.
    """
    path = Path(path)
    if verify:
        verify_checkpoint(path)
    elif not path.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {path}")
    state = _read_json(path / "trainer_state.json")
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        found = state.get("format") if isinstance(state, dict) else None
        raise CheckpointError(f"{path}/trainer_state.json: unknown format {found!r}, expected {_FORMAT!r}")
    if model is not None:
        load_model_weights(model, path / "model", verify=False)  # the checkpoint manifest covers model/
    if optimizer is not None:
        if not (path / "optimizer.json").is_file():
            raise CheckpointError(f"{path}: no optimizer state saved")
        try:
            tensors = load_file(str(path / "optimizer.safetensors"))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}/optimizer.safetensors: unreadable ({e})") from None
        try:
            sd = _optimizer_from_files(tensors, _read_json(path / "optimizer.json"))
            optimizer.load_state_dict(sd)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{path}: optimizer state does not fit this optimizer: {e}") from e
    if scheduler is not None:
        if not (path / "scheduler.json").is_file():
            raise CheckpointError(f"{path}: no scheduler state saved")
        scheduler.load_state_dict(_read_json(path / "scheduler.json"))
    if restore_rng:
        rj = path / f"rng-{process_index}.json"
        if not rj.is_file():
            raise CheckpointError(f"{path}: no RNG state for process {process_index} (saved with {state.get('num_processes')} processes)")
        try:
            rng_tensors = load_file(str(path / f"rng-{process_index}.safetensors"))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}/rng-{process_index}.safetensors: unreadable ({e})") from None
        set_rng_state(_read_json(rj), rng_tensors)
    return state


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt JSON ({e})") from None
