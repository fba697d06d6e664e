"""Export a trained model as a TensorFlow SavedModel for TF Serving.

Command line::

    python -m keras_ser.export RUN_OR_MODEL_DIR OUT_DIR [--fold NAME] [--speaker-files A.wav B.wav ...]

(a RUN_DIR's fold is chosen as in :mod:`keras_ser.predict`). A model trained on
per-speaker standardised features (``frontend.standardize = "speaker"``) serves
one speaker: its graph holds fixed statistics, by default those of its fold's
test speaker; ``--speaker-files`` bakes in those of the speaker whose files are
given (:meth:`keras_ser.predict.Predictor.adapt_to_speaker`). The SavedModel is a
``tf.Module`` with the whole chain ``FrontEnd -> model -> segment pooling`` in the
graph, so a client sends raw audio and needs no keras_ser:

``serving_default``
    input ``waveform``: float32 ``[batch, samples]`` (a single utterance is
    ``[1, samples]``), mono, in [-1, 1], at the front
    end's sample rate (16 kHz for every 16 kHz preset; the raw-wave presets of 001
    1D and 003 were trained on 22.05 kHz audio and take 22.05 kHz, which the
    ``metadata`` signature states), any length of at least ``min_samples``
    (25 ms, the shortest file ``keras_ser.audio.load`` accepts). Rows of one request
    share one length.
    outputs ``probabilities``: float32 ``[batch, classes]``; ``label_names``: string
    ``[batch, classes]`` (the class names, repeated per row so that TF Serving's row
    format pairs them with each prediction).
``metadata``
    no input; outputs ``label_names`` ``[classes]``, ``sample_rate`` and
    ``min_samples`` (int32 scalars) and ``silence_floor_dbfs`` (float32 scalar).

A request fails with ``InvalidArgumentError`` whose message says what is wrong,
checked in this order: input of another rank than 2 (the message gives the
expected ``[batch, samples]`` and the shape received), an empty batch, a
too-short waveform, a NaN or infinite sample, and a silent row, whose RMS is
below :data:`keras_ser.audio.SILENCE_FLOOR_DBFS` (-70 dBFS, the floor
``keras_ser.audio.load`` and ``predict`` use): silence never gets an emotion.
A row with samples outside [-1, 1] is divided by its peak, the rule
``keras_ser.audio.load`` applies to such files.
The signature declares ``waveform`` with unknown rank so that a request of the
wrong rank reaches the rank check (a declared ``[-1, -1]`` is not enforced by the
signature, and the graph then failed deep inside with "slice index 1 ... out of
bounds").

Examples
--------
>>> from keras_ser.export import export
>>> export("runs/zhao2019_emodb", "serving/ser/1")                     # doctest: +SKIP
>>> import tensorflow as tf
>>> serve = tf.saved_model.load("serving/ser/1").signatures["serving_default"]  # doctest: +SKIP
>>> serve(waveform=tf.zeros([1, 32000]))["probabilities"].shape        # doctest: +SKIP
TensorShape([1, 7])
"""

import argparse
import math
import pathlib
import sys

from keras_ser import _cli
from keras_ser.errors import DataError, ParameterError


def _serving_module(predictor):
    import tensorflow as tf

    from keras_ser.audio import MIN_DURATION, SILENCE_FLOOR_DBFS
    from keras_ser.predict import pooled_probabilities

    sample_rate = predictor.sample_rate
    min_samples = int(math.ceil(MIN_DURATION * sample_rate))
    silence_floor_rms = 10.0 ** (SILENCE_FLOOR_DBFS / 20.0)
    pooling = predictor.pooling

    def after(check, tensor):
        # Each check runs after the previous one, so a request gets the first failing check's message.
        with tf.control_dependencies([check]):
            return tf.identity(tensor)

    class SERServing(tf.Module):
        def __init__(self):
            super().__init__(name="keras_ser_serving")
            self.frontend = predictor.frontend
            self.model = predictor.model
            # Listed explicitly so that every weight is tracked by the checkpoint.
            self.model_variables = list(predictor.model.variables)
            self.label_names = tf.constant(predictor.labels, dtype=tf.string)
            self.sample_rate = tf.constant(sample_rate, tf.int32)
            self.min_samples = tf.constant(min_samples, tf.int32)
            self.silence_floor_dbfs = tf.constant(SILENCE_FLOOR_DBFS, tf.float32)

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="waveform")])
        def serve(self, waveform):
            waveform = after(tf.debugging.Assert(tf.equal(tf.rank(waveform), 2), [
                f"waveform must have rank 2, [batch, samples] of mono float32 audio at {sample_rate} Hz "
                "(one utterance is [1, samples]); got shape", tf.shape(waveform)]), waveform)
            # Static shape only: an EnsureShape op would run before the rank check, with a vaguer message.
            waveform.set_shape([None, None])
            shape = tf.shape(waveform)
            waveform = after(tf.debugging.assert_positive(
                shape[0], message="empty request: the waveform batch has no rows"), waveform)
            waveform = after(tf.debugging.assert_greater_equal(
                shape[1], min_samples,
                message=(f"waveform too short: need at least {min_samples} samples "
                         f"({MIN_DURATION * 1000:.0f} ms at {sample_rate} Hz)")), waveform)
            waveform = tf.debugging.assert_all_finite(waveform, message="waveform has NaN or Inf samples")
            waveform = waveform / tf.maximum(tf.reduce_max(tf.abs(waveform), axis=1, keepdims=True), 1.0)
            rms = tf.sqrt(tf.reduce_mean(tf.square(waveform), axis=1))
            waveform = after(tf.debugging.Assert(tf.reduce_all(rms >= silence_floor_rms), [
                f"silent waveform: a row's RMS is below the silence floor {SILENCE_FLOOR_DBFS:.0f} dBFS "
                "(keras_ser.audio.SILENCE_FLOOR_DBFS), so no emotion is given; row is silent:",
                rms < silence_floor_rms], summarize=64), waveform)
            probabilities = pooled_probabilities(self.frontend, self.model, waveform, pooling)
            labels = tf.tile(self.label_names[None, :], tf.stack([shape[0], 1]))
            return {"probabilities": tf.identity(probabilities, name="probabilities"),
                    "label_names": labels}

        @tf.function(input_signature=[])
        def metadata(self):
            return {"label_names": self.label_names, "sample_rate": self.sample_rate,
                    "min_samples": self.min_samples, "silence_floor_dbfs": self.silence_floor_dbfs}

    return SERServing()


def export(path, out_dir, fold=None, speaker_files=()):
    """Write the SavedModel of ``path`` (RUN_DIR or MODEL DIR) to ``out_dir``.

    Parameters
    ----------
    path : str or path-like
        RUN_DIR or MODEL DIR (see :func:`keras_ser.experiments.run_dir.resolve_model_dir`).
    out_dir : str or path-like
        New or empty directory (TF Serving expects ``<model>/<version>/``).
    fold : str, optional
        Fold of a RUN_DIR; default: best validation UA.
    speaker_files : sequence of path-like
        Utterances of the one speaker a per-speaker standardised model will serve;
        the graph standardises with their statistics.

    Returns
    -------
    keras_ser.predict.Predictor
        The exported model, loaded (its ``reason`` says which one was chosen).

    Raises
    ------
    ParameterError
        ``out_dir`` exists and is not empty.
    """
    import tensorflow as tf

    from keras_ser.predict import Predictor

    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ParameterError(f"export directory {out_dir} exists and is not empty")
    predictor = Predictor.from_path(path, fold)
    if speaker_files:
        from keras_ser import audio

        predictor.adapt_to_speaker([audio.load(f, sr=predictor.sample_rate) for f in speaker_files])
    module = _serving_module(predictor)
    tf.saved_model.save(
        module, str(out_dir),
        signatures={"serving_default": module.serve, "metadata": module.metadata},
    )
    return predictor


def main(argv=None):
    """Entry point of ``python -m keras_ser.export``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_ser.export",
        description="Write a TF Serving SavedModel (raw waveform in, probabilities and labels out).",
    )
    parser.add_argument("model", help="a RUN_DIR of keras_ser.train or a MODEL DIR")
    parser.add_argument("out_dir", help="new or empty output directory")
    parser.add_argument("--fold", help="fold of a RUN_DIR (default: best validation UA)")
    parser.add_argument("--speaker-files", nargs="+", default=(), metavar="WAV",
                        help="utterances of the speaker a per-speaker standardised model will serve")
    _cli.add_common_arguments(parser)
    args = parser.parse_args(argv)
    _cli.configure(args)
    try:
        predictor = export(args.model, args.out_dir, args.fold, args.speaker_files)
    except (DataError, ParameterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(predictor.reason)
    if predictor.speaker_standardized and not args.speaker_files:
        print(f"note: the SavedModel standardises features with the statistics of the test speaker of "
              f"{predictor.model_dir}; to serve another speaker, export with --speaker-files", file=sys.stderr)
    print(f"SavedModel written to {args.out_dir}: serving_default(waveform float32 [batch, samples] "
          f"at {predictor.sample_rate} Hz) -> probabilities [batch, {len(predictor.labels)}], "
          f"label_names {predictor.labels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
