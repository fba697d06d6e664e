"""Registry of every network keras_ser can build, by name.

Each paper system and each ablation row is registered under a name of the form
``<first author><year>_<system>[_<variant>]`` (e.g. ``zhao2019_attention_blstm_fcn``)
together with the paper, the table/row it reproduces and its input. The registered
names are data: one ``PRESETS`` table per paper family (:mod:`keras_ser.models.zhao_presets`,
``multicnn_presets``, ``dcnn_presets``, ``semantic_presets``), registered by one loop. The
presets modules import the model modules, which do not import the registry.

Every registered model follows one contract:

- ``model.name`` is its registry name;
- its output layer is named ``"predictions"``;
- a layer named ``"embedding"`` gives its utterance-level vector, the input of its
  classifier: per frame for tzirakis2021's regression models (the vector before the output
  layer), per segment (``[batch, segments, d]``) for the zhang2021_multicnn models that
  average segment scores. Each builder's docstring says which vector that is.

Examples
--------
>>> from keras_ser import models
>>> "zhao2019_attention_blstm_fcn" in models.available()
True
>>> model = models.build("zhao2019_attention_blstm_fcn", num_classes=7)
>>> model.name, model.get_layer("predictions").output.shape
('zhao2019_attention_blstm_fcn', (None, 7))
"""

import dataclasses

from keras_ser.errors import ParameterError


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a registered builder reproduces.

    Attributes
    ----------
    name : str
        Registry name.
    paper : str
        Paper key and short citation, e.g. ``"zhao2019 Zhao et al. 2019, IEEE Access"``.
    table : str
        Table and row (or section) reproduced, e.g. ``"Table 5, Attention-BLSTM-FCN"``.
    input : str
        Input description at the paper defaults, e.g. ``"[500, 40] log-mel"``.
    builder : callable
        ``builder(num_classes=..., name=..., **overrides) -> keras.Model``.
    default_kwargs : dict
        Keyword arguments the name binds (e.g. ``{"n_mels": 60}`` for a Table 6 row).
    """

    name: str
    paper: str
    table: str
    input: str
    builder: object
    default_kwargs: dict = dataclasses.field(default_factory=dict)


_REGISTRY = {}
_loaded = []
#: Names added with :func:`register` in this process (:func:`registered_here`).
_registered_here = []


def _add(entry):
    if entry.name in _REGISTRY:
        raise ParameterError(f"model name {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry


def register(name, *, paper, table, input, **default_kwargs):
    """Decorator registering ``builder`` under ``name`` (for networks outside the presets tables).

    ``builder`` must take ``num_classes`` and ``name`` keyword arguments and follow the
    contract of the module docstring.
    """

    def decorator(builder):
        _add(ModelInfo(name, paper, table, input, builder, dict(default_kwargs)))
        _registered_here.append(name)
        return builder

    return decorator


def registered_here():
    """Names registered with :func:`register` in this process, not by keras_ser's presets tables.

    Worker processes of fold-parallel runs (:mod:`keras_ser.experiments.parallel`) register
    them again.
    """
    return list(_registered_here)


def _load_all():
    # Importing the presets modules (which import the model modules) is done lazily, so
    # that the registry itself imports without TensorFlow.
    if _loaded:
        return
    from keras_ser.models import dcnn_presets, multicnn_presets, semantic_presets, zhao_presets

    for module in (zhao_presets, multicnn_presets, dcnn_presets, semantic_presets):
        for name, preset in module.PRESETS.items():
            _add(ModelInfo(name, preset["paper"], preset["table"], preset["input"], preset["builder"],
                           dict(preset.get("overrides", {}))))
    _loaded.append(True)


def available():
    """Sorted list of registered model names."""
    _load_all()
    return sorted(_REGISTRY)


def info(name):
    """The :class:`ModelInfo` of ``name``; ``ParameterError`` for unknown names."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(
            f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def build(name, num_classes=None, **overrides):
    """Build registered model ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`available`; the model is named by it.
    num_classes : int, optional
        Number of output classes (ignored by regression models, which take
        ``num_outputs`` in ``overrides``).
    **overrides
        Any builder keyword argument; overrides win over the name's bound defaults.

    Returns
    -------
    keras.Model
    """
    entry = info(name)
    kwargs = dict(entry.default_kwargs)
    kwargs.update(overrides)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return entry.builder(name=name, **kwargs)


def _builder_path(builder):
    return f"{builder.__module__}.{builder.__qualname__}"


def models_table():
    """The Markdown table of registered models that README's "Models" section holds.

    Returns
    -------
    str
        Header and one row per registered model in name order,
        ``| name | paper | table / row | input | builder (overrides) |``; stand-ins that
        tests register (paper ``"test"``) are left out.
    """
    _load_all()
    lines = ["| model name | paper | table / row | input | builder |", "| --- | --- | --- | --- | --- |"]
    for name in sorted(_REGISTRY):
        entry = _REGISTRY[name]
        if entry.paper == "test":
            continue
        overrides = ", ".join(f"{key}={value!r}" for key, value in entry.default_kwargs.items())
        builder = f"`{_builder_path(entry.builder)}`" + (f" ({overrides})" if overrides else "")
        lines.append(f"| `{name}` | {entry.paper} | {entry.table} | {entry.input} | {builder} |")
    return "\n".join(lines)
