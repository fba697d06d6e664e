"""What every keras_ser command line shares, and the ``keras-ser`` command.

``keras-ser train|predict|export|extract ARGS`` runs ``python -m keras_ser.<command> ARGS``
(the same parser and exit status). Each command takes ``--version``, and ``--verbose`` /
``--quiet``:

- TensorFlow's C++ log lines (``I0000 ... cpu_feature_guard``, ``E0000 ... NodeDef mentions
  attribute use_unbounded_threadpool``) are hidden unless ``--verbose`` is given or
  ``TF_CPP_MIN_LOG_LEVEL`` is set. TensorFlow reads that variable once, when it is
  imported, so :func:`configure` runs before any command imports it, and then imports it
  with standard error muted, for the few lines written before the variable is read.
- Progress bars go to the terminal only (:func:`interactive`): Keras's per-step bars and
  printed summaries (:func:`keras_output`), and the tqdm bars over folds and files, are off
  when their stream is not a terminal (a log file, a pipe) and under ``--quiet``, so logs
  keep only results and errors.
"""

import argparse
import contextlib
import importlib
import os
import sys

from keras_ser import __version__

#: ``keras-ser`` subcommand -> module whose ``main(argv)`` runs it.
COMMANDS = {
    "train": "keras_ser.train",
    "predict": "keras_ser.predict",
    "export": "keras_ser.export",
    "extract": "keras_ser.extract",
}

#: ``TF_CPP_MIN_LOG_LEVEL`` of a quiet run: 3 hides INFO, WARNING and ERROR lines (the
#: ``use_unbounded_threadpool`` line of every tf.data run is an ERROR); failures still
#: reach the user as Python exceptions.
QUIET_TF_LOG_LEVEL = "3"


def add_common_arguments(parser):
    """Add ``--version``, ``--verbose`` and ``--quiet`` to a command's parser."""
    parser.add_argument("--version", action="version", version=f"keras_ser {__version__}")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="show TensorFlow's C++ log lines (hidden unless TF_CPP_MIN_LOG_LEVEL is set)")
    loudness.add_argument("-q", "--quiet", action="store_true",
                          help="no progress bars: print only results and errors")
    return parser


def configure(args):
    """Set TensorFlow's C++ log level from ``args`` (call before TensorFlow is imported).

    ``--verbose`` shows every line; otherwise a ``TF_CPP_MIN_LOG_LEVEL`` set by the
    user is kept, else :data:`QUIET_TF_LOG_LEVEL` applies and TensorFlow is imported
    at once, quietly (every command needs it).
    """
    if args.verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    elif "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_TF_LOG_LEVEL
        _import_tensorflow_quietly()


def _import_tensorflow_quietly():
    """Import TensorFlow with standard error (file descriptor 2) sent to ``os.devnull``.

    While its libraries load, TensorFlow writes a few lines before it reads
    ``TF_CPP_MIN_LOG_LEVEL`` (absl's ``All log messages before absl::InitializeLog()``,
    the ``oneDNN custom operations are on`` notice). An import error still reaches the
    user: it is raised after standard error is restored.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def interactive(args, stream=None):
    """True when progress bars belong on ``stream`` (standard output) and ``--quiet`` is off.

    A terminal, or a Jupyter kernel (whose output stream is no terminal but shows bars).
    """
    stream = sys.stdout if stream is None else stream
    if args.quiet:
        return False
    return "ipykernel" in sys.modules or (hasattr(stream, "isatty") and stream.isatty())


@contextlib.contextmanager
def keras_output(args):
    """Within it, Keras's progress bars and printed summaries show only if :func:`interactive`.

    Keras's switch is global, so it is restored on exit (``main()`` called from a notebook
    leaves the notebook's own ``fit`` output alone). Imports Keras.
    """
    import keras

    before = keras.config.is_interactive_logging_enabled()
    if interactive(args):
        keras.config.enable_interactive_logging()
    else:
        keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if before:
            keras.config.enable_interactive_logging()
        else:
            keras.config.disable_interactive_logging()


def build_parser():
    """The parser of ``keras-ser``: ``--version``, or a command and its arguments."""
    parser = argparse.ArgumentParser(
        prog="keras-ser",
        description="Speech emotion recognition in Keras 3 on TensorFlow. "
                    "`keras-ser COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"keras_ser {__version__}")
    parser.add_argument("command", choices=sorted(COMMANDS), help="train, predict, export or extract")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's arguments")
    return parser


def main(argv=None):
    """Entry point of the ``keras-ser`` console script; returns the command's exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return importlib.import_module(COMMANDS[args.command]).main(args.arguments)
