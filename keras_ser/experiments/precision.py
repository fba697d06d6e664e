"""Training precision: float32 or Keras mixed precision, with float32 where it matters.

``train.precision`` in a recipe (``--precision`` / ``train.precision=...`` on the command
line) takes one of :data:`PRECISIONS`:

``"float32"``
    Everything in float32.
``"mixed_bfloat16"``
    Keras' ``mixed_bfloat16`` policy: variables in float32, layer computations in
    bfloat16. On a CPU with native bfloat16 units (AVX-512 BF16 / AMX) the matrix
    products and convolutions run several times faster (``benchmarks/train_step.py``).
``"mixed_float16"``
    Keras' ``mixed_float16`` policy (GPUs); ``Model.compile`` wraps the optimiser in a
    ``LossScaleOptimizer``.
``"auto"``
    ``mixed_float16`` when TensorFlow sees a GPU, ``mixed_bfloat16`` on a CPU that has
    native bfloat16 instructions, ``float32`` otherwise (:func:`resolve_precision`).

Whatever the policy, a model built by :func:`build_in_precision` keeps these in float32:
its output layers (softmax probabilities, regression outputs, and so the loss), every
attention layer (:data:`FLOAT32_LAYER_CLASSES`: their softmax over hundreds of steps
loses too much in bfloat16's 8-bit mantissa) and batch normalisation's statistics
(Keras' ``BatchNormalization`` computes them in float32 under any mixed policy).
Variables are float32 under every policy, so a mixed-precision model saves, reloads,
predicts and exports like a float32 one and returns float32 outputs.
"""

import contextlib

import keras
import tensorflow as tf

from keras_ser.errors import ParameterError

__all__ = [
    "FLOAT32_LAYER_CLASSES",
    "PRECISIONS",
    "build_in_precision",
    "cpu_has_bfloat16",
    "describe_policy",
    "policy_scope",
    "resolve_precision",
]

from keras_ser.recipe import PRECISIONS

#: Names of layer classes computed in float32 under a mixed policy (attention softmaxes).
FLOAT32_LAYER_CLASSES = (
    "AttentionPooling",
    "ScaledAttentionPooling",
    "ScaledDotAttentionFusion",
    "DisentangledAttentionFusion",
)

# /proc/cpuinfo flags of native bfloat16 arithmetic (AVX-512 BF16 dot products, AMX tiles).
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether the CPU advertises native bfloat16 instructions (Linux ``/proc/cpuinfo``).

    Parameters
    ----------
    cpuinfo : str
        Path of the cpuinfo file; a missing file (not Linux) counts as "no".

    Returns
    -------
    bool

    Examples
    --------
    >>> isinstance(cpu_has_bfloat16(), bool)
    True
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(flag in flags for flag in _BF16_CPU_FLAGS)
    except OSError:
        return False
    return False


def resolve_precision(precision, *, gpu=None, bfloat16_cpu=None):
    """The Keras dtype policy name that ``precision`` stands for on this machine.

    Parameters
    ----------
    precision : {"float32", "mixed_bfloat16", "mixed_float16", "auto"}
        The recipe's ``train.precision``.
    gpu, bfloat16_cpu : bool, optional
        Override the detection for ``"auto"`` (TensorFlow's GPU list; :func:`cpu_has_bfloat16`).

    Returns
    -------
    str
        ``"float32"``, ``"mixed_bfloat16"`` or ``"mixed_float16"``.

    Raises
    ------
    ParameterError
        For any other value.

    Examples
    --------
    >>> resolve_precision("auto", gpu=False, bfloat16_cpu=False)
    'float32'
    >>> resolve_precision("auto", gpu=True)
    'mixed_float16'
    """
    if precision not in PRECISIONS:
        raise ParameterError(f"train.precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if gpu is None:
        gpu = bool(tf.config.list_physical_devices("GPU"))
    if gpu:
        return "mixed_float16"
    if bfloat16_cpu is None:
        bfloat16_cpu = cpu_has_bfloat16()
    return "mixed_bfloat16" if bfloat16_cpu else "float32"


@contextlib.contextmanager
def policy_scope(policy):
    """Set Keras' global dtype policy inside a ``with`` block, restoring it afterwards.

    Examples
    --------
    >>> with policy_scope("mixed_bfloat16"):
    ...     keras.layers.Dense(2).dtype_policy.name
    'mixed_bfloat16'
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _output_layer_names(model):
    return {tensor._keras_history.operation.name for tensor in keras.tree.flatten(model.outputs)}


def build_in_precision(build, policy):
    """Build a model under ``policy``, with outputs and attention layers in float32.

    Parameters
    ----------
    build : callable
        Returns a functional ``keras.Model`` when called without arguments
        (e.g. ``lambda: keras_ser.models.build(name, num_classes=7)``).
    policy : {"float32", "mixed_bfloat16", "mixed_float16"}
        A resolved precision (:func:`resolve_precision`).

    Returns
    -------
    keras.Model
        Under ``"float32"``, ``build()`` itself. Otherwise the same architecture (same
        layer names, weights layout and model name) whose layers compute in the mixed
        policy, except the output layers and :data:`FLOAT32_LAYER_CLASSES`, which compute
        in float32, so the model's outputs are float32.

    Examples
    --------
    >>> from keras_ser import models
    >>> model = build_in_precision(
    ...     lambda: models.build("zhao2018_attention_blstm_fcn", num_classes=4), "mixed_bfloat16")
    >>> model.get_layer("conv_1").compute_dtype, model.get_layer("predictions").compute_dtype
    ('bfloat16', 'float32')
    """
    if policy not in PRECISIONS[:3]:
        raise ParameterError(f"policy must be one of {PRECISIONS[:3]} (resolve 'auto' first), got {policy!r}")
    if policy == "float32":
        return build()
    with policy_scope(policy):
        return _float32_outputs(build())


def _float32_outputs(model):
    """Clone ``model`` (under the current policy) with its output layers and attention in float32.

    A nested functional model that produces an output (e.g. a ``keras.applications``
    backbone with its classifier) is treated the same way, recursively.
    """
    float32_layers = _output_layer_names(model)

    def clone_layer(layer):
        if layer.name in float32_layers and isinstance(layer, keras.Model):
            return _float32_outputs(layer)
        config = layer.get_config()
        if layer.name in float32_layers or type(layer).__name__ in FLOAT32_LAYER_CLASSES:
            config["dtype"] = "float32"
        return type(layer).from_config(config)

    return keras.models.clone_model(model, clone_function=clone_layer)


def describe_policy(precision, policy):
    """One log line naming what was asked for and what runs.

    Examples
    --------
    >>> describe_policy("auto", "mixed_bfloat16")
    'precision: auto -> mixed_bfloat16'
    """
    return f"precision: {precision} -> {policy}" if precision == "auto" else f"precision: {policy}"
