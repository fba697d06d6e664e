"""Export a trained model as a TensorFlow SavedModel for TF Serving.

Command line::

    python -m keras_ser.export RUN_OR_MODEL_DIR OUT_DIR [--fold NAME] [--speaker-files A.wav B.wav ...]

(a RUN_DIR's model is chosen as in :mod:`keras_ser.predict`: its final model trained on
every speaker when ``train --final`` made one, else a fold's). The SavedModel is a
``tf.Module`` with the whole chain ``FrontEnd -> model -> segment pooling`` in the
graph, so a client sends raw audio and needs no keras_ser:

Every signature's inputs are all required (a SignatureDef has no optional
inputs that every client honours); the options are extra signatures, and an empty
``[0]`` tensor in an option input means "not given":

``serving_default``
    input ``waveform``: float32 ``[batch, samples]`` (a single utterance is
    ``[1, samples]``), mono, in [-1, 1], at the front end's sample rate (16 kHz
    for every 16 kHz preset; the raw-wave presets of zhang2021_multicnn 1D and
    tzirakis2021 take 22.05 kHz, which the ``metadata`` signature states), rows
    of at least ``min_samples`` (25 ms, the shortest file ``keras_ser.audio.load``
    accepts). The graph does not resample: audio at another rate must be
    resampled by the client (``keras_ser.audio.load(path, sr=...)`` does, with
    soxr). Each row is scored alone, so a row's probabilities do not depend on
    the other rows of the request (the rows run one after another in a
    ``tf.map_fn``: a batch saves the request overhead, not compute). A speaker-standardised model standardises
    with the statistics stored with it (see ``serving_full``).
    outputs ``probabilities``: float32 ``[batch, classes]``; ``label_names``: string
    ``[batch, classes]`` (the class names, repeated per row so that TF Serving's row
    format pairs them with each prediction). A regression model (``train.loss = "ccc"``,
    ``metadata``'s ``task`` is ``"regression"``) outputs ``values`` float32 ``[batch, dims]``
    instead (one value per dimension and row: :func:`keras_ser.predict.regression_values`),
    with the dimension names as ``label_names``.
``serving_full``
    ``waveform`` as above, and ``lengths``: int32 ``[batch]``, the number of valid
    samples of each row (each at least ``min_samples``); the samples after them
    are padding and are ignored, so a clip padded with zeros to the request's
    longest row gets the probabilities of the clip alone. Empty: every row is
    whole. Models trained with ``frontend.standardize = "speaker"`` also take
    ``speaker_mean`` and ``speaker_std``: float32 ``[features]`` (one speaker for
    the whole request) or ``[batch, features]`` (one per row), the statistics of
    the speaker's unstandardised front-end features (the ``speaker_statistics``
    signature computes them, as :func:`keras_ser.frontend.with_speaker_statistics`
    does). Empty: the statistics stored with the model, which ``metadata``
    returns: for a run's final model (``train --final``) those of every frame of
    every training speaker pooled, a fallback for a speaker never heard; for a
    fold model those of its fold's test speaker; after ``export --speaker-files``
    those of the given files. Outputs as
    ``serving_default``.
``serving_wav``
    input ``wav``: string ``[batch]``, each element the bytes of one WAV file (what a
    REST client reads from disk, sent base64-encoded as ``{"b64": ...}`` in the
    JSON request), decoded with the stock ``tf.audio.decode_wav`` op: 16-bit PCM,
    any number of channels (averaged to mono, as ``keras_ser.audio.load`` does),
    and a sample rate equal to the front end's (``metadata``'s ``sample_rate``).
    The graph does not resample, and a file at another rate is refused with a
    message giving both rates: EMO-DB's 2-second copy is 22.05 kHz and must be
    resampled to 16 kHz first (e.g. ``sox in.wav -r 16000 out.wav``). Files of
    one request may differ in length; each is scored alone on its own samples.
    Outputs as ``serving_default``; speaker-standardised models use the stored
    statistics, and ``serving_wav_full`` takes ``wav``, ``speaker_mean`` and
    ``speaker_std`` as in ``serving_full``.
``speaker_statistics`` (speaker-standardised models only)
    inputs ``waveform`` and ``lengths`` as in ``serving_full``, the rows being one
    speaker's utterances; outputs ``speaker_mean`` and ``speaker_std``
    ``[features]`` over every valid frame of the rows, for the ``*_full``
    signatures.
``metadata``
    no input; outputs ``label_names`` ``[classes]``, ``sample_rate`` and
    ``min_samples`` (int32 scalars), ``silence_floor_dbfs`` (float32 scalar),
    ``standardize`` (string scalar: the front end's ``standardize`` setting, ""
    for none), ``task`` (string scalar: ``"classification"`` or ``"regression"``) and,
    for speaker-standardised models, the stored ``speaker_mean`` and ``speaker_std``.

A request fails with ``InvalidArgumentError`` whose message says what is wrong,
checked for every signature in this order: input of another rank than 2 (the
message gives the expected ``[batch, samples]`` and the shape received; for
``serving_wav``, rank 1 and the WAV sample rate), an empty batch, ``lengths``
not one count per row within the row's samples, a too-short row, a NaN or
infinite sample, a silent row, whose RMS is below
:data:`keras_ser.audio.SILENCE_FLOOR_DBFS` (-70 dBFS, the floor
``keras_ser.audio.load`` and ``predict`` use): silence never gets an emotion,
and speaker statistics of the wrong shape, not finite, or with a standard
deviation that is not positive. A row peaking above ``keras_ser.audio.WAVEFORM_PEAK_LIMIT``
(1.1) is divided by its peak, the rule ``keras_ser.audio.load`` applies to such files. Padding
is ignored by every check.
The signatures declare ``waveform`` with unknown rank so that a request of the
wrong rank reaches the rank check (a declared ``[-1, -1]`` is not enforced by the
signature, and the graph then failed deep inside with "slice index 1 ... out of
bounds").

Examples
--------
>>> from keras_ser.export import export
>>> export("runs/zhao2019_emodb", "serving/ser/1")                     # doctest: +SKIP
>>> import tensorflow as tf
>>> serve = tf.saved_model.load("serving/ser/1").signatures["serving_full"]  # doctest: +SKIP
>>> serve(waveform=tf.random.normal([2, 32000]) / 10, lengths=tf.constant([32000, 20000]))["probabilities"].shape  # doctest: +SKIP
TensorShape([2, 7])

One module on purpose: the serving module, its signatures and the command line describe one
SavedModel.
"""

import argparse
import math
import pathlib
import sys

from keras_ser import _cli
from keras_ser.errors import DataError, ParameterError


def _serving_module(predictor):
    import tensorflow as tf

    from keras_ser.audio import MIN_DURATION, SILENCE_FLOOR_DBFS, WAVEFORM_PEAK_LIMIT
    from keras_ser.frontend import FrontEnd
    from keras_ser.predict import pooled_scores, regression_values

    sample_rate = predictor.sample_rate
    min_samples = int(math.ceil(MIN_DURATION * sample_rate))
    silence_floor_rms = 10.0 ** (SILENCE_FLOOR_DBFS / 20.0)
    pooling = predictor.pooling
    classes = len(predictor.labels)
    speaker = predictor.speaker_standardized
    config = predictor.frontend.get_config()
    if speaker:
        # The statistics become inputs: the graph computes unstandardised features and applies each row's map.
        frontend = FrontEnd.from_config(dict(config, standardize=None, feature_mean=None, feature_std=None))
        features = len(config["feature_mean"])
        stored_mean = tf.constant(config["feature_mean"], tf.float32)
        stored_std = tf.constant(config["feature_std"], tf.float32)
    else:
        frontend = predictor.frontend
    whole_rows = tf.constant([], tf.int32)

    def after(check, tensor):
        # Each check runs after the previous one, so a request gets the first failing check's message.
        with tf.control_dependencies([check]):
            return tf.identity(tensor)

    def checked_rows(waveform, lengths):
        """The request's checks; returns the peak-normalised rows (padding zeroed) and their lengths."""
        waveform = after(tf.debugging.Assert(tf.equal(tf.rank(waveform), 2), [
            f"waveform must have rank 2, [batch, samples] of mono float32 audio at {sample_rate} Hz "
            "(one utterance is [1, samples]); got shape", tf.shape(waveform)]), waveform)
        # Static shape only: an EnsureShape op would run before the rank check, with a vaguer message.
        waveform.set_shape([None, None])
        shape = tf.shape(waveform)
        waveform = after(tf.debugging.assert_positive(
            shape[0], message="empty request: the waveform batch has no rows"), waveform)
        lengths = tf.reshape(lengths, [-1])
        lengths = tf.cond(tf.equal(tf.size(lengths), 0), lambda: tf.fill(shape[:1], shape[1]), lambda: lengths)
        lengths = after(tf.debugging.Assert(tf.equal(tf.size(lengths), shape[0]), [
            "lengths must hold one sample count per waveform row; rows, counts:", shape[0], tf.size(lengths)]),
            lengths)
        lengths = after(tf.debugging.Assert(tf.reduce_all(lengths <= shape[1]), [
            "lengths exceed the number of samples per waveform row; samples, lengths:", shape[1], lengths],
            summarize=64), lengths)
        lengths = after(tf.debugging.assert_greater_equal(
            tf.reduce_min(lengths), min_samples,
            message=(f"waveform too short: need at least {min_samples} samples "
                     f"({MIN_DURATION * 1000:.0f} ms at {sample_rate} Hz)")), lengths)
        mask = tf.sequence_mask(lengths, shape[1])
        # Padding is replaced before any check, so whatever a client pads with is ignored.
        waveform = tf.where(mask, waveform, tf.zeros_like(waveform))
        waveform = tf.debugging.assert_all_finite(waveform, message="waveform has NaN or Inf samples")
        peaks = tf.reduce_max(tf.abs(waveform), axis=1, keepdims=True)
        waveform = tf.where(peaks > WAVEFORM_PEAK_LIMIT, waveform / peaks, waveform)
        rms = tf.sqrt(tf.reduce_sum(tf.square(waveform), axis=1) / tf.cast(lengths, tf.float32))
        waveform = after(tf.debugging.Assert(tf.reduce_all(rms >= silence_floor_rms), [
            f"silent waveform: a row's RMS is below the silence floor {SILENCE_FLOOR_DBFS:.0f} dBFS "
            "(keras_ser.audio.SILENCE_FLOOR_DBFS), so no emotion is given; row is silent:",
            rms < silence_floor_rms], summarize=64), waveform)
        return waveform, lengths

    def row_statistics(values, name, rows):
        """``[features]`` or ``[rows, features]`` statistics, checked, as ``[rows, features]``."""
        shape = tf.shape(values)
        # Two leading zeros, so that a scalar's shape can be indexed too (and fails the check).
        padded = tf.concat([[0, 0], shape], axis=0)
        ok = tf.logical_or(tf.equal(tf.rank(values), 1), tf.equal(tf.rank(values), 2))
        ok = tf.logical_and(ok, tf.equal(padded[-1], features))
        ok = tf.logical_and(ok, tf.logical_or(tf.equal(tf.rank(values), 1),
                                              tf.reduce_any(tf.equal(padded[-2], tf.stack([1, rows])))))
        values = after(tf.debugging.Assert(ok, [
            f"{name} must be [{features}] (one speaker) or [batch, {features}] (one per row); got shape", shape]),
            values)
        values = tf.debugging.assert_all_finite(values, message=f"{name} has NaN or Inf values")
        return tf.broadcast_to(tf.reshape(values, [-1, features]), tf.stack([rows, features]))

    def score(waveform, lengths, speaker_mean=None, speaker_std=None):
        """``[batch, classes]`` probabilities; the statistics are given for speaker-standardised models only."""
        waveform, lengths = checked_rows(waveform, lengths)
        rows = tf.shape(waveform)[0]
        if speaker:
            given = tf.stack([tf.size(speaker_mean) > 0, tf.size(speaker_std) > 0])
            speaker_mean = after(tf.debugging.Assert(tf.equal(given[0], given[1]), [
                "give both speaker_mean and speaker_std, or neither (empty: the stored statistics); given:",
                given]), speaker_mean)
            speaker_mean = tf.cond(given[0], lambda: speaker_mean, lambda: stored_mean)
            speaker_std = tf.cond(given[1], lambda: speaker_std, lambda: stored_std)
            means = row_statistics(speaker_mean, "speaker_mean", rows)
            stds = row_statistics(speaker_std, "speaker_std", rows)
            stds = after(tf.debugging.Assert(tf.reduce_all(stds > 0), [
                "speaker_std must be positive"]), stds)
        else:
            means = stds = tf.zeros(tf.stack([rows, 0]))

        def one_row(row):
            # Each row alone, cut to its length: padding and other rows cannot reach its features.
            clip, length, mean, std = row
            feats = frontend(clip[None, :length])
            if speaker:
                feats = (feats - mean) / std
            if predictor.regression:
                return regression_values(predictor.model, feats, length, predictor.hop)[0]
            return pooled_scores(predictor.model, feats, pooling)[0]

        probabilities = tf.map_fn(one_row, (waveform, lengths, means, stds),
                                  fn_output_signature=tf.TensorSpec([classes], tf.float32))
        labels = tf.tile(label_names[None, :], tf.stack([rows, 1]))
        if predictor.regression:
            return {"values": tf.identity(probabilities, name="values"), "label_names": labels}
        return {"probabilities": tf.identity(probabilities, name="probabilities"), "label_names": labels}

    def decoded(wav):
        wav = after(tf.debugging.Assert(tf.equal(tf.rank(wav), 1), [
            "wav must have rank 1, [batch] of WAV file bytes (one file is [1]); got shape", tf.shape(wav)]), wav)
        wav.set_shape([None])

        def decode(contents):
            audio, rate = tf.audio.decode_wav(contents)
            return tf.RaggedTensor.from_tensor(tf.reduce_mean(audio, axis=1)[None])[0], rate

        audio, rates = tf.map_fn(decode, wav, fn_output_signature=(
            tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0), tf.TensorSpec([], tf.int32)))
        audio = after(tf.debugging.Assert(tf.reduce_all(tf.equal(rates, sample_rate)), [
            f"WAV sample rate must be {sample_rate} Hz, the rate of the model front end (the graph does not resample: "
            "resample the file first); rates of the files:", rates], summarize=64), audio)
        return audio.to_tensor(), tf.cast(audio.row_lengths(), tf.int32)

    waveform_spec = tf.TensorSpec(None, tf.float32, name="waveform")
    lengths_spec = tf.TensorSpec(None, tf.int32, name="lengths")
    wav_spec = tf.TensorSpec(None, tf.string, name="wav")
    label_names = tf.constant(predictor.labels, dtype=tf.string)
    module = tf.Module(name="keras_ser_serving")
    module.frontend = predictor.frontend
    module.model = predictor.model
    # Listed explicitly so that every weight is tracked by the checkpoint.
    module.model_variables = list(predictor.model.variables)
    metadata = {"label_names": label_names, "sample_rate": tf.constant(sample_rate, tf.int32),
                "min_samples": tf.constant(min_samples, tf.int32),
                "silence_floor_dbfs": tf.constant(SILENCE_FLOOR_DBFS, tf.float32),
                "standardize": tf.constant(config.get("standardize") or "", tf.string),
                "task": tf.constant("regression" if predictor.regression else "classification", tf.string)}
    if speaker:
        metadata.update(speaker_mean=stored_mean, speaker_std=stored_std)
        stat_specs = [tf.TensorSpec(None, tf.float32, name="speaker_mean"),
                      tf.TensorSpec(None, tf.float32, name="speaker_std")]

        @tf.function(input_signature=[waveform_spec, lengths_spec, *stat_specs])
        def serve_full(waveform, lengths, speaker_mean, speaker_std):
            return score(waveform, lengths, speaker_mean, speaker_std)

        @tf.function(input_signature=[wav_spec, *stat_specs])
        def serve_wav_full(wav, speaker_mean, speaker_std):
            return score(*decoded(wav), speaker_mean, speaker_std)

        @tf.function(input_signature=[waveform_spec, lengths_spec])
        def speaker_statistics(waveform, lengths):
            waveform, lengths = checked_rows(waveform, lengths)

            def sums(row):
                clip, length = row
                # float64 sums, as feature_statistics: dB features have means far above their spread.
                feats = tf.cast(frontend(clip[None, :length])[0], tf.float64)
                return (tf.reduce_sum(feats, axis=0), tf.reduce_sum(tf.square(feats), axis=0),
                        tf.cast(tf.shape(feats)[0], tf.float64))

            total, squares, frames = tf.map_fn(sums, (waveform, lengths), fn_output_signature=(
                tf.TensorSpec([features], tf.float64), tf.TensorSpec([features], tf.float64),
                tf.TensorSpec([], tf.float64)))
            count = tf.reduce_sum(frames)
            mean = tf.reduce_sum(total, axis=0) / count
            # The epsilon of keras_ser.frontend.feature_statistics, so that both give the same std.
            variance = tf.maximum(tf.reduce_sum(squares, axis=0) / count - tf.square(mean), 0.0)
            return {"speaker_mean": tf.cast(mean, tf.float32),
                    "speaker_std": tf.cast(tf.sqrt(variance + 1e-5), tf.float32)}

        module.serving_full, module.serving_wav_full = serve_full, serve_wav_full
        module.speaker_statistics = speaker_statistics
        no_statistics = (tf.constant([], tf.float32), tf.constant([], tf.float32))
    else:
        @tf.function(input_signature=[waveform_spec, lengths_spec])
        def serve_full(waveform, lengths):
            return score(waveform, lengths)

        module.serving_full = serve_full
        no_statistics = ()

    @tf.function(input_signature=[waveform_spec])
    def serve(waveform):
        return score(waveform, whole_rows, *no_statistics)

    @tf.function(input_signature=[wav_spec])
    def serve_wav(wav):
        return score(*decoded(wav), *no_statistics)

    @tf.function(input_signature=[])
    def metadata_function():
        return dict(metadata)

    module.serving_default, module.serving_wav, module.metadata = serve, serve_wav, metadata_function
    return module


def signatures(module):
    """The SavedModel signatures of a :func:`_serving_module`: signature name -> ``tf.function``."""
    names = ("serving_default", "serving_full", "serving_wav", "serving_wav_full", "speaker_statistics", "metadata")
    return {name: getattr(module, name) for name in names if hasattr(module, name)}


def export(path, out_dir, fold=None, speaker_files=()):
    """Write the SavedModel of ``path`` (RUN_DIR or MODEL DIR) to ``out_dir``.

    Parameters
    ----------
    path : str or path-like
        RUN_DIR or MODEL DIR (see :func:`keras_ser.experiments.run_dir.resolve_model_dir`).
    out_dir : str or path-like
        New or empty directory (TF Serving expects ``<model>/<version>/``).
    fold : str, optional
        Fold of a RUN_DIR; default: the run's final model (``train --final``), else the fold
        with the best validation UA.
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
        signatures=signatures(module),
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
    parser.add_argument("--fold", help="fold of a RUN_DIR (default: its final model, else the fold with the "
                                       "best validation UA)")
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
        print(f"note: unless a request gives a speaker's statistics (serving_full), the SavedModel standardises "
              f"features with those of {predictor.statistics_source} ({predictor.model_dir}); "
              "--speaker-files makes another speaker's the stored ones", file=sys.stderr)
    print(f"SavedModel written to {args.out_dir}: serving_default(waveform float32 [batch, samples] "
          f"at {predictor.sample_rate} Hz) -> {'values' if predictor.regression else 'probabilities'} "
          f"[batch, {len(predictor.labels)}], "
          f"label_names {predictor.labels}; also serving_full (lengths"
          f"{', speaker_mean, speaker_std' if predictor.speaker_standardized else ''}), serving_wav (WAV bytes at "
          f"{predictor.sample_rate} Hz){', speaker_statistics' if predictor.speaker_standardized else ''} "
          "and metadata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
