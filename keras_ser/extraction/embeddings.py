"""The deep-spectrum representation of a trained keras_ser model (``embedding:RUN_DIR``).

zhao2019 (Sec. IV, Table 7) compares the ImageNet-CNN features of
:mod:`keras_ser.extraction.deep_spectrum` with the representation its own
Attention-BLSTM-FCN learns: the output of the layer named ``"embedding"``.
:class:`EmbeddingExtractor` loads a saved fold model and runs ``waveform -> FrontEnd ->
model`` up to that layer.

Imports NumPy, :mod:`keras_ser.errors` and :mod:`keras_ser.experiments.run_dir` (finding
the model directory); Keras, :mod:`keras_ser.frontend` and :mod:`keras_ser.models` when
an extractor is built.
"""

import json
import sys

import numpy as np

from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.run_dir import resolve_model_dir


class EmbeddingExtractor:
    """The deep-spectrum representation of a trained network (zhao2019 Sec. IV, Table 7).

    Loads a MODEL DIR (``model.keras``, ``frontend.json``, ``meta.json``, see :mod:`keras_ser.predict`),
    runs ``waveform -> FrontEnd -> model`` and returns the output of the layer named
    ``layer`` (``"embedding"`` in the models of zhao2019). A time-distributed embedding
    ``[b, t, d]`` is averaged over time; with ``meta["pooling"] == "mean_segments"``
    the segment embeddings of an utterance are averaged (zhang2021_multicnn's segment pooling).

    Parameters
    ----------
    run_dir : path-like
        A MODEL DIR or a RUN_DIR (see :func:`keras_ser.experiments.run_dir.resolve_model_dir`).
    fold : str, optional
        Fold of a multi-fold run, required when the run has several fold models
        (policy ``"explicit"``). In leave-one-speaker-out evaluation use the fold's
        own network, which never saw the fold's test speaker.
    layer : str
        Name of the layer whose output is the representation. A layer of a nested
        model is found too: in a zhang2021_dcnn model (the DCNN applied to every
        segment, then the stage-2 network), ``"fc7"`` gives the fine-tuned DCNN's fc7
        of every segment (averaged over the segments) and ``"attention"`` the stage-2
        utterance vector Z.

    Waveforms are expected at the front end's ``sample_rate`` (``frontend.json``).
    A model trained on per-speaker standardised features
    (``frontend.standardize="speaker"``) has ``speaker_standardized = True``:
    :func:`keras_ser.extraction.extract` then needs each input's speaker and
    standardises every speaker with its own statistics (:meth:`adapt_to_speaker`).

    Examples
    --------
    >>> ex = EmbeddingExtractor("runs/zhao2019_emodb", fold="03")       # doctest: +SKIP
    """

    framewise = False

    def __init__(self, run_dir, fold=None, layer="embedding"):
        import keras

        from keras_ser.frontend import FrontEnd
        from keras_ser.frontend.presets import revision_note

        self.model_dir, _ = resolve_model_dir(run_dir, fold, policy="explicit")
        meta_path = self.model_dir / "meta.json"
        self.meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        frontend_path = self.model_dir / "frontend.json"
        if not frontend_path.is_file():
            raise DataError(f"model directory {self.model_dir} has no frontend.json")
        frontend_config = json.loads(frontend_path.read_text())
        self.frontend = FrontEnd.from_config(frontend_config)
        note = revision_note(self.model_dir, self.meta.get("frontend_revision"), self.frontend.settings)
        if note:
            print(f"note: {note}", file=sys.stderr)
        # Its stored statistics are the fold's test speaker's: every other speaker needs its own,
        # so such an extractor embeds nothing before adapt_to_speaker.
        self.speaker_standardized = frontend_config.get("standardize") == "speaker"
        self._adapted = False
        self.sample_rate = int(frontend_config.get("sample_rate", 16000))
        model = keras.saving.load_model(self.model_dir / "model.keras", compile=False)
        output = _layer_output(model, layer)
        if output is None:
            raise ParameterError(f"model in {self.model_dir} has no layer named {layer!r}")
        self.model = keras.Model(model.inputs, output)
        self.dimension = int(output.shape[-1])
        self.feature_names = [f"embedding_{i}" for i in range(self.dimension)]
        self.description = f"{layer} of {self.model_dir} ({self.meta.get('recipe', 'trained model')})"

    def adapt_to_speaker(self, waveforms):
        """Standardise with one speaker's statistics (models with ``standardize="speaker"``).

        :func:`keras_ser.extraction.extract` calls it before each speaker's files, so
        that every speaker is embedded as the runner standardised it in training
        (:func:`keras_ser.frontend.with_speaker_statistics`).
        """
        from keras_ser.frontend import with_speaker_statistics

        self.frontend = with_speaker_statistics(self.frontend, waveforms)
        self._adapted = True

    def _embed(self, batch):
        import keras

        features = self.frontend(batch)
        segmented = self.meta.get("pooling") == "mean_segments"
        if segmented:  # [batch, segments, ...] -> one model batch of all segments
            shape = tuple(features.shape)
            features = keras.ops.reshape(features, (-1,) + shape[2:])
        values = keras.ops.convert_to_numpy(self.model(features, training=False))
        if values.ndim > 2:
            values = values.reshape(values.shape[0], -1, values.shape[-1]).mean(axis=1)
        if segmented:
            values = values.reshape(len(batch), -1, values.shape[-1]).mean(axis=1)
        return values

    def extract_batch(self, waveforms):
        """Embeddings ``[n, dimension]``; equal-length waveforms share one forward pass.

        Raises
        ------
        ParameterError
            For a per-speaker standardised model not yet adapted to a speaker.
        """
        if self.speaker_standardized and not self._adapted:
            raise ParameterError(
                f"{self.model_dir} standardises each speaker with its own statistics "
                "(frontend.standardize='speaker'): call adapt_to_speaker() with the speaker's waveforms first, "
                "or use keras_ser.extraction.extract on utterances that carry speaker ids")
        out = np.zeros((len(waveforms), self.dimension), np.float32)
        by_length = {}
        for i, wave in enumerate(waveforms):
            by_length.setdefault(len(wave), []).append(i)
        for indices in by_length.values():
            batch = np.stack([np.asarray(waveforms[i], np.float32) for i in indices])
            out[indices] = self._embed(batch)
        return out


def _layer_output(model, name):
    """The symbolic output of the layer ``name`` of ``model`` or of a model nested in it, or None.

    A nested model is rebuilt up to that layer and called on what feeds it in ``model``;
    one wrapped in ``TimeDistributed`` (zhang2021_dcnn's DCNN over the segments) stays
    wrapped, so its output keeps the segment axis.
    """
    import keras

    if name in {layer.name for layer in model.layers}:
        return model.get_layer(name).output
    for layer in model.layers:
        wrapped = isinstance(layer, keras.layers.TimeDistributed)
        inner = layer.layer if wrapped else layer
        if not isinstance(inner, keras.Model):
            continue
        output = _layer_output(inner, name)
        if output is None:
            continue
        part = keras.Model(inner.inputs[0] if len(inner.inputs) == 1 else inner.inputs, output)
        # What feeds the layer in this model's graph: a nested Functional's own ``input`` property
        # returns its inner inputs instead, so the base class's property is read.
        feed = keras.Operation.input.fget(layer)
        return (keras.layers.TimeDistributed(part) if wrapped else part)(feed)
    return None
