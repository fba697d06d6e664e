"""Registry of every network keras_ser can build, by name.

Each paper system and each ablation row is registered under a name of the form
``<first author><year>_<system>[_<variant>]`` (e.g. ``zhao2019_attention_blstm_fcn``)
together with the paper, the table/row it reproduces and its input.

Examples
--------
>>> from keras_ser import models
>>> "zhao2019_attention_blstm_fcn" in models.available()
True
>>> model = models.build("zhao2019_attention_blstm_fcn", num_classes=7)
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
        Paper file id and short citation, e.g. ``"zhao2019 Zhao et al. 2019"``.
    table : str
        Table and row (or section) reproduced, e.g. ``"Table 5, Attention-BLSTM-FCN"``.
    input : str
        Input description at the paper defaults, e.g. ``"40x500 log-mel"``.
    builder : callable
        ``builder(num_classes=..., **overrides) -> keras.Model``.
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


def register(name, *, paper, table, input, **default_kwargs):
    """Decorator registering ``builder`` under ``name``.

    The same builder may be registered several times under different names with
    different bound ``default_kwargs`` (one name per ablation row).
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise ParameterError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(name, paper, table, input, builder, dict(default_kwargs))
        return builder

    return decorator


def _load_all():
    # Importing the model modules fills the registry; done lazily so that the
    # registry itself imports without TensorFlow.
    from keras_ser.models import _all  # noqa: F401


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
        A name from :func:`available`.
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
    return entry.builder(**kwargs)
