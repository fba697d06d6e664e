"""Front-end throughput on EMO-DB: librosa loop (as the papers did it) vs the keras_ser tf.data pipeline.

Prints seconds of audio processed per second of wall time for

(a) ``librosa.load(sr=16000)`` + ``melspectrogram`` + ``power_to_db`` + ``delta`` (order 1 and 2)
    per file, the way papers 000/002 describe their librosa front end;
(b) ``keras_ser.pipeline.make_dataset`` from the same files to the same
    features (64 Slaney mel bands 20-8000 Hz, Hamming 25 ms / 10 ms, dB,
    delta and delta-delta, 002 Sec. 2.2) in batches,

their ratio, and the parity of (b) against (a) on the first files.
Usage: ``python benchmarks/frontend.py [--data-dir DIR] [--limit N] [--no-progress]``.
"""

import argparse
import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from keras_ser.features import FrontEnd  # noqa: E402
from keras_ser.paths import corpus_dir  # noqa: E402
from keras_ser.pipeline import make_dataset  # noqa: E402

SR = 16000
MEL = dict(n_mels=64, fmin=20.0, fmax=8000.0, htk=False)


@dataclasses.dataclass(frozen=True)
class Record:
    id: str
    path: str
    label: str


def librosa_features(path):
    y, _ = librosa.load(path, sr=SR)
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=400, hop_length=160, win_length=400,
                                         window="hamming", center=True, pad_mode="constant", power=2.0, **MEL)
    static = librosa.power_to_db(mel)
    delta = librosa.feature.delta(static, width=5)
    return static, delta, librosa.feature.delta(delta, width=5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    files = sorted(str(p) for p in (corpus_dir("emodb", args.data_dir) / "wav").glob("*.wav"))[: args.limit]
    records = [Record(os.path.basename(f)[:-4], f, os.path.basename(f)[5]) for f in files]
    seconds = sum(librosa.get_duration(path=f) for f in files)
    print(f"{len(files)} files, {seconds:.1f} s of audio, {os.cpu_count()} CPU cores")

    librosa_features(files[0])  # librosa's lazy imports are not part of the loop's cost
    start = time.perf_counter()
    reference = [librosa_features(f) for f in tqdm(files, desc="librosa", disable=args.no_progress)]
    librosa_time = time.perf_counter() - start

    front_end = FrontEnd(representation="log_mel", sample_rate=SR, delta_orders=2, **MEL)
    start = time.perf_counter()
    dataset = make_dataset(records, list("WLEAFTN"), front_end, batch_size=args.batch_size)
    outputs = [x.numpy() for x, _ in tqdm(dataset, desc="tf.data", disable=args.no_progress)]
    first_time = time.perf_counter() - start
    # A second epoch over the same dataset reuses the traced graphs: the
    # steady-state cost when the pipeline feeds training for many epochs.
    start = time.perf_counter()
    for x, _ in tqdm(dataset, desc="tf.data (epoch 2)", disable=args.no_progress):
        x.numpy()
    steady_time = time.perf_counter() - start

    features = np.concatenate(outputs)
    static_err = delta_err = 0.0
    for k in range(min(len(files), 20)):
        ref_static, ref_delta, ref_delta2 = (r.T for r in reference[k])
        frames = ref_static.shape[0]
        ours = features[k, :frames]
        static_err = max(static_err, float(np.abs(ours[:, :64] - ref_static).max()))
        for ref, got in ((ref_delta, ours[:, 64:128]), (ref_delta2, ours[:, 128:])):
            delta_err = max(delta_err, float(np.abs(got - ref).max() / np.abs(ref).max()))

    a, b, c = seconds / librosa_time, seconds / first_time, seconds / steady_time
    print(f"(a) librosa loop:                    {a:8.1f} s audio / s  ({librosa_time:.2f} s)")
    print(f"(b) keras_ser tf.data, first epoch:  {b:8.1f} s audio / s  ({first_time:.2f} s, incl. graph tracing)")
    print(f"    keras_ser tf.data, next epoch:   {c:8.1f} s audio / s  ({steady_time:.2f} s)")
    print(f"ratio (b) / (a):                     {b / a:8.2f}x first epoch, {c / a:.2f}x next epoch")
    print(f"parity on {min(len(files), 20)} files: log-mel max |diff| {static_err:.2e} dB, "
          f"deltas max relative diff {delta_err:.2e}")
    tf.keras.backend.clear_session()


if __name__ == "__main__":
    main()
