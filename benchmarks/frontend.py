"""Front-end throughput on EMO-DB: librosa loop (as the papers did it) vs the keras_ser tf.data pipeline.

Prints seconds of audio processed per second of wall time for

(a) ``librosa.load(sr=16000)`` + ``melspectrogram`` + ``power_to_db`` + ``delta`` (order 1 and 2)
    per file, the way zhao2019/002 describe their librosa front end;
(b) ``keras_ser.frontend.make_dataset`` from the same files to the same
    features (64 Slaney mel bands 20-8000 Hz, Hamming 25 ms / 10 ms, dB,
    delta and delta-delta, zhang2021_dcnn Sec. 2.2) in batches,

their ratio, and the parity of (b) against (a) on the first files.

Each side is timed twice over all files: *cold* (the first pass, with its one-time costs:
numba compilation of librosa's kernels, TensorFlow's graph tracing, files not yet in the
page cache) and *warm* (a second pass, the steady state of a training run that reads the
corpus every epoch). Cold and warm ratios are reported separately; only warm against warm
compares the two front ends' arithmetic.
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

from keras_ser.frontend import FrontEnd, make_dataset  # noqa: E402
from keras_ser.paths import corpus_dir  # noqa: E402

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

    def timed(run):
        start = time.perf_counter()
        result = run()
        return result, time.perf_counter() - start

    reference, librosa_cold = timed(
        lambda: [librosa_features(f) for f in tqdm(files, desc="librosa (cold)", disable=args.no_progress)])
    _, librosa_warm = timed(
        lambda: [librosa_features(f) for f in tqdm(files, desc="librosa (warm)", disable=args.no_progress)])

    front_end = FrontEnd(representation="log_mel", sample_rate=SR, delta_orders=2, **MEL)
    dataset = make_dataset(records, list("WLEAFTN"), front_end, batch_size=args.batch_size)
    outputs, tf_cold = timed(
        lambda: [x.numpy() for x, _ in tqdm(dataset, desc="tf.data (cold)", disable=args.no_progress)])
    _, tf_warm = timed(
        lambda: [x.numpy() for x, _ in tqdm(dataset, desc="tf.data (warm)", disable=args.no_progress)])

    features = np.concatenate(outputs)
    static_err = delta_err = 0.0
    for k in range(min(len(files), 20)):
        ref_static, ref_delta, ref_delta2 = (r.T for r in reference[k])
        frames = ref_static.shape[0]
        ours = features[k, :frames]
        static_err = max(static_err, float(np.abs(ours[:, :64] - ref_static).max()))
        for ref, got in ((ref_delta, ours[:, 64:128]), (ref_delta2, ours[:, 128:])):
            delta_err = max(delta_err, float(np.abs(got - ref).max() / np.abs(ref).max()))

    rates = {name: seconds / t for name, t in (("librosa cold", librosa_cold), ("librosa warm", librosa_warm),
                                                ("tf.data cold", tf_cold), ("tf.data warm", tf_warm))}
    print(f"(a) librosa loop, cold (first pass):     {rates['librosa cold']:8.1f} s audio / s  ({librosa_cold:.2f} s)")
    print(f"    librosa loop, warm (second pass):    {rates['librosa warm']:8.1f} s audio / s  ({librosa_warm:.2f} s)")
    print(f"(b) keras_ser tf.data, cold (epoch 1):   {rates['tf.data cold']:8.1f} s audio / s  ({tf_cold:.2f} s)")
    print(f"    keras_ser tf.data, warm (epoch 2):   {rates['tf.data warm']:8.1f} s audio / s  ({tf_warm:.2f} s)")
    print(f"ratio (b) / (a): {rates['tf.data cold'] / rates['librosa cold']:.2f}x cold against cold, "
          f"{rates['tf.data warm'] / rates['librosa warm']:.2f}x warm against warm")
    print(f"parity on {min(len(files), 20)} files: log-mel max |diff| {static_err:.2e} dB, "
          f"deltas max relative diff {delta_err:.2e}")
    tf.keras.backend.clear_session()


if __name__ == "__main__":
    main()
