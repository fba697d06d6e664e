"""IEMOCAP reader (Busso et al. 2008), four-class variants of zhao2019 and zhao2018.

Layout (the official ``IEMOCAP_full_release``), under ``<data dir>/iemocap/``
(either directly or inside ``IEMOCAP_full_release/``)::

    Session1/dialog/EmoEvaluation/Ses01F_impro01.txt    labels, one file per dialog
    Session1/dialog/transcriptions/Ses01F_impro01.txt   "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me."
    Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav
    Session1/sentences/ForcedAlignment/Ses01F_impro01/Ses01F_impro01_F000.wdseg
    ... Session5

An EmoEvaluation file holds one block per utterance whose first line is
``[START - END]<TAB>UTTERANCE_ID<TAB>code<TAB>[V, A, D]``; the code is the
majority label (neu, hap, exc, sad, ang, fru, sur, fea, dis, oth, xxx).

The speaker of ``Ses01F_impro01_M003`` is ``Ses01M``: session number plus the
gender letter of the utterance's last id part (the dialog's letter says who wore
the markers, not who speaks). Sessions are ``"Ses01"`` ... ``"Ses05"``.

Variants (all four classes neutral, happiness, sadness, anger):

- ``"improvised_merged"`` (corpus name ``"iemocap"``): zhao2019, Sec. IV-A and
  Table 1: improvised dialogs only, excited merged into happiness (2 943
  utterances in the full release).
- ``"dataset1"``: zhao2018's IEMO_dataset1, excited left out. Its counts
  (angry 1 103, happy 595, sad 1 084, neutral 1 708; 4 490) are those of the
  whole corpus, scripted and improvised, so this variant keeps both.
- ``"dataset2"``: zhao2018's IEMO_dataset2, as dataset1 with excited merged into
  happiness (1 636 happy utterances).
- ``"improvised_dataset1"``: improvised only, excited left out.

Word timings come from the ``.wdseg`` forced alignments (Sphinx format: start
frame, end frame, score, word; 100 frames per second); silence and noise tokens
(``<s>``, ``</s>``, ``<sil>``, ``++...++``) are dropped and pronunciation
variants ``WORD(2)`` are reduced to ``WORD``.
"""

import pathlib
import re

from keras_ser.data._common import missing_corpus_error
from keras_ser.data.records import Utterance
from keras_ser.errors import DataError, ParameterError
from keras_ser.paths import corpus_dir

NAME = "iemocap"
LABELS = ["neutral", "happiness", "sadness", "anger"]  # order of zhao2019 Table 1

VARIANTS = {
    # name: (improvised only, label code -> class)
    "improvised_merged": (True, {"neu": "neutral", "hap": "happiness", "exc": "happiness", "sad": "sadness", "ang": "anger"}),
    "dataset1": (False, {"neu": "neutral", "hap": "happiness", "sad": "sadness", "ang": "anger"}),
    "dataset2": (False, {"neu": "neutral", "hap": "happiness", "exc": "happiness", "sad": "sadness", "ang": "anger"}),
    "improvised_dataset1": (True, {"neu": "neutral", "hap": "happiness", "sad": "sadness", "ang": "anger"}),
}

_HEADER = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[")
_TRANSCRIPT = re.compile(r"^(\S+)\s+\[[\d.]+-[\d.]+\]:\s*(.*)$")
_FRAME_RATE = 100.0


def label_names(variant="improvised_merged"):
    """The four classes in output order (the same for every variant)."""
    return list(LABELS)


def _release_root(data_dir):
    root = corpus_dir(NAME, data_dir)
    nested = root / "IEMOCAP_full_release"
    return nested if nested.is_dir() else root


def read_emo_evaluation(path):
    """``{utterance id: label code}`` from one EmoEvaluation file."""
    labels = {}
    for line in pathlib.Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        match = _HEADER.match(line)
        if match:
            labels[match.group(3)] = match.group(4)
    return labels


def read_transcriptions(path):
    """``{utterance id: text}`` from one dialog transcription file."""
    texts = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _TRANSCRIPT.match(line.strip())
            if match:
                texts[match.group(1)] = match.group(2).strip()
    return texts


def read_wdseg(path):
    """Word timings ``((word, start_s, end_s), ...)`` from a Sphinx ``.wdseg`` file.

    Frame ``f`` covers ``[f / 100, (f + 1) / 100)`` seconds.
    """
    words = []
    for line in pathlib.Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) != 4 or not fields[0].isdigit() or not fields[1].isdigit():
            continue  # header "SFrm EFrm SegAScr Word" and the "Total score" line
        word = re.sub(r"\(\d+\)$", "", fields[3])
        if word in ("<s>", "</s>", "<sil>") or word.startswith("++") or word.startswith("<"):
            continue
        words.append((word, int(fields[0]) / _FRAME_RATE, (int(fields[1]) + 1) / _FRAME_RATE))
    return tuple(words)


def load(data_dir=None, variant="improvised_merged"):
    """Load IEMOCAP as :class:`~keras_ser.data.Utterance` records of ``variant``.

    See the module docstring for the layout and the variants. Utterances whose
    label is outside the variant's classes are skipped; a labelled utterance whose
    wav file is missing raises :class:`DataError` naming the file.

    Examples
    --------
    >>> utts = load("/data", variant="dataset2")  # doctest: +SKIP
    >>> utts[0].speaker, utts[0].session  # doctest: +SKIP
    ('Ses01F', 'Ses01')
    """
    if variant not in VARIANTS:
        raise ParameterError(f"unknown IEMOCAP variant {variant!r}; choose one of {sorted(VARIANTS)}")
    improvised_only, mapping = VARIANTS[variant]
    corpus = NAME if variant == "improvised_merged" else f"{NAME}_{variant}"
    root = _release_root(data_dir)
    sessions = sorted(root.glob("Session[1-5]"))
    if not sessions:
        raise missing_corpus_error(
            NAME, root / "Session1",
            "Put the IEMOCAP_full_release folders Session1 ... Session5 there", data_dir=data_dir,
        )
    utterances = []
    for session_dir in sessions:
        session = f"Ses{int(session_dir.name[-1]):02d}"
        evaluations = sorted((session_dir / "dialog" / "EmoEvaluation").glob("Ses*.txt"))
        if not evaluations:
            raise DataError(f"IEMOCAP: no EmoEvaluation/*.txt label files in {session_dir / 'dialog'}")
        for evaluation in evaluations:
            dialog = evaluation.stem
            if improvised_only and "_impro" not in dialog:
                continue
            texts = read_transcriptions(session_dir / "dialog" / "transcriptions" / f"{dialog}.txt")
            for utt_id, code in sorted(read_emo_evaluation(evaluation).items()):
                if code not in mapping:
                    continue
                gender_letter = utt_id.rsplit("_", 1)[-1][:1]
                if gender_letter not in ("F", "M"):
                    raise DataError(f"IEMOCAP {evaluation}: cannot tell the speaker of {utt_id!r}")
                wav = session_dir / "sentences" / "wav" / dialog / f"{utt_id}.wav"
                if not wav.is_file():
                    raise DataError(f"IEMOCAP: missing audio {wav} for labelled utterance {utt_id}")
                wdseg = session_dir / "sentences" / "ForcedAlignment" / dialog / f"{utt_id}.wdseg"
                utterances.append(
                    Utterance(
                        id=utt_id,
                        path=wav,
                        label=mapping[code],
                        speaker=f"{session}{gender_letter}",
                        gender="female" if gender_letter == "F" else "male",
                        session=session,
                        transcript=texts.get(utt_id),
                        words=read_wdseg(wdseg) if wdseg.is_file() else None,
                        corpus=corpus,
                    )
                )
    return utterances
