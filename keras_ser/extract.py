"""Feature extraction to CSV / ARFF / NPZ: ``python -m keras_ser.extract``.

One command for every fixed feature representation compared in zhao2019
(Sec. IV-B, Table 7, Figs. 3-4) and used in zhang2021_multicnn's feature-level fusion (Table 7)::

    python -m keras_ser.extract --features egemaps --input emodb --out egemaps.csv
    python -m keras_ser.extract --features vgg16_fc7 --input /data/wavs --out vgg16.arff \\
        --window 1.0 --hop 0.5 --batch-size 32 [--weights vgg16.h5]

Feature names (:data:`FEATURES`):

============================ ====================================================
``egemaps`` / ``compare``    openSMILE eGeMAPSv02 (88) / ComParE_2016 (6373)
                             functionals (:mod:`keras_ser.opensmile_features`)
``logmel``                   40-band log-Mel (zhao2019's front end), mean and standard
                             deviation over time, or every frame with
                             ``--pooling none``
``alexnet_fc7``,             fc7 of the CNN on in-graph spectrogram images
``vgg16_fc7``, ``vgg19_fc7`` (:mod:`keras_ser.deep_spectrum`); without
                             ``--weights`` the CNN is random-init, NOT pretrained
``embedding:RUN_DIR``        the ``"embedding"`` layer of a trained model (zhao2019's
                             deep-spectrum representation); ``--fold`` picks the
                             fold of a multi-fold run
============================ ====================================================

Inputs (``--input``): a corpus name known to :func:`keras_ser.data.load_corpus`
(``emodb``), ``manifest:PATH`` or a CSV manifest file, a corpus directory whose
folder name is a corpus name (``/data/emodb``) -- these give labels and utterance
ids -- or one audio file or any other directory, whose audio files (``.wav .flac
.ogg``, recursively) are extracted *without labels* (the label column holds ``?``)
and named by their relative path (a single file by its name). A file that is
neither audio nor a UTF-8 text manifest is a ``DataError`` naming it.

Bad input: every file goes through :func:`keras_ser.audio.load` (its table of
handled cases), then must be at least :func:`minimum_duration` of the extractor
long (openSMILE 61 ms, log-Mel and the CNN images one 25 ms window), else a
``DataError`` names the file; a feature row that is not finite is a
``DataError`` naming the file, never a written NaN row.

Output layout (DeepSpectrum's, so existing SVM scripts keep working): one row per
utterance, or per window with ``--window/--hop`` (a ``timestamp`` column then holds
the window start in seconds), columns ``name, [timestamp], <features...>, label``.
The output is written to a hidden temporary file in the output's folder and renamed
at the end, so an interrupted run leaves no truncated output under the final name.
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import time

import numpy as np

from keras_ser import _cli
from keras_ser.audio import MIN_DURATION
from keras_ser.errors import DataError, KerasSERError, ParameterError
from keras_ser.experiments.run_dir import atomic_path

#: Extractor names accepted by :func:`get_extractor` (plus ``embedding:RUN_DIR``).
FEATURES = ("egemaps", "compare", "logmel", "alexnet_fc7", "vgg16_fc7", "vgg19_fc7")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
OUTPUT_FORMATS = (".csv", ".arff", ".npz")


class LogMelExtractor:
    """Log-Mel features of zhao2019's front end (40 bands, 25 ms / 10 ms, Sec. IV-B).

    Parameters
    ----------
    pooling : {"mean_std", "none"}
        ``"mean_std"``: per-band mean and standard deviation over time (2 x n_mels
        values per utterance); ``"none"``: one row per 10 ms frame.
    sample_rate : int
    **log_mel_options
        Passed to :func:`keras_ser.features.log_mel` (``n_mels``, ``fmin``, ...).

    Examples
    --------
    >>> ex = LogMelExtractor()                                   # doctest: +SKIP
    >>> ex.extract_batch([np.random.randn(32000)]).shape          # doctest: +SKIP
    (1, 80)
    """

    def __init__(self, pooling="mean_std", sample_rate=16000, **log_mel_options):
        if pooling not in ("mean_std", "none"):
            raise ParameterError(f"logmel pooling must be 'mean_std' or 'none', got {pooling!r}")
        self.pooling = pooling
        self.framewise = pooling == "none"
        self.sample_rate = sample_rate
        self.options = dict(log_mel_options)
        self.n_mels = int(self.options.get("n_mels", 40))
        self.options["n_mels"] = self.n_mels
        self.hop_seconds = float(self.options.get("hop_length", 0.010))
        self.min_duration = max(float(self.options.get("win_length", 0.025)), MIN_DURATION)
        bands = [f"logmel_{i}" for i in range(self.n_mels)]
        self.feature_names = bands if self.framewise else [f"{b}_mean" for b in bands] + [f"{b}_std" for b in bands]
        self.dimension = len(self.feature_names)
        self.description = f"log-Mel {self.n_mels} bands ({'framewise' if self.framewise else 'mean, std'})"

    def __getstate__(self):
        # The traced graph is a cache rebuilt on the next call, and tf.function objects do not pickle.
        state = dict(self.__dict__)
        state.pop("_graph", None)
        return state

    def frames(self, waveform):
        """Log-Mel matrix ``[frames, n_mels]`` of one waveform (at least one analysis window long)."""
        shortest = int(np.ceil(self.min_duration * self.sample_rate))
        if len(waveform) < shortest:
            raise DataError(f"waveform of {len(waveform)} samples is shorter than one "
                            f"{1000 * self.min_duration:.1f} ms analysis window ({shortest} samples at "
                            f"{self.sample_rate} Hz)")
        if getattr(self, "_graph", None) is None:
            import tensorflow as tf

            from keras_ser.features import log_mel

            # One traced graph for every length: eager calls per file cost more than the maths.
            self._graph = tf.function(
                lambda signal: log_mel(signal, sample_rate=self.sample_rate, **self.options),
                input_signature=[tf.TensorSpec([1, None], tf.float32)],
            )
        return self._graph(np.asarray(waveform, np.float32)[None]).numpy()[0]

    def extract_frames(self, waveform):
        """``(times in s, matrix [frames, n_mels])`` of one waveform (``pooling="none"``)."""
        matrix = self.frames(waveform)
        return np.arange(len(matrix)) * self.hop_seconds, matrix

    def extract_batch(self, waveforms):
        """Pooled statistics ``[n, 2 * n_mels]`` (``pooling="mean_std"``)."""
        rows = []
        for wave in waveforms:
            matrix = self.frames(wave)
            rows.append(np.concatenate([matrix.mean(axis=0), matrix.std(axis=0)]))
        return np.asarray(rows, np.float32).reshape(len(rows), self.dimension)


def get_extractor(name, **options):
    """The extractor called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`FEATURES` or ``"embedding:RUN_DIR"``.
    **options
        Passed to the extractor (e.g. ``weights``, ``n_mels``, ``pooling``, ``fold``).

    Examples
    --------
    >>> get_extractor("egemaps").dimension                  # doctest: +SKIP
    88
    >>> get_extractor("mfcc")
    Traceback (most recent call last):
    ...
    keras_ser.errors.ParameterError: unknown feature name 'mfcc'; expected one of egemaps, compare, logmel, alexnet_fc7, vgg16_fc7, vgg19_fc7, embedding:RUN_DIR
    """
    if not isinstance(name, str):
        raise ParameterError(f"feature name must be a string, got {name!r}")
    if name in ("egemaps", "compare"):
        from keras_ser.opensmile_features import OpenSmileExtractor

        return OpenSmileExtractor(name, **options)
    if name == "logmel":
        return LogMelExtractor(**options)
    from keras_ser import deep_spectrum

    if name in deep_spectrum.CNN_FEATURES:
        return deep_spectrum.DeepSpectrumExtractor(name, **options)
    if name.startswith("embedding:") and len(name) > len("embedding:"):
        return deep_spectrum.EmbeddingExtractor(name[len("embedding:"):], **options)
    raise ParameterError(
        f"unknown feature name {name!r}; expected one of {', '.join(FEATURES)}, embedding:RUN_DIR"
    )


def minimum_duration(extractor):
    """Shortest input, in seconds, for which ``extractor`` gives finite features.

    An extractor's own ``min_duration`` (openSMILE: 61 ms; log-Mel: one analysis
    window), else one spectrogram window of a CNN extractor's image, else the
    25 ms that :func:`keras_ser.audio.load` accepts.

    Examples
    --------
    >>> minimum_duration(LogMelExtractor())
    0.025
    """
    known = getattr(extractor, "min_duration", None)
    if known is not None:
        return float(known)
    image = getattr(extractor, "image", None)  # deep_spectrum.SpectrogramImage needs one window
    if image is not None:
        return max(MIN_DURATION, image.win_samples / image.sample_rate)
    return MIN_DURATION


@dataclasses.dataclass
class Item:
    """One input file: ``name`` (row name), ``path``, ``label`` and ``speaker`` (None if unknown)."""

    name: str
    path: pathlib.Path
    label: object = None
    speaker: object = None


def resolve_inputs(spec, data_dir=None):
    """Files and labels of ``--input``.

    Parameters
    ----------
    spec : str or path-like
        Corpus name, ``manifest:PATH``, a manifest file, a corpus directory, one
        audio file or a plain directory of audio files (no labels).

    Returns
    -------
    items : list of Item
    label_names : list of str or None
        The corpus's class order; None for a plain directory.
    """
    from keras_ser import data

    text = str(spec)
    path = pathlib.Path(text).expanduser()
    corpora = set(data.available_corpora())
    corpus = None
    if text.startswith("manifest:") or (text in corpora and not path.exists()):
        corpus, directory = text, data_dir
    elif path.is_file():
        if _is_audio(path):
            return [Item(path.name, path)], None
        if not _is_text(path):
            raise DataError(f"--input {path} is neither an audio file ({', '.join(AUDIO_SUFFIXES)} or another "
                            "format libsndfile reads) nor a CSV manifest (UTF-8 text with a header)")
        corpus, directory = f"manifest:{path}", None
    elif path.is_dir() and path.name in corpora:
        corpus, directory = path.name, path
    if corpus is not None:
        utterances = data.load_corpus(corpus, data_dir=directory)
        names = data.label_names(corpus) if not corpus.startswith("manifest:") else sorted(
            {u.label for u in utterances})
        return [Item(u.id, pathlib.Path(u.path), u.label, u.speaker) for u in utterances], list(names)
    if not path.is_dir():
        raise DataError(f"--input {text!r} is not a corpus name ({', '.join(sorted(corpora))}), "
                        "a manifest file or a directory")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {path}")
    return [Item(str(p.relative_to(path)), p) for p in files], None


def _is_audio(path):
    """An audio suffix, or a file libsndfile recognises (a broken ``.wav`` counts: load names it)."""
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return True
    import soundfile

    try:
        soundfile.info(str(path))
    except Exception:  # libsndfile raises several types for what it cannot read
        return False
    return True


def _is_text(path, probe=65536):
    with open(path, "rb") as handle:
        head = handle.read(probe)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # A multi-byte character may be cut at the end of the probe.
        if error.start < len(head) - 3:
            return False
        text = head[:error.start].decode("utf-8-sig")
    return "\x00" not in text


def segment_starts(n_samples, sample_rate, window, hop):
    """Start samples of the analysis windows of an utterance of ``n_samples``.

    Windows lie fully inside the utterance (a trailing remainder shorter than
    ``window`` is dropped, as DeepSpectrum does); an utterance shorter than one
    window yields a single window holding all of it.

    Examples
    --------
    >>> segment_starts(16000 * 3, 16000, 1.0, 0.5).tolist()
    [0, 8000, 16000, 24000, 32000]
    """
    if window is None:
        return np.array([0])
    if window <= 0 or hop is None or hop <= 0:
        raise ParameterError(f"--window and --hop must be positive seconds, got {window}, {hop}")
    size, step = int(round(window * sample_rate)), int(round(hop * sample_rate))
    if n_samples <= size:
        return np.array([0])
    return np.arange(0, n_samples - size + 1, step)


@dataclasses.dataclass
class FeatureTable:
    """Extracted features in DeepSpectrum's row layout.

    Attributes
    ----------
    names : list of str
        Row names (utterance id or relative file name).
    timestamps : numpy.ndarray or None
        Window start (s) per row; None for one row per utterance.
    features : numpy.ndarray [rows, d] float32
    feature_names : list of str
    labels : list
        Label per row (None when unknown).
    description : str
        What was extracted, including which CNN weights were used.
    """

    names: list
    timestamps: object
    features: np.ndarray
    feature_names: list
    labels: list
    description: str = ""

    def write(self, path):
        """Write as ``.csv``, ``.arff`` or ``.npz`` (by suffix).

        The table goes to a hidden temporary file in the same folder
        (:func:`keras_ser.experiments.run_dir.atomic_path`), flushed to disk and renamed onto ``path`` at the end:
        ``path`` is either absent, the previous complete output, or the new
        complete one. An interrupted write removes its temporary file (a killed
        process leaves it, under the temporary name).
        """
        path = pathlib.Path(path)
        suffix = path.suffix.lower()
        if suffix not in OUTPUT_FORMATS:
            raise ParameterError(f"output {path} must end in one of {', '.join(OUTPUT_FORMATS)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        labels = ["?" if label is None else str(label) for label in self.labels]
        with atomic_path(path) as temporary, open(temporary, "wb") as raw:
            if suffix == ".npz":
                extra = {} if self.timestamps is None else {"timestamps": np.asarray(self.timestamps, np.float64)}
                np.savez(raw, names=np.array(self.names), features=self.features,
                         feature_names=np.array(self.feature_names), labels=np.array(labels),
                         description=np.array(self.description), **extra)
            else:
                with open(raw.fileno(), "w", encoding="utf-8", newline="\n", closefd=False) as out:
                    if suffix == ".arff":
                        self._write_arff(out, labels)
                    else:
                        self._write_csv(out, labels)
        return path

    def _cells(self, i, labels, quote):
        lead = [quote(self.names[i])]
        if self.timestamps is not None:
            lead.append(f"{self.timestamps[i]:.3f}")
        return lead + [repr(float(v)) for v in self.features[i]] + [quote(labels[i])]

    def _write_csv(self, out, labels):
        def quote(text):
            return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text

        header = ["name"] + (["timestamp"] if self.timestamps is not None else []) + list(self.feature_names)
        out.write(",".join(header + ["label"]) + "\n")
        for i in range(len(self.names)):
            out.write(",".join(self._cells(i, labels, quote)) + "\n")

    def _write_arff(self, out, labels):
        def quote(text):
            return "?" if text == "?" else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

        out.write(f"% {self.description}\n@relation keras_ser_features\n\n@attribute name string\n")
        if self.timestamps is not None:
            out.write("@attribute timestamp numeric\n")
        for feature in self.feature_names:
            out.write(f"@attribute {quote(feature)} numeric\n")
        classes = sorted({label for label in labels if label != "?"})
        nominal = "{" + ",".join(quote(c) for c in classes) + "}" if classes else "string"
        out.write(f"@attribute class {nominal}\n\n@data\n")
        for i in range(len(self.names)):
            out.write(",".join(self._cells(i, labels, quote)) + "\n")


def _progress(iterable, total, enabled, desc):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, disable=not enabled, desc=desc, unit="file")


def extract(extractor, items, *, window=None, hop=None, batch_size=32, progress=True):
    """Run ``extractor`` over ``items`` and return a :class:`FeatureTable`.

    Parameters
    ----------
    extractor : object
        From :func:`get_extractor`.
    items : list
        :class:`Item`\\ s, utterances (``.id``, ``.path``, ``.label``) or paths.
    window, hop : float, optional
        Window and hop in seconds: one row per window with a ``timestamp``.
        An extractor with ``speaker_standardized`` (an embedding of a model trained
        with ``frontend.standardize="speaker"``) is adapted to each speaker's files
        before they are embedded, so every item needs a ``speaker`` (corpus or
        manifest input).
    batch_size : int
        Waveforms (or windows) per extractor call: the CNN's batch.
    progress : bool
        Show a tqdm bar over files.

    Examples
    --------
    >>> table = extract(get_extractor("egemaps"), ["a.wav", "b.wav"])   # doctest: +SKIP
    >>> table.write("egemaps.csv")                                       # doctest: +SKIP
    """

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ParameterError(f"batch_size must be a positive int, got {batch_size!r}")
    if hop is not None and window is None:
        raise ParameterError("--hop needs --window")
    if window is not None and hop is None:
        hop = window
    items = [_as_item(item) for item in items]
    if not items:
        raise DataError("no input files to extract")
    framewise = getattr(extractor, "framewise", False)
    if framewise and window is not None:
        raise ParameterError("framewise features already have one row per frame; drop --window/--hop")
    shortest = minimum_duration(extractor)
    what = getattr(extractor, "description", type(extractor).__name__)
    if window is not None and window < shortest:
        raise ParameterError(f"--window {window:g} s is shorter than the {1000 * shortest:.1f} ms {what} needs")
    names, stamps, labels, blocks, owners = [], [], [], [], []
    pending = []  # (item index, name, timestamp, label, waveform) awaiting a batched extractor call

    def flush():
        if pending:
            blocks.append(_checked_batch(extractor, pending, items, what))
            for index, name, stamp, label, _ in pending:
                owners.append(index)
                names.append(name)
                stamps.append(stamp)
                labels.append(label)
            pending.clear()

    rate = extractor.sample_rate
    by_speaker = getattr(extractor, "speaker_standardized", False)
    order = _speaker_order(items) if by_speaker else list(range(len(items)))
    adapted_to, loaded = None, {}  # speakers are never None when by_speaker
    for index in _progress(order, len(items), progress, getattr(extractor, "description", "extract")[:40]):
        item = items[index]
        if by_speaker and item.speaker != adapted_to:
            flush()  # the pending windows belong to the previous speaker's statistics
            # The speaker's waveforms are loaded once, for its statistics and then its embeddings.
            loaded = {i: _load(items[i].path, rate, shortest, what) for i in order
                      if items[i].speaker == item.speaker}
            extractor.adapt_to_speaker(list(loaded.values()))
            adapted_to = item.speaker
        if rate is None:  # openSMILE on the file at its native rate
            if window is not None:
                raise ParameterError("windows need a sample_rate; native-rate openSMILE extracts whole files")
            blocks.append(_finite_rows(extractor.extract_file(item.path)[None], [item.path], what))
            owners.append(index)
            names.append(item.name)
            stamps.append(0.0)
            labels.append(item.label)
            continue
        waveform = loaded.pop(index) if index in loaded else _load(item.path, rate, shortest, what)
        if framewise:
            times, matrix = extractor.extract_frames(waveform)
            blocks.append(_finite_rows(matrix, [item.path] * len(matrix), what))
            owners.extend([index] * len(times))
            names.extend([item.name] * len(times))
            stamps.extend(times)
            labels.extend([item.label] * len(times))
            continue
        size = int(round(window * rate)) if window else len(waveform)
        for start in segment_starts(len(waveform), rate, window, hop):
            pending.append((index, item.name, start / rate, item.label, waveform[start:start + size]))
            if len(pending) >= batch_size:
                flush()
    flush()
    # Rows in input order (speaker grouping may have reordered them); a stable sort keeps windows in time order.
    rows = np.argsort(np.asarray(owners), kind="stable")
    names, stamps, labels = [names[r] for r in rows], [stamps[r] for r in rows], [labels[r] for r in rows]
    timestamps = np.asarray(stamps, np.float64) if (window is not None or framewise) else None
    return FeatureTable(names=names, timestamps=timestamps, features=np.concatenate(blocks)[rows],
                        feature_names=list(extractor.feature_names), labels=labels,
                        description=getattr(extractor, "description", ""))


def _load(path, rate, shortest, what):
    """``audio.load`` at ``rate``, then the extractor's own minimum duration."""
    from keras_ser.audio import load

    waveform = load(path, sr=rate)
    if waveform.shape[0] < int(np.ceil(shortest * rate)):
        raise DataError(f"audio file {path} is too short for {what}: {1000 * waveform.shape[0] / rate:.1f} ms < "
                        f"{1000 * shortest:.1f} ms, the shortest input it gives finite values for")
    return waveform


def _finite_rows(block, paths, what):
    """``block`` as float32, or a ``DataError`` naming the file of the first non-finite row."""
    block = np.asarray(block, np.float32)
    bad = np.flatnonzero(~np.all(np.isfinite(block.reshape(len(block), -1)), axis=1))
    if bad.size:
        raise DataError(f"{what} of audio file {paths[bad[0]]} is not finite (NaN or inf); no row is written")
    return block


def _checked_batch(extractor, pending, items, what):
    """One ``extract_batch`` call on the pending windows; errors and NaN rows name their file."""
    paths = [items[p[0]].path for p in pending]
    try:
        block = extractor.extract_batch([p[4] for p in pending])
    except DataError as error:
        if len(pending) > 1:  # find the file: its error then names it
            for one in pending:
                _checked_batch(extractor, [one], items, what)
        raise DataError(f"audio file {paths[0]}: {error}") from None
    return _finite_rows(block, paths, what)


def _speaker_order(items):
    """Item indices grouped by speaker (in order of first appearance), for per-speaker statistics."""
    missing = [item.name for item in items if item.speaker is None]
    if missing:
        raise ParameterError(
            f"the model standardises each speaker with its own statistics (frontend.standardize='speaker'), "
            f"but input {missing[0]!r} has no speaker: give a corpus name or a manifest with a speaker column")
    first = {}
    for index, item in enumerate(items):
        first.setdefault(item.speaker, index)
    return sorted(range(len(items)), key=lambda i: (first[items[i].speaker], i))


def _as_item(item):
    if isinstance(item, Item):
        return item
    if hasattr(item, "path") and hasattr(item, "id"):
        return Item(str(item.id), pathlib.Path(item.path), getattr(item, "label", None),
                    getattr(item, "speaker", None))
    path = pathlib.Path(item)
    return Item(path.name, path)


def extract_utterance_features(extractor, utterances, *, batch_size=32, progress=True):
    """Utterance-level feature matrix ``[n, d]`` in the order of ``utterances``.

    Used by :func:`keras_ser.svm.run_fold`; framewise extractors are not allowed.
    """
    if getattr(extractor, "framewise", False):
        raise ParameterError("an SVM needs utterance-level features; use a pooled extractor")
    return extract(extractor, utterances, batch_size=batch_size, progress=progress).features


def build_parser():
    """The ``python -m keras_ser.extract`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_ser.extract",
        description="Extract openSMILE, log-Mel, deep-spectrum (CNN fc7) or trained-embedding features "
                    "to CSV/ARFF/NPZ in DeepSpectrum's layout: name, [timestamp], features..., label.",
    )
    parser.add_argument("--features", required=True,
                        help=f"{', '.join(FEATURES)} or embedding:RUN_DIR")
    parser.add_argument("--input", required=True,
                        help="corpus name (emodb), manifest:PATH, corpus directory, or a directory of audio "
                             "files (no labels: label column '?')")
    parser.add_argument("--out", required=True, help="output file: .csv, .arff or .npz")
    parser.add_argument("--window", type=float, default=None, help="window length in seconds (one row per window)")
    parser.add_argument("--hop", type=float, default=None, help="window hop in seconds (default: --window)")
    parser.add_argument("--batch-size", type=int, default=32, help="waveforms per CNN batch (default 32)")
    parser.add_argument("--weights", default=None,
                        help="CNN weights: 'imagenet' or a weight file; default random-init, NOT pretrained")
    parser.add_argument("--fold", default=None, help="fold of a multi-fold run for embedding:RUN_DIR")
    parser.add_argument("--pooling", default="mean_std", choices=("mean_std", "none"),
                        help="logmel: mean and std over time, or every frame")
    parser.add_argument("--n-mels", type=int, default=None,
                        help="Mel bands (logmel default 40; CNN images default 128)")
    parser.add_argument("--data-dir", default=None, help="data root for corpus names (default $KERAS_SER_DATA)")
    parser.add_argument("--seed", type=int, default=0, help="seed of a random-init CNN")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return _cli.add_common_arguments(parser)


def _cli_options(args):
    options = {}
    if args.features in ("alexnet_fc7", "vgg16_fc7", "vgg19_fc7"):
        options.update(weights=args.weights, seed=args.seed)
    elif args.weights is not None:
        raise ParameterError(f"--weights applies to the CNN features only, not {args.features!r}")
    if args.features.startswith("embedding:"):
        options["fold"] = args.fold
    if args.features == "logmel":
        options["pooling"] = args.pooling
    if args.n_mels is not None:
        if args.features not in ("logmel", "alexnet_fc7", "vgg16_fc7", "vgg19_fc7"):
            raise ParameterError(f"--n-mels does not apply to {args.features!r}")
        options["n_mels"] = args.n_mels
    return options


def main(argv=None):
    """Command-line entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    _cli.configure(args)
    try:
        extractor = get_extractor(args.features, **_cli_options(args))
        items, _ = resolve_inputs(args.input, data_dir=args.data_dir)
        started = time.perf_counter()
        table = extract(extractor, items, window=args.window, hop=args.hop, batch_size=args.batch_size,
                        progress=not args.no_progress and _cli.interactive(args, sys.stderr))
        seconds = time.perf_counter() - started
        path = table.write(args.out)
    except KerasSERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {"features": table.description, "files": len(items), "rows": len(table.names),
               "dimension": len(table.feature_names), "seconds": round(seconds, 2),
               "files_per_second": round(len(items) / seconds, 2), "out": str(path)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
