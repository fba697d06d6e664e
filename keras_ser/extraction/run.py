"""Running an extractor over files: :func:`extract` (rows per utterance, window or frame).

Bad input: every file goes through :func:`keras_ser.audio.load` (its table of
handled cases), then must be at least :func:`~keras_ser.extraction.registry.minimum_duration`
of the extractor long (openSMILE 61 ms, log-Mel and the CNN images one 25 ms window),
else a ``DataError`` names the file; a feature row that is not finite is a
``DataError`` naming the file, never a written NaN row.

Imports NumPy, :mod:`keras_ser.errors` and the other modules of :mod:`keras_ser.extraction`.
"""

import numpy as np

from keras_ser.errors import DataError, ParameterError
from keras_ser.extraction.inputs import as_item
from keras_ser.extraction.registry import minimum_duration
from keras_ser.extraction.table import FeatureTable


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



def _progress(iterable, total, enabled, desc):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, disable=not enabled, desc=desc, unit="file")


def extract(extractor, items, *, window=None, hop=None, batch_size=32, progress=True):
    """Run ``extractor`` over ``items`` and return a :class:`FeatureTable`.

    Parameters
    ----------
    extractor : object
        From :func:`~keras_ser.extraction.registry.get_extractor`.
    items : list
        :class:`~keras_ser.extraction.inputs.Item`\\ s, utterances (``.id``, ``.path``, ``.label``) or paths.
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
    >>> from keras_ser.extraction import get_extractor
    >>> table = extract(get_extractor("egemaps"), ["a.wav", "b.wav"])   # doctest: +SKIP
    >>> table.write("egemaps.csv")                                       # doctest: +SKIP
    """

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ParameterError(f"batch_size must be a positive int, got {batch_size!r}")
    if hop is not None and window is None:
        raise ParameterError("--hop needs --window")
    if window is not None and hop is None:
        hop = window
    items = [as_item(item) for item in items]
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


def extract_utterance_features(extractor, utterances, *, batch_size=32, progress=True):
    """Utterance-level feature matrix ``[n, d]`` in the order of ``utterances``.

    Used by :func:`keras_ser.svm.run_fold`; framewise extractors are not allowed.
    """
    if getattr(extractor, "framewise", False):
        raise ParameterError("an SVM needs utterance-level features; use a pooled extractor")
    return extract(extractor, utterances, batch_size=batch_size, progress=progress).features
