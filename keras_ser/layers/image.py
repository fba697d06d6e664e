"""Image layers of the ImageNet backbones: preprocessing, Caffe's LRN, grouped convolution.

AlexNet (Caffe ``bvlc_alexnet`` and torchvision) and Keras' VGG / ResNet-50 weights expect
their own input scaling (:class:`ImagePreprocessing`); Caffe's AlexNet also needs its local
response normalisation (:class:`LocalResponseNormalization`) and grouped convolutions
(:class:`GroupedConv2D`). See :mod:`keras_ser.models.backbones`.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_ser.errors import ParameterError

__all__ = [
    "CAFFE_BGR_MEAN",
    "TORCH_RGB_MEAN",
    "TORCH_RGB_STD",
    "GroupedConv2D",
    "ImagePreprocessing",
    "LocalResponseNormalization",
]

#: Per-channel mean (B, G, R) of Caffe's ``ilsvrc_2012_mean.npy``.
CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
#: torchvision's ImageNet normalisation (R, G, B), applied after scaling to [0, 1].
TORCH_RGB_MEAN = (0.485, 0.456, 0.406)
TORCH_RGB_STD = (0.229, 0.224, 0.225)

@keras.saving.register_keras_serializable(package="keras_ser")
class LocalResponseNormalization(keras.layers.Layer):
    """Caffe's cross-channel local response normalisation (``LRN``, ``ACROSS_CHANNELS``).

    ``b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_{c'}^2) ** beta`` with a
    window of ``size`` channels centred on ``c`` (zero-padded at the ends). Note that
    Caffe divides ``alpha`` by ``size``, whereas ``tf.nn.local_response_normalization``
    does not.

    Parameters
    ----------
    size : int, default 5
        Odd number of channels in the window.
    alpha, beta, k : float
        Caffe's defaults for AlexNet: 1e-4, 0.75, 1.0.

    Examples
    --------
    >>> import numpy as np
    >>> LocalResponseNormalization()(np.ones((1, 2, 2, 8), "float32")).shape
    TensorShape([1, 2, 2, 8])
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        super().__init__(**kwargs)
        if int(size) != size or size < 1 or size % 2 == 0:
            raise ParameterError(f"LRN size must be a positive odd integer, got {size!r}")
        self.size = int(size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)
        self.supports_masking = True

    def call(self, inputs):
        # TensorFlow's fused LRN kernel (forward and gradient) computes Caffe's formula with
        # alpha / size; it was 3x faster than a window sum of channel slices in a training
        # step. float32 inside, whatever the policy: in bfloat16 the sum of squares of
        # post-ReLU activations rounds badly.
        outputs = tf.nn.local_response_normalization(
            ops.cast(inputs, "float32"), depth_radius=self.size // 2, bias=self.k,
            alpha=self.alpha / self.size, beta=self.beta,
        )
        return ops.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)
        return config


@keras.saving.register_keras_serializable(package="keras_ser")
class GroupedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose grouped convolution runs as one convolution per group.

    Same arguments, weights (kernel ``[kh, kw, in_channels / groups, filters]``, bias) and
    outputs as ``keras.layers.Conv2D(..., groups=g)``, and so the same layout for Caffe's
    grouped ``bvlc_alexnet`` weights. Keras' TensorFlow backend compiles every grouped
    convolution with XLA on the CPU, which made the Caffe AlexNet's training step about
    twice as slow as the ungrouped one although groups halve the FLOPs; slicing the input
    and kernel channels per group and concatenating the outputs uses the ordinary kernels.

    Examples
    --------
    >>> import numpy as np
    >>> GroupedConv2D(8, 3, groups=2, padding="same")(np.ones((1, 5, 5, 4), "float32")).shape
    TensorShape([1, 5, 5, 8])
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1:
            return super().convolution_op(inputs, kernel)
        axis = -1 if self.data_format == "channels_last" else 1
        parts = zip(ops.split(inputs, self.groups, axis=axis), ops.split(kernel, self.groups, axis=-1))
        return ops.concatenate([super(GroupedConv2D, self).convolution_op(x, k) for x, k in parts], axis=axis)


@keras.saving.register_keras_serializable(package="keras_ser")
class ImagePreprocessing(keras.layers.Layer):
    """Map RGB images in [0, 255] to what a pre-trained backbone expects.

    Parameters
    ----------
    mode : {"caffe", "torch", "none"}
        ``"caffe"``: reverse the channels to BGR and subtract ``mean`` (given in BGR
        order; Caffe AlexNet and Keras' VGG16/19 "caffe" mode). ``"torch"``: divide by
        255, subtract ``mean`` and divide by ``std`` (RGB order; torchvision models).
        ``"none"``: identity.
    mean, std : sequence of 3 floats, optional
        Defaults: :data:`CAFFE_BGR_MEAN` for caffe, :data:`TORCH_RGB_MEAN` /
        :data:`TORCH_RGB_STD` for torch.

    Examples
    --------
    >>> import numpy as np
    >>> ImagePreprocessing("torch")(np.full((1, 1, 1, 3), 255.0, "float32")).shape
    TensorShape([1, 1, 1, 3])
    """

    def __init__(self, mode="caffe", mean=None, std=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "torch", "none"):
            raise ParameterError(f"ImagePreprocessing mode must be caffe|torch|none, got {mode!r}")
        self.mode = mode
        if mean is None:
            mean = {"caffe": CAFFE_BGR_MEAN, "torch": TORCH_RGB_MEAN, "none": (0.0, 0.0, 0.0)}[mode]
        if std is None:
            std = TORCH_RGB_STD if mode == "torch" else (1.0, 1.0, 1.0)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ParameterError("ImagePreprocessing mean and std need 3 values")

    def call(self, inputs):
        mean = ops.convert_to_tensor(np.asarray(self.mean, "float32"), dtype=inputs.dtype)
        std = ops.convert_to_tensor(np.asarray(self.std, "float32"), dtype=inputs.dtype)
        if self.mode == "caffe":
            return ops.flip(inputs, axis=-1) - mean
        if self.mode == "torch":
            return (inputs / 255.0 - mean) / std
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, mean=list(self.mean), std=list(self.std))
        return config
