"""``python -m keras_ser.train``: train and evaluate a recipe over all folds.

Usage::

    python -m keras_ser.train [--recipe NAME|PATH] [--corpus emodb|manifest:PATH|...]
        [--data-dir D] [--out DIR] [--folds f1,f2] [--jobs N] [--strategy default|mirrored|multi_worker]
        [--results DIR [--results-variant NAME]] [--callbacks MODULE:FUNCTION] [--final] [--skip-bad] [--no-progress] [--verbose|--quiet]
        [--test-corpus CORPUS [--label-map FILE]]
        [--version] [key=value ...]
    python -m keras_ser.train --list     # the recipes by paper and table, with the paper's figures

With no arguments it runs the README's default recipe ``zhao2018_attention_blstm_fcn``
(leave-one-speaker-out on EMO-DB, about 30 minutes on 2 CPU cores) into
``runs/zhao2018_attention_blstm_fcn``. ``zhao2019_attention_blstm_fcn`` (zhao2019's
two-layer model on 500-frame inputs) takes hours per LOSO run on a CPU.
Re-running the same command resumes: finished folds are skipped, an interrupted one
is redone from its fits' last epoch checkpoints (``experiment.checkpoint_minutes``,
:mod:`keras_ser.experiments.checkpoints`). Ctrl-C stops with one line saying what was kept and how to resume (exit
status 130). ``key=value`` overrides any recipe key (``train.epochs=2``,
``model.units=4``), see :mod:`keras_ser.recipe`. ``--results results/`` also copies each
finished fold's scores and the reports to ``results/<recipe>/<corpus>/`` and resumes from
there on any machine (:mod:`keras_ser.experiments.results`). ``--callbacks module:function``
adds an experiment tracker's Keras callbacks to every fit (:mod:`keras_ser.experiments.training`).
``--jobs N`` trains N folds at once, each in a worker process on its share of the CPU cores
(:mod:`keras_ser.experiments.parallel`: small networks train faster that way on a CPU).
``--skip-bad`` leaves out the corpus files that ``keras_ser.audio.load`` refuses
(by default the run stops at the first, naming it) and lists them in the reports.
``--test-corpus CORPUS`` evaluates across corpora: one fold, trained on all of the recipe's corpus
and tested on all of CORPUS, whose other labels ``--label-map`` maps (:mod:`keras_ser.data.cross_corpus`).
``--final`` then trains the run's deployable model on every speaker for the median of the epochs
the folds chose on validation (``RUN/final/model``, used by ``predict RUN`` and ``export RUN``;
:mod:`keras_ser.experiments.final`).

Example
-------
>>> from keras_ser.train import main
>>> main(["--recipe", "zhao2019_attention_blstm_fcn", "--folds", "03", "epochs=1"])  # doctest: +SKIP
"""

import argparse
import json
import pathlib
import shlex
import sys
import tomllib

from keras_ser import _cli
from keras_ser.errors import DataError, KerasSERError, ParameterError
from keras_ser.recipe import PRECISIONS, load_recipe, recipe_listing

DEFAULT_RECIPE = "zhao2018_attention_blstm_fcn"


def build_parser():
    """The argument parser of ``python -m keras_ser.train``."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_ser.train",
        description="Train and evaluate a keras_ser recipe over the folds of its protocol.",
    )
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"recipe name or .toml path (default {DEFAULT_RECIPE})")
    parser.add_argument("--corpus", help="corpus name or manifest:PATH (default: the recipe's)")
    parser.add_argument("--data-dir", help="data root (default $KERAS_SER_DATA, then ~/.keras/datasets)")
    parser.add_argument("--out", help="run directory (default runs/<recipe>)")
    parser.add_argument("--folds", help="comma-separated fold names (speaker_03 or 03) to run now")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="folds trained at once, one worker process per 1/N of the CPU cores (default 1)")
    parser.add_argument("--strategy", default="default", choices=("default", "mirrored", "multi_worker"))
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar over folds")
    parser.add_argument("--list", action="store_true",
                        help="print the recipes grouped by paper and table, with the paper's figures, and exit")
    parser.add_argument("--results", metavar="DIR",
                        help="mirror finished folds to DIR/<recipe>/<corpus> (e.g. results/) and resume from there")
    parser.add_argument("--results-variant", metavar="NAME",
                        help="with --results: file this run as a variant of its recipe, in "
                             "DIR/<recipe>/<corpus>__NAME (a run under other settings kept beside the recipe's own)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="training precision, short for train.precision=... (and stage1.precision=... "
                             "for two-stage recipes); default: the recipe's")
    parser.add_argument("--callbacks", action="append", default=[], metavar="MODULE:FUNCTION",
                        help="callback factory of an experiment tracker: FUNCTION(recipe, fold, fold_dir) returns "
                             "Keras callbacks added to every fit (repeatable; "
                             "keras_ser.experiments.training.register_callback_factory)")
    parser.add_argument("--final", action="store_true",
                        help="after the folds, train the deployable model on every speaker for the median of the "
                             "folds' best epochs, into RUN/final/model (neural recipes)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out corpus files that keras_ser.audio.load refuses (unreadable, empty, too short, "
                             "silent, NaN) instead of stopping at the first; they are listed in results.md and "
                             "results.json, and a run started with it resumes only with it")
    parser.add_argument("--test-corpus", metavar="CORPUS",
                        help="cross-corpus evaluation: train on all of the recipe's corpus (or --corpus), test on "
                             "all of CORPUS (name or manifest:PATH); short for experiment.test_corpus=CORPUS")
    parser.add_argument("--label-map", metavar="FILE",
                        help="JSON or TOML table mapping the test corpus's other labels to training classes "
                             "(\"\" drops a label); short for experiment.label_map={...}")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides")
    return _cli.add_common_arguments(parser)


def _interrupted(run_dir, argv):
    """The one line printed on Ctrl-C: the folds the run directory keeps and the command that resumes."""
    from keras_ser.experiments.run_dir import RunDir, fold_status

    command = "python -m keras_ser.train " + shlex.join(argv)
    if run_dir is None:
        return f"interrupted before training started; run again with: {command}"
    run = RunDir(run_dir)
    kept = [name for name in run.fold_names() if fold_status(run.root, name)[0]]
    folds = f"{len(kept)} finished fold{'' if len(kept) == 1 else 's'}" + (f" ({', '.join(kept)})" if kept else "")
    return (f"interrupted: kept {folds} in {run.root}; an unfinished fold goes on from its last checkpoint "
            f"on resume. Resume with: {command}")


def _cross_corpus_overrides(test_corpus, label_map_path):
    """``--test-corpus`` / ``--label-map`` as the overrides they stand for, recorded in config.json."""
    items = []
    if test_corpus:
        items.append(f"experiment.test_corpus={json.dumps(test_corpus)}")
    if label_map_path:
        if not test_corpus:
            raise ParameterError("--label-map maps the labels of --test-corpus; give --test-corpus too")
        path = pathlib.Path(label_map_path)
        try:
            text = path.read_text()
            table = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as error:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            raise DataError(f"--label-map {path}: {error}") from None
        if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in table.items()):
            raise DataError(f"--label-map {path}: expected a table of label -> training label (strings)")
        items.append("experiment.label_map={" + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}"
                                                         for k, v in table.items()) + "}")
    return items


def _results_folder(args, recipe):
    """``--results`` as given, or the mirror of its ``--results-variant`` folder."""
    if args.results_variant is None:
        return args.results
    if not args.results:
        raise ParameterError("--results-variant names a folder under --results; give --results too")
    from keras_ser.experiments.results import ResultsMirror

    keyed = dict(recipe, experiment=dict(recipe["experiment"], corpus=args.corpus or recipe["experiment"]["corpus"]))
    return ResultsMirror.for_run(args.results, keyed, variant=args.results_variant)


def _with_precision(recipe_name, overrides, precision):
    """``overrides`` plus ``--precision`` as the override(s) of every trained table."""
    overrides = list(overrides)
    if precision:
        overrides.append(f"train.precision={precision}")
        if load_recipe(recipe_name, overrides)["experiment"]["kind"] == "two_stage":
            overrides.append(f"stage1.precision={precision}")
    return overrides


def main(argv=None):
    """Entry point; returns the process exit status (0; 2 on a keras_ser error; 130 on Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Intermixed: overrides may come before, between and after the options.
    args = build_parser().parse_intermixed_args(argv)
    if args.list:
        print(recipe_listing(), end="")
        return 0
    _cli.configure(args)
    run_dir = None
    try:
        from keras_ser.experiments.run_dir import default_root
        from keras_ser.experiments.runner import run_experiment
        from keras_ser.experiments.training import load_callback_factory, register_callback_factory

        for spec in args.callbacks:  # --callbacks: experiment trackers
            register_callback_factory(load_callback_factory(spec))

        overrides = _with_precision(args.recipe, args.overrides + _cross_corpus_overrides(
            args.test_corpus, args.label_map), args.precision)
        recipe = load_recipe(args.recipe, overrides)
        run_dir = pathlib.Path(args.out) if args.out else default_root(recipe["recipe"]["name"])
        folds = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
        results = _results_folder(args, recipe)
        with _cli.keras_output(args):
            results = run_experiment(
                recipe, corpus=args.corpus, data_dir=args.data_dir, out=run_dir, folds=folds,
                strategy=args.strategy, overrides=overrides, results=results,
                progress=not args.no_progress and _cli.interactive(args, sys.stderr), final=args.final,
                skip_bad=args.skip_bad, jobs=args.jobs,
            )
    except KerasSERError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_interrupted(run_dir, argv), file=sys.stderr)
        return 130
    pooled = results.get("pooled")
    if pooled:
        print(f"{results['recipe']} on {results['corpus_display']} ({results['protocol']}, "
              f"{len(results['folds_done'])}/{results['folds_total']} folds): {_scores(pooled)}")
    if args.final:
        print(f"final model (every speaker): {run_dir / 'final' / 'model'}")
    return 0


def _scores(pooled):
    """One line of pooled scores: WA / UA / macro-F1 of a classifier, CCC per dimension of a regression run."""
    if "ccc" in pooled:
        return "  ".join(f"CCC {name} {value:.3f}" for name, value in pooled["ccc"].items()) + \
            f"  CCC mean {pooled['ccc_mean']:.3f}"
    return f"WA {100 * pooled['wa']:.1f}  UA {100 * pooled['ua']:.1f}  macro-F1 {100 * pooled['macro_f1']:.1f}"


if __name__ == "__main__":
    sys.exit(main())
