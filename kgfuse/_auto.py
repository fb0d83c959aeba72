"""Make ``AutoConfig`` and ``AutoModelFor...`` find kgfuse's classes after a plain ``import kgfuse``.

transformers has no plugin entry point for its Auto classes: a model type is known once
``AutoConfig.register`` and ``AutoModelFor....register`` have run, and those need the
classes, that is torch and transformers. ``import kgfuse`` must stay light, so it only
installs :class:`_RegistrationHook`, a :data:`sys.meta_path` finder that watches the
imports of transformers and kgfuse modules. At the end of one, once transformers' Auto
classes exist (``transformers.models.auto.configuration_auto`` has run) and no transformers
or kgfuse module is half-imported (registering imports both), it calls
:func:`register_auto_classes` and removes itself::

    import kgfuse                                    # light: torch and transformers not loaded
    from transformers import AutoModelForMultipleChoice
    model = AutoModelForMultipleChoice.from_pretrained("runs/demo/model")   # KGFusedForMultipleChoice

When transformers' Auto classes are already loaded at ``import kgfuse``, the classes are
registered right away. Registering imports :mod:`kgfuse.fusion.modeling` (torch, the graph
encoders) the first time an Auto class is imported.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

__all__ = ["register_auto_classes", "install_registration_hook", "auto_classes_registered"]

_TRIGGER = "transformers.models.auto.configuration_auto"
_WATCHED = ("transformers", "kgfuse")

_logger = logging.getLogger("kgfuse")
_lock = threading.Lock()
_registered = False


def register_auto_classes() -> None:
    """Register ``"kgfuse"`` with ``AutoConfig``, ``AutoModel``, ``AutoModelForMultipleChoice``
    and ``AutoModelForPreTraining`` (imports torch and transformers). Safe to call again."""
    global _registered
    import kgfuse.fusion.modeling  # noqa: F401  (registers AutoConfig, AutoModel and AutoModelForMultipleChoice)
    import kgfuse.fusion.pretraining  # noqa: F401  (registers AutoModelForPreTraining)

    _registered = True


def auto_classes_registered() -> bool:
    """Whether :func:`register_auto_classes` has run in this process."""
    return _registered


def _half_imported(skip: str | None = None) -> bool:
    """Whether a transformers or kgfuse module (other than ``skip``) is still being imported
    (importlib marks a module's ``__spec__._initializing`` while its code runs)."""
    for name, mod in list(sys.modules.items()):
        if name == skip or not (name in _WATCHED or name.startswith(("transformers.", "kgfuse."))):
            continue
        if getattr(getattr(mod, "__spec__", None), "_initializing", False):
            return True
    return False


def _try_register(just_loaded: str | None = None) -> None:
    """Register when transformers' Auto classes exist and nothing relevant is half-imported."""
    if _registered or _TRIGGER not in sys.modules or _half_imported(just_loaded):
        return
    if not _lock.acquire(blocking=False):  # another thread is registering
        return
    try:
        if not _registered:
            _remove_hook()
            register_auto_classes()
    except Exception as e:  # transformers keeps working; only the kgfuse model type stays unknown
        _logger.debug("kgfuse: registering with transformers' Auto classes failed: %s", e)
    finally:
        _lock.release()


class _NotifyingLoader:
    """Runs the wrapped loader, puts it back on the module, then tries to register."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader
        _try_register(module.__name__)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _RegistrationHook:
    """A :data:`sys.meta_path` finder that wraps the loaders of ``transformers`` and
    ``kgfuse`` modules, so that the end of each import is a chance to register."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not (fullname in _WATCHED or fullname.startswith(("transformers.", "kgfuse."))) or _registered or _lock.locked():
            return None
        for finder in list(sys.meta_path):
            if finder is self or isinstance(finder, _RegistrationHook) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _NotifyingLoader(spec.loader)
                return spec
        return None


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegistrationHook)]


def install_registration_hook() -> None:
    """Register now if transformers' Auto classes are loaded, else watch for them (``import kgfuse``)."""
    if _registered or any(isinstance(f, _RegistrationHook) for f in sys.meta_path):
        return
    if _TRIGGER in sys.modules and not _half_imported(skip="kgfuse"):
        _try_register("kgfuse")
        return
    sys.meta_path.insert(0, _RegistrationHook())
