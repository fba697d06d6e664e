"""Feature extraction to CSV / ARFF / NPZ from the command line: ``python -m keras_ser.extract``.

One command for every fixed feature representation compared in zhao2019
(Sec. IV-B, Table 7, Figs. 3-4) and used in zhang2021_multicnn's feature-level fusion (Table 7)::

    python -m keras_ser.extract --features egemaps --input emodb --out egemaps.csv
    python -m keras_ser.extract --features vgg16_fc7 --input /data/wavs --out vgg16.arff \\
        --window 1.0 --hop 0.5 --batch-size 32 [--weights vgg16.h5]

A thin command line over :mod:`keras_ser.extraction`: the feature names are those of
:func:`keras_ser.extraction.get_extractor`, the inputs those of
:func:`keras_ser.extraction.resolve_inputs`, the rows those of
:func:`keras_ser.extraction.extract` and the output layout that of
:class:`keras_ser.extraction.FeatureTable`.
"""

import argparse
import json
import sys
import time

from keras_ser import _cli
from keras_ser.errors import KerasSERError, ParameterError
from keras_ser.extraction import FEATURES, extract, get_extractor, resolve_inputs


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
