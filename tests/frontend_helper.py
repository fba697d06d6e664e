"""Shared by the front-end tests: librosa's log-mel reference and EMO-DB waveforms at 16 kHz."""

import librosa
import pytest

from keras_ser import audio

#: The two mel settings of the papers: zhao2019's HTK scale, zhang2021's Slaney scale from 20 Hz to 8 kHz.
MEL_SETTINGS = {
    "zhao2019_htk40": dict(n_mels=40, fmin=0.0, fmax=None, htk=True),
    "zhang2021_slaney64": dict(n_mels=64, fmin=20.0, fmax=8000.0, htk=False),
}

#: Largest difference in dB allowed between keras_ser's and librosa's log-mel.
LOG_MEL_TOLERANCE_DB = 0.01


def librosa_log_mel(y, n_fft=400, hop=160, **mel):
    """librosa's dB log-mel ``[frames, mels]`` with the front end's STFT (Hamming 25 ms / 10 ms at 16 kHz)."""
    power = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=n_fft, hop_length=hop, win_length=400,
                                           window="hamming", center=True, pad_mode="constant", power=2.0, **mel)
    return librosa.power_to_db(power).T  # [frames, mels]


@pytest.fixture(scope="module")
def waves(emodb_wavs):
    """Four EMO-DB utterances (2 s) at 16 kHz."""
    return [audio.load(p, sr=16000) for p in emodb_wavs[::107][:4]]
