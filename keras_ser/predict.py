"""Emotion probabilities for audio files from a trained run or MODEL DIR.

Command line::

    python -m keras_ser.predict RUN_OR_MODEL_DIR file.wav [file.wav ...] [--fold NAME] [--json] [--adapt-speaker]

A MODEL DIR holds ``model.keras`` (taking the front-end output),
``frontend.json`` (``FrontEnd.get_config()``), ``labels.json`` (output order) and
``meta.json`` (``"pooling": "none" | "mean_segments"``). The prediction chain is
``audio.load(path, sr=front end rate) -> FrontEnd -> model -> pooling``; with
``"mean_segments"`` the model scores every segment of the utterance and the
utterance's probabilities are the mean of its segment probabilities (zhang2021_multicnn Sec. 3.1).

A model trained with ``frontend.standardize = "speaker"`` expects features
standardised with the statistics of the speaker being recognised. The saved front
end of a fold model holds those of its fold's test speaker; that of a run's final
model (``train --final``) those of the whole training set, every speaker's frames
pooled: a fallback for a speaker never heard. ``--adapt-speaker`` (or
:meth:`Predictor.adapt_to_speaker`) computes them from the given files instead,
which must then all be one speaker's.

Silent input gets no emotion: a file is loaded with :func:`keras_ser.audio.load`,
which refuses one whose RMS is below :data:`keras_ser.audio.SILENCE_FLOOR_DBFS`
(-70 dBFS) with a ``DataError`` naming it, and :meth:`Predictor.predict_waveforms`
refuses such a waveform row (and a non-finite one) the same way; the command
line prints the error and exits with status 2. A waveform row peaking above
:data:`keras_ser.audio.WAVEFORM_PEAK_LIMIT` (1.1, which lets the overshoot of resampling
a full-scale file pass) is divided by its peak, as ``load`` does for such files. The
exported SavedModel applies the same floor and rule (:mod:`keras_ser.export`).

Choosing the model of a RUN_DIR
-------------------------------
A run trained with ``--final`` holds a deployable model trained on every speaker
(``final/model``, :mod:`keras_ser.experiments.final`), used by default. Otherwise, or
with ``--fold``, a fold model: a run directory holds one per fold
(``folds/<fold>/model``). By default the
fold whose model has the best *validation* UA is used: the ``validation_scores.ua``
of its ``metrics.json`` when recorded there, else the UA of its
``val_predictions.csv`` (the saved model's predictions on the fold's validation
speakers). Test scores are never used to choose, since every fold's test speaker is
a different person. Ties go to the first fold by name; folds without a validation
set rank last. ``--fold NAME`` picks a fold explicitly. The choice and its reason
are printed.

Examples
--------
>>> from keras_ser.predict import Predictor
>>> predictor = Predictor.from_path("runs/zhao2019_emodb")           # doctest: +SKIP
>>> predictor.predict_files(["03a01Fa.wav"])[0].round(3)             # doctest: +SKIP
array([0.91, 0.01, ...])
"""

import argparse
import json
import pathlib
import sys

import numpy as np

from keras_ser import _cli
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.run_dir import MODEL_FILES, read_json, resolve_model_dir

POOLINGS = ("none", "mean_segments")


def _register_custom_objects():
    # model.keras names keras_ser layers by their registered names; importing the
    # modules registers them before deserialisation.
    import keras_ser.frontend.layers  # noqa: F401
    import keras_ser.layers  # noqa: F401


def pooled_probabilities(frontend, model, waveform, pooling):
    """``[batch, samples]`` waveforms -> ``[batch, classes]`` probabilities (graph-safe).

    With ``pooling="mean_segments"`` the front end yields ``[batch, segments, ...]``;
    the model scores the segments and their probabilities are averaged per row.
    """
    return pooled_scores(model, frontend(waveform), pooling)


def pooled_scores(model, features, pooling):
    """Front-end output ``features`` -> ``[batch, classes]`` probabilities (graph-safe).

    The model half of :func:`pooled_probabilities`, for callers that compute or
    standardise the features themselves (the SavedModel's per-request speaker
    statistics, :mod:`keras_ser.export`).
    """
    import tensorflow as tf

    if pooling not in POOLINGS:
        raise ParameterError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if pooling == "none":
        return tf.convert_to_tensor(model(features, training=False))
    shape = tf.shape(features)
    flat = tf.reshape(features, tf.concat([[-1], shape[2:]], axis=0))
    scores = tf.convert_to_tensor(model(flat, training=False))
    scores = tf.reshape(scores, tf.stack([shape[0], shape[1], tf.shape(scores)[-1]]))
    return tf.reduce_mean(scores, axis=1)


def regression_values(model, features, num_samples, hop):
    """Front-end output ``[batch, sequences, frames, samples]`` -> ``[batch, dims]`` values (graph-safe).

    The utterance value of a regression model (``train.loss = "ccc"``, tzirakis2021), as the
    runner scores it (:func:`keras_ser.experiments.neural.utterance_means`): the model's
    per-frame outputs over the sequences of a row joined, then averaged over the
    ``ceil(num_samples / hop)`` frames that hold audio (the zero frames padding the last
    sequence left out); a model with one output per sequence is averaged over the sequences.
    Rows share ``num_samples`` (one batch has one length).
    """
    import tensorflow as tf

    shape = tf.shape(features)
    flat = tf.reshape(features, tf.concat([[-1], shape[2:]], axis=0))
    out = tf.convert_to_tensor(model(flat, training=False))
    dims = tf.shape(out)[-1]
    if out.shape.rank == 2:
        return tf.reduce_mean(tf.reshape(out, tf.stack([shape[0], shape[1], dims])), axis=1)
    frames = tf.reshape(out, tf.stack([shape[0], shape[1] * shape[2], dims]))
    valid = tf.clip_by_value((tf.cast(num_samples, tf.int32) + hop - 1) // hop, 1, shape[1] * shape[2])
    return tf.reduce_mean(frames[:, :valid], axis=1)


class Predictor:
    """A loaded MODEL DIR: ``waveform -> FrontEnd -> model -> pooling -> probabilities``.

    Parameters
    ----------
    model_dir : str or path-like
        A MODEL DIR (see the module docstring).

    Attributes
    ----------
    model_dir : pathlib.Path
    frontend : keras_ser.frontend.FrontEnd
    model : keras.Model
    labels : list of str
        Class names in output order.
    meta : dict
        ``meta.json``.
    pooling : {"none", "mean_segments"}
    regression : bool
        A regression model (``meta.json`` ``"task": "regression"``, ``train.loss = "ccc"``):
        :meth:`predict_waveforms` returns one continuous value per dimension of ``labels``
        (e.g. arousal, valence), not probabilities.
    sample_rate : int
        Rate the front end expects (16 kHz except the raw-wave presets of zhang2021_multicnn/003).
    reason : str
        How the model was chosen (set by :meth:`from_path`).

    Examples
    --------
    >>> predictor = Predictor("runs/x/folds/03/model")                  # doctest: +SKIP
    >>> predictor.predict_waveforms(np.zeros((1, 32000), "float32")).shape  # doctest: +SKIP
    (1, 7)
    """

    def __init__(self, model_dir):
        import keras

        from keras_ser.frontend import FrontEnd
        from keras_ser.frontend.presets import revision_note

        self.model_dir = pathlib.Path(model_dir)
        missing = [name for name in MODEL_FILES if not (self.model_dir / name).is_file()]
        if missing:
            raise DataError(f"MODEL DIR {self.model_dir} lacks {', '.join(missing)}")
        _register_custom_objects()
        self.labels = [str(name) for name in read_json(self.model_dir / "labels.json")]
        self.meta = read_json(self.model_dir / "meta.json")
        self.pooling = self.meta.get("pooling", "none")
        if self.pooling not in POOLINGS:
            raise DataError(
                f"{self.model_dir / 'meta.json'}: pooling must be one of {POOLINGS}, got {self.pooling!r}"
            )
        try:
            self.frontend = FrontEnd.from_config(read_json(self.model_dir / "frontend.json"))
        except ParameterError as error:
            raise DataError(f"{self.model_dir / 'frontend.json'}: {error}") from None
        note = revision_note(self.model_dir, self.meta.get("frontend_revision"), self.frontend.settings)
        if note:
            print(f"note: {note}", file=sys.stderr)
        model_file = self.model_dir / "model.keras"
        try:
            self.model = keras.saving.load_model(model_file, compile=False)
        except Exception as error:  # a damaged archive fails in zipfile, h5py, JSON or Keras itself
            raise DataError(f"{model_file}: cannot load the model ({type(error).__name__}: {error}); the file "
                            "is damaged or not a Keras model: retrain the fold or choose another with --fold"
                            ) from None
        if len(self.model.inputs) > 1 or self.model.inputs[0].name == "word_vectors":
            raise DataError(
                f"{model_file}: the model reads {[t.name for t in self.model.inputs]}; predict and export feed it "
                "the front end's audio only. Its word vectors come from the fold's fitted semantic extractor "
                "(FOLD/semantic: keras_ser.semantic.load_semantic(...).frames(utterances, vectors=...)) and the "
                "utterances' word timings: compute them and call the Keras model on both inputs")
        classes = self.model.output_shape[-1]
        if classes != len(self.labels):
            raise DataError(
                f"{self.model_dir}: the model has {classes} outputs but labels.json names "
                f"{len(self.labels)} classes"
            )
        self.sample_rate = int(self.frontend.sample_rate)
        self.regression = self.meta.get("task") == "regression"
        settings = self.frontend.settings
        self.hop = int(settings.get("segment_hop_samples") or settings.get("segment_samples") or 0)
        if self.regression and (settings.get("representation") != "raw_segments" or not settings.get("sequence_frames")):
            raise DataError(f"{self.model_dir}: a regression model needs a raw_segments front end with "
                            f"sequence_frames (frontend.json has {settings.get('representation')!r})")
        self.reason = f"model: {self.model_dir}"

    @classmethod
    def from_path(cls, path, fold=None):
        """Load the MODEL DIR that :func:`keras_ser.experiments.run_dir.resolve_model_dir` picks for ``path``.

        A RUN_DIR's model is fold ``fold``'s, else its final model (``train --final``),
        else the fold model with the best validation UA (policy ``"deployable"``).
        """
        model_dir, reason = resolve_model_dir(path, fold, policy="deployable")
        predictor = cls(model_dir)
        predictor.reason = reason
        return predictor

    @property
    def statistics_source(self):
        """Whose statistics a speaker-standardised front end holds, in words (for notes to the user)."""
        if self.meta.get("speaker_statistics") == "training set":
            return "the whole training set (every training speaker's frames pooled)"
        return "its fold's test speaker"

    @property
    def speaker_standardized(self):
        """True for a model trained on per-speaker standardised features (``standardize="speaker"``).

        Its front end holds the statistics of its fold's test speaker(s); for
        another speaker call :meth:`adapt_to_speaker` first.
        """
        return self.frontend.settings.get("standardize") == "speaker"

    def adapt_to_speaker(self, waveforms):
        """Standardise with the statistics of one new speaker, computed from ``waveforms``.

        The per-speaker normalisation of training (``frontend.standardize="speaker"``):
        see :func:`keras_ser.frontend.with_speaker_statistics`.

        Parameters
        ----------
        waveforms : sequence of 1-D arrays
            The speaker's utterances at :attr:`sample_rate` (lengths may differ).

        Raises
        ------
        ParameterError
            If the model is not speaker-standardised, or ``waveforms`` is empty.
        """
        from keras_ser.frontend import with_speaker_statistics

        self.frontend = with_speaker_statistics(self.frontend, waveforms)
        self.reason += f"; standardised with the statistics of the {len(waveforms)} given utterance(s)"

    def predict_waveforms(self, waveforms):
        """Probabilities ``[batch, classes]`` (float32 NumPy) of waveforms at :attr:`sample_rate`.

        For a :attr:`regression` model, the values ``[batch, dims]`` instead
        (:func:`regression_values`).

        Rows of a batch share one length; predict utterances of different lengths
        one by one (as :meth:`predict_files` does). A row peaking above
        :data:`keras_ser.audio.WAVEFORM_PEAK_LIMIT` is divided by its peak (the rule of
        :func:`keras_ser.audio.load`, with headroom for resampling overshoot).

        Raises
        ------
        DataError
            The rows are shorter than :data:`keras_ser.audio.MIN_DURATION`, or a
            row has NaN or infinite samples, or is silent (RMS below
            :data:`keras_ser.audio.SILENCE_FLOOR_DBFS`): no emotion is given for it.
        """
        from keras_ser.audio import MIN_DURATION, SILENCE_FLOOR_DBFS, WAVEFORM_PEAK_LIMIT, rms_dbfs

        waveforms = np.asarray(waveforms, np.float32)
        if waveforms.ndim != 2 or waveforms.shape[0] == 0 or waveforms.shape[1] == 0:
            raise ParameterError(f"waveforms must have shape [batch>0, samples>0], got {waveforms.shape}")
        min_samples = int(np.ceil(MIN_DURATION * self.sample_rate))
        if waveforms.shape[1] < min_samples:
            raise DataError(f"waveforms of {waveforms.shape[1]} samples are shorter than the "
                            f"{1000 * MIN_DURATION:.0f} ms minimum ({min_samples} samples at {self.sample_rate} Hz)")
        broken = [i for i, row in enumerate(waveforms) if not np.all(np.isfinite(row))]
        if broken:
            raise DataError(f"waveform row(s) {broken} have NaN or infinite samples")
        peaks = np.max(np.abs(waveforms), axis=1, keepdims=True)
        loud = peaks > WAVEFORM_PEAK_LIMIT
        # Only rows past the limit are divided: a silent row's zero peak must not be.
        waveforms = np.divide(waveforms, peaks, out=waveforms.copy(), where=loud)
        silent = [i for i, row in enumerate(waveforms) if rms_dbfs(row) < SILENCE_FLOOR_DBFS]
        if silent:
            raise DataError(f"waveform row(s) {silent} are silent: RMS below the silence floor "
                            f"{SILENCE_FLOOR_DBFS:.0f} dBFS (keras_ser.audio.SILENCE_FLOOR_DBFS)")
        if self.regression:
            return np.asarray(regression_values(self.model, self.frontend(waveforms), waveforms.shape[1], self.hop))
        return np.asarray(pooled_probabilities(self.frontend, self.model, waveforms, self.pooling))

    def predict_files(self, paths):
        """Probabilities ``[files, classes]`` (regression: values ``[files, dims]``) of audio files, each
        loaded with ``audio.load``."""
        from keras_ser import audio

        rows = [self.predict_waveforms(audio.load(path, sr=self.sample_rate)[None])[0] for path in paths]
        return np.stack(rows) if rows else np.zeros((0, len(self.labels)), np.float32)


def format_table(paths, probabilities, labels, regression=False):
    """Readable table: one row per file, one column per class, then the prediction.

    ``regression``: the columns are the predicted values of each dimension, with no
    "predicted" class.
    """
    names = [str(p) for p in paths]
    name_width = max([len("file")] + [len(n) for n in names])
    widths = [max(6, len(label)) for label in labels]
    header = "file".ljust(name_width) + "  " + "  ".join(
        label.rjust(w) for label, w in zip(labels, widths)) + ("" if regression else "  predicted")
    lines = [header]
    for name, row in zip(names, probabilities):
        cells = "  ".join(f"{p:.3f}".rjust(w) for p, w in zip(row, widths))
        lines.append(f"{name.ljust(name_width)}  {cells}" + ("" if regression else f"  {labels[int(np.argmax(row))]}"))
    return "\n".join(lines)


def main(argv=None):
    """Entry point of ``python -m keras_ser.predict``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_ser.predict",
        description="Print per-file emotion probabilities of a trained keras_ser model.",
    )
    parser.add_argument("model", help="a RUN_DIR of keras_ser.train or a MODEL DIR")
    parser.add_argument("files", nargs="+", help="audio files (any rate; resampled)")
    parser.add_argument("--fold", help="fold of a RUN_DIR (default: its final model, else the fold with the "
                                       "best validation UA)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--adapt-speaker", action="store_true",
                        help="the files are one speaker: standardise with their statistics "
                             "(models trained with frontend.standardize=speaker)")
    _cli.add_common_arguments(parser)
    args = parser.parse_args(argv)
    _cli.configure(args)
    try:
        predictor = Predictor.from_path(args.model, args.fold)
        if args.adapt_speaker:
            from keras_ser import audio

            predictor.adapt_to_speaker([audio.load(path, sr=predictor.sample_rate) for path in args.files])
        elif predictor.speaker_standardized:
            print(f"note: {predictor.model_dir} standardises features with the statistics of "
                  f"{predictor.statistics_source}; for a known speaker pass several of that speaker's files "
                  "with --adapt-speaker", file=sys.stderr)
        probabilities = predictor.predict_files(args.files)
    except (DataError, ParameterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json and predictor.regression:
        print(json.dumps({
            "model_dir": str(predictor.model_dir),
            "choice": predictor.reason,
            "labels": predictor.labels,
            "predictions": [{"file": str(path), "values": {label: float(v) for label, v in zip(predictor.labels, row)}}
                            for path, row in zip(args.files, probabilities)],
        }, indent=2))
    elif args.json:
        print(json.dumps({
            "model_dir": str(predictor.model_dir),
            "choice": predictor.reason,
            "labels": predictor.labels,
            "predictions": [
                {"file": str(path),
                 "probabilities": {label: float(p) for label, p in zip(predictor.labels, row)},
                 "predicted": predictor.labels[int(np.argmax(row))]}
                for path, row in zip(args.files, probabilities)
            ],
        }, indent=2))
    else:
        print(predictor.reason)
        print(format_table(args.files, probabilities, predictor.labels, predictor.regression))
    return 0


if __name__ == "__main__":
    sys.exit(main())
