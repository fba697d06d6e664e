"""The front-end settings of the papers, one :class:`Preset` per paper input.

:data:`TABLE` is the readable form (name, output, settings, citation, note);
:data:`PRESETS` maps each name to its settings, the overrides of :data:`DEFAULTS`
that ``FrontEnd(name)`` applies (:class:`keras_ser.frontend.FrontEnd`).

What the papers give, and the choices made here:

* All papers: power STFT with a Hamming window of 25 ms and a hop of 10 ms
  (zhao2019 Sec. III-A eq. 1; zhang2021_multicnn Sec. 2.2 (2); zhang2021_dcnn Sec. 2.2),
  no FFT size: the FFT length equals the window (:mod:`keras_ser.frontend.ops`).
* zhao2019 (``"zhao2019"``): 40 mel bands on the HTK scale of eq. 2, 0 Hz to Nyquist,
  "log-amplitude mel-spectrogram" (Sec. III-C) computed as
  ``librosa.power_to_db`` (10 log10 of the mel power, ref 1, amin 1e-10,
  top_db 80: librosa's defaults). Input 40 x 500: see "pad/crop policy" in
  :mod:`keras_ser.frontend.layers`.
* zhang2021_multicnn (``"zhang2021_2d"``, ``"zhang2021_3d"``): 64 mel bands from 20 to 8000 Hz,
  log mel in dB as above, 64-frame segments; the paper gives no segment hop,
  64 (no overlap) is used. Deltas are computed per segment ("of the produced
  static segment along the time axis"). The filterbank is librosa's default
  Slaney scale with Slaney area normalisation: zhang2021_multicnn names no mel formula.
* zhang2021_dcnn (``"zhang2021_dcnn"``): as zhang2021_multicnn but 3 s utterances, pre-emphasis, per-
  utterance standardisation and a segment hop of 32 frames (Sec. 2.2, 3.2).
  Eq. 1 writes ``m = log(P)``; librosa's ``power_to_db`` (10 log10, a constant
  multiple of ln) is used, ``log="ln"`` gives the natural logarithm.
* zhao2018 (``"zhao2018"``): the paper used YAAFE's 743 frame features (1024-sample
  frames, PCA-whitened), which cannot be computed here. The preset is a
  documented SUBSTITUTE: 40 log-mel bands plus deltas and delta-deltas
  (120 values per frame) with YAAFE's default frame of 1024 samples (64 ms at
  16 kHz), hop 512 and Hann window.

Image axes are (mel, time, channel); channels are static, delta, delta-delta.
The 227 x 227 images are scaled to [0, 255] per segment and channel (the range the
ImageNet backbones expect; zhang2021_multicnn and zhang2021_dcnn do not state a
scaling). zhang2021_multicnn does not give the sample rate of its spectrogram input;
16 kHz (the rate all other papers resample to, and >= 2 x its 8 kHz upper band edge)
is used.

Revisions: a fix to the front end's code can change its output for unchanged settings, which
a run's configuration alone would not show. :data:`REVISIONS` lists such changes and
:func:`numerics_revision` gives the revision that applies to a front end's settings (1: none
applies); a run records it (``frontend_revision`` in ``config.json``) and refuses to resume
folds computed under another (:mod:`keras_ser.experiments.resume`).

Plain data: imports nothing from keras_ser, NumPy, TensorFlow or Keras.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Preset:
    """One paper input: ``FrontEnd(name)`` gives ``output`` from a waveform at ``settings["sample_rate"]``.

    Attributes
    ----------
    name : str
        The preset name (``FrontEnd(name)``, ``[frontend] preset`` of a recipe).
    output : str
        Output shape, batch first.
    settings : dict
        The settings that differ from :data:`DEFAULTS`.
    citation : str
        Where the paper gives them.
    note : str
        What the paper leaves open or what differs from it.
    """

    name: str
    output: str
    settings: dict
    citation: str
    note: str = ""


#: One FrontEnd configuration per paper input.
TABLE = (
    Preset("zhao2019", "[b, 500, 40] log-mel (dB)",
           dict(representation="log_mel", sample_rate=16000, n_mels=40, fmin=0.0, fmax=None, htk=True,
                num_frames=500),
           "zhao2019 Sec. III-A, III-C"),
    Preset("zhao2018", "[b, frames, 120] log-mel + deltas",
           dict(representation="log_mel", sample_rate=16000, n_mels=40, fmin=0.0, fmax=None, htk=True,
                n_fft=1024, win_ms=64.0, hop_ms=32.0, window="hann", delta_orders=2),
           "zhao2018 Sec. 4.2",
           "SUBSTITUTE for the 743 YAAFE frame features, which cannot be computed here"),
    Preset("zhang2021_1d", "[b, segments, 625, 1] raw wave",
           dict(representation="raw_segments", sample_rate=22050, raw_scale=256.0, segment_samples=625),
           "zhang2021_multicnn Sec. 2.2 (1), Table 4"),
    Preset("zhang2021_2d", "[b, segments, 227, 227, 3] log-mel images",
           dict(representation="mel_segments", sample_rate=16000, n_mels=64, fmin=20.0, fmax=8000.0,
                htk=False, segment_frames=64, segment_hop=64, image_size=227, image_range=[0.0, 255.0]),
           "zhang2021_multicnn Sec. 2.2 (2)",
           "no segment hop given: 64 (no overlap); no sample rate given: 16 kHz"),
    Preset("zhang2021_3d", "[b, stacks, 64, 64, 4, 3] stacked log-mel segments",
           dict(representation="mel_segments", sample_rate=16000, n_mels=64, fmin=20.0, fmax=8000.0,
                htk=False, segment_frames=64, segment_hop=64, stack_depth=4),
           "zhang2021_multicnn Sec. 2.2 (3), Table 3"),
    Preset("zhang2021_dcnn", "[b, 8, 227, 227, 3] log-mel images",
           dict(representation="mel_segments", sample_rate=16000, n_mels=64, fmin=20.0, fmax=8000.0,
                htk=False, normalize=True, duration=3.0, preemphasis=0.97, segment_frames=64,
                segment_hop=32, image_size=227, image_range=[0.0, 255.0]),
           "zhang2021_dcnn Sec. 2.1-2.2, 3.2"),
    Preset("tzirakis2021", "[b, sequences, 100, 2205] raw wave",
           dict(representation="raw_segments", sample_rate=22050, segment_samples=2205,
                sequence_frames=100, pad_end=True),
           "tzirakis2021 Sec. 4.2"),
)

#: Preset name -> its settings (the overrides of :data:`DEFAULTS`).
PRESETS = {preset.name: preset.settings for preset in TABLE}

#: Every FrontEnd setting and its value when neither a preset nor an argument sets it.
DEFAULTS = dict(
    representation="log_mel", sample_rate=16000, normalize=False, preemphasis=0.0, duration=None,
    n_mels=40, fmin=0.0, fmax=None, htk=True, win_ms=25.0, hop_ms=10.0, n_fft=None, window="hamming",
    mel_norm="slaney", log="db", top_db=80.0, num_frames=None, delta_orders=0, delta_width=5, nested_deltas=True,
    segment_frames=64, segment_hop=64, channels=3, delta_scope="segment", image_size=None, image_range=None,
    stack_depth=None, stack_hop=None, raw_scale=None, segment_samples=625, segment_hop_samples=None,
    sequence_frames=None, pad_end=False, standardize=None, feature_mean=None, feature_std=None,
    max_seconds=None,
)


def resolve(preset=None, **settings):
    """Every setting of ``FrontEnd(preset, **settings)``: :data:`DEFAULTS`, then the preset's, then ``settings``.

    Names are not validated here (:class:`keras_ser.frontend.FrontEnd` does that).

    Examples
    --------
    >>> resolve("zhao2018", n_mels=64)["delta_orders"], resolve("zhao2018", n_mels=64)["n_mels"]
    (2, 64)
    """
    resolved = dict(DEFAULTS)
    resolved.update(PRESETS.get(preset, {}))
    resolved.update(settings)
    return resolved


def computes_deltas(settings):
    """True when a front end with these resolved settings (:func:`resolve`) computes delta features."""
    if settings["representation"] == "log_mel":
        return bool(settings["delta_orders"])
    return settings["representation"] == "mel_segments" and settings["channels"] > 1


@dataclasses.dataclass(frozen=True)
class Revision:
    """A change to what the front end computes for unchanged settings.

    Attributes
    ----------
    number : int
        Revisions count from 2 (1 is the front end before any of them).
    commit : str
        The keras_ser commit that made the change.
    change : str
        What changed.
    affects : callable
        ``affects(settings) -> bool`` on resolved settings: whether the change alters the output.
    """

    number: int
    commit: str
    change: str
    affects: object


#: The front end's revisions, oldest first.
REVISIONS = (
    Revision(2, "91aec90",
             "deltas of a constant stretch (a silent segment, zero padding) are exact zeros instead of float32 "
             "round-off, which image_range scaling stretched into full-range noise images",
             computes_deltas),
)


def numerics_revision(settings):
    """The newest of :data:`REVISIONS` that changed the output of a front end with these settings; 1 if none.

    Parameters
    ----------
    settings : dict
        Resolved settings (:func:`resolve`, or ``FrontEnd.settings``).

    Examples
    --------
    >>> numerics_revision(resolve("zhang2021_dcnn")), numerics_revision(resolve("zhao2019"))
    (2, 1)
    """
    return max([1] + [revision.number for revision in REVISIONS if revision.affects(settings)])



def revision_note(model_dir, trained, settings):
    """Why a saved network reads inputs unlike those it was trained on under this code, or None.

    Parameters
    ----------
    model_dir : path-like
        Where the network is (named in the note).
    trained : int or None
        The revision it was trained on (its MODEL DIR's ``meta.json`` ``frontend_revision``;
        None, saved before revisions were recorded, counts as 1).
    settings : dict
        Its front end's resolved settings (``FrontEnd.settings``).

    Examples
    --------
    >>> revision_note("m", 2, resolve("zhang2021_dcnn")) is None
    True
    >>> revision_note("m", None, resolve("zhang2021_dcnn"))[:52]
    'the network in m was trained on front-end revision 1'
    """
    trained, current = trained or 1, numerics_revision(settings)
    if trained == current:
        return None
    low, high = sorted((trained, current))
    changes = "; ".join(f"revision {r.number} ({r.commit}): {r.change}" for r in REVISIONS if low < r.number <= high)
    return (f"the network in {model_dir} was trained on front-end revision {trained}, and this code computes "
            f"revision {current} for its settings ({changes}): it reads inputs unlike those it was trained on; "
            "a checkout of the code it was trained with reproduces its scores")
