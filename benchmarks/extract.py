"""Deep-spectrum extraction speed: in-graph images vs DeepSpectrum's plot-and-reload path.

Measures utterances/s for ``vgg16_fc7`` features on the same EMO-DB files, in the
same process, with the same CNN (``keras_ser.models.backbones.fc7_model``, random-init,
NOT pretrained -- the weights do not change the speed) through two paths:

(a) keras_ser: ``keras_ser.audio.load`` -> :class:`keras_ser.extraction.deep_spectrum.SpectrogramImage`
    (Mel spectrogram, dB, colour-map lookup table and resize, all in TensorFlow) -> CNN;
(b) the DeepSpectrum tool's way: ``librosa.load`` -> ``librosa.feature.melspectrogram``
    -> ``power_to_db`` -> matplotlib ``specshow`` into a 1x1-inch figure at 227 dpi ->
    PNG -> reload with PIL -> resize to 224 -> the same CNN.

Both paths batch the CNN (``--batch-size``). The script prints utterances/s of each
path end to end and of the waveform -> image stage alone, and their ratios. On a
CPU the VGG16 forward pass dominates both paths, so the end-to-end ratio is bounded
by the CNN's share; the image-stage ratio is what the in-graph path changes.

Usage::

    KERAS_SER_DATA=/path/to/data python benchmarks/extract.py --limit 100
"""

import argparse
import io
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def plot_path_image(path, sample_rate, n_mels, win, hop, n_fft, size):
    """DeepSpectrum-style image: specshow into a 1x1-inch, 227-dpi figure, PNG, reload."""
    import librosa
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    signal, _ = librosa.load(path, sr=sample_rate)
    mel = librosa.feature.melspectrogram(y=signal, sr=sample_rate, n_fft=n_fft, win_length=win, hop_length=hop,
                                         n_mels=n_mels)
    figure = plt.figure(figsize=(1, 1), dpi=227, frameon=False)
    axes = figure.add_axes([0, 0, 1, 1])
    axes.set_axis_off()
    librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=sample_rate, hop_length=hop,
                             cmap="viridis", ax=axes)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=227)
    plt.close(figure)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=100, help="number of EMO-DB files (default 100)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-mels", type=int, default=128)
    parser.add_argument("--features", default="vgg16_fc7", choices=("alexnet_fc7", "vgg16_fc7", "vgg19_fc7"))
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from keras_ser.audio import load
    from keras_ser.extraction.deep_spectrum import DeepSpectrumExtractor
    from keras_ser.paths import corpus_dir

    files = sorted((corpus_dir("emodb", args.data_dir) / "wav").glob("*.wav"))
    step = max(1, len(files) // args.limit)
    files = files[::step][: args.limit]  # spread over speakers
    extractor = DeepSpectrumExtractor(args.features, n_mels=args.n_mels)
    image = extractor.image
    size = image.image_size
    plot_kwargs = dict(sample_rate=16000, n_mels=args.n_mels, win=image.win_samples, hop=image.hop_samples,
                       n_fft=image.n_fft, size=size)

    def cnn(images):
        return extractor._forward(tf.constant(np.stack(images) if isinstance(images, list) else images)).numpy()

    # Warm-up: trace the graphs and import matplotlib outside the timed region.
    extractor.extract_batch([load(files[0])])
    cnn([plot_path_image(files[0], **plot_kwargs)])

    def run(make_images):
        image_seconds, cnn_seconds = 0.0, 0.0
        for start in range(0, len(files), args.batch_size):
            t0 = time.perf_counter()
            batch = make_images(files[start:start + args.batch_size])
            t1 = time.perf_counter()
            cnn(batch)
            image_seconds += t1 - t0
            cnn_seconds += time.perf_counter() - t1
        return image_seconds, cnn_seconds

    in_graph = run(lambda paths: extractor.images([load(p) for p in paths]))
    plotted = run(lambda paths: [plot_path_image(p, **plot_kwargs) for p in paths])
    n = len(files)
    result = {
        "features": extractor.description,
        "files": n,
        "batch_size": args.batch_size,
        "in_graph_utt_per_s": round(n / sum(in_graph), 2),
        "plot_utt_per_s": round(n / sum(plotted), 2),
        "ratio_end_to_end": round(sum(plotted) / sum(in_graph), 2),
        "in_graph_image_utt_per_s": round(n / in_graph[0], 1),
        "plot_image_utt_per_s": round(n / plotted[0], 1),
        "ratio_image_stage": round(plotted[0] / in_graph[0], 1),
        "cnn_utt_per_s": round(n / ((in_graph[1] + plotted[1]) / 2), 2),
        "device": "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)",
    }
    print(f"(a) in-graph path : {result['in_graph_utt_per_s']:8.2f} utt/s end to end, "
          f"{result['in_graph_image_utt_per_s']:8.1f} utt/s waveform->image")
    print(f"(b) plot path     : {result['plot_utt_per_s']:8.2f} utt/s end to end, "
          f"{result['plot_image_utt_per_s']:8.1f} utt/s waveform->image")
    print(f"ratio (a)/(b)     : {result['ratio_end_to_end']:.2f}x end to end, "
          f"{result['ratio_image_stage']:.1f}x image stage  (CNN alone: {result['cnn_utt_per_s']} utt/s)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
