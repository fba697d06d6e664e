"""Registers keras_ser's Keras custom objects as soon as Keras is importable.

A ``.keras`` file of a keras_ser model names layers such as ``keras_ser>AttentionPooling``;
``keras.models.load_model`` finds them only in Keras's registry of custom objects, which
a class joins when its module is imported. So that a plain ``import keras_ser`` is enough
to load any keras_ser model, while ``import keras_ser`` (and the corpus readers, and a
CLI's ``--help``) still does not pay for TensorFlow, :func:`install` registers every
custom object at the first moment Keras is loaded:

- at once, when Keras is already imported;
- otherwise right after ``import keras`` (or ``import tensorflow``, which imports Keras)
  completes, through an import hook that watches those two modules and keras_ser's own.

Registration imports keras_ser's layer and front-end modules, so it waits until no watched
module is still executing: Keras imported from inside one of them (or from inside
TensorFlow) is registered when the outermost of them has finished.
"""

import importlib
import importlib.abc
import sys
import threading

#: Modules whose import registers custom objects (every model's layers live in ``keras_ser.layers``).
MODULES = ("keras_ser.layers", "keras_ser.frontend.layers", "keras_ser.ccc")

_lock = threading.RLock()
_state = {"executing": 0, "done": False, "registering": False}


def _watched(name):
    return name in ("keras", "tensorflow") or name.startswith("keras_ser.")


def register():
    """Import every module that defines a keras_ser custom object (idempotent)."""
    with _lock:
        if _state["done"] or _state["registering"]:
            return
        _state["registering"] = True
        try:
            import keras

            for name in MODULES:
                importlib.import_module(name)
            _state["done"] = True
        finally:
            _state["registering"] = False
    _uninstall()


def _after_import():
    with _lock:
        _state["executing"] -= 1
        ready = _state["executing"] == 0 and "keras" in sys.modules and not _state["done"]
    if ready:
        register()


class _Loader(importlib.abc.Loader):
    """Runs a watched module as its own loader would, then registers when it is safe."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _lock:
            _state["executing"] += 1
        try:
            self._loader.exec_module(module)
        except BaseException:
            with _lock:
                _state["executing"] -= 1
            raise
        _after_import()

    def __getattr__(self, name):
        # get_source, get_resource_reader, is_package, ...: the wrapped loader's.
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds watched modules with the other finders and wraps their loaders."""

    def find_spec(self, name, path, target=None):
        if not _watched(name) or _state["done"]:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


_finder = _Finder()


def install():
    """Register now if Keras is loaded, else once it is (called by ``keras_ser/__init__``)."""
    if "keras" in sys.modules:
        register()
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _uninstall():
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
