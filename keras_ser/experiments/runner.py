"""The fold loop: train and evaluate a recipe on every fold of its protocol.

:func:`run_experiment` is what ``python -m keras_ser.train`` calls. For each fold
of the recipe's protocol (leave-one-speaker-out on EMO-DB by default) it runs the
fold module of the recipe's ``[experiment] kind``:

* ``neural``: :mod:`keras_ser.experiments.neural` (one network on the cached
  front-end output, class weights of zhao2019 eq. 11, early stopping on the
  validation speaker(s));
* ``two_stage``: :mod:`keras_ser.experiments.two_stage` (zhang2021_dcnn);
* ``features_svm``: :mod:`keras_ser.experiments.svm` (:func:`keras_ser.svm.run_fold`);
* ``fusion``: the member recipes run into ``RUN_DIR/members/<name>``, then
  :mod:`keras_ser.experiments.fusion` fuses their scores and features
  (zhang2021_multicnn).

Regression recipes (``train.loss = "ccc"``, tzirakis2021) run the neural kind through
:func:`keras_ser.experiments.neural.run_regression_fold` on a corpus with continuous labels
(``sewa``; ``emodb_dimensional``, arousal / valence derived from EMO-DB's categorical
labels): their ``metrics.json`` ``scores`` are ``{"ccc": {dim: value}, "ccc_mean", "n"}``
and ``predictions.csv`` holds ``id, true_<dim>, pred_<dim>, ...`` per test utterance
(:func:`check_supported` says what they cannot do).

It then writes ``folds/<fold>/`` (predictions, history, TensorBoard logs, the MODEL
DIR) and, last, ``metrics.json``. With ``jobs > 1`` the unfinished folds of a neural or
two-stage run train at once in worker processes, one per group of CPU cores
(:mod:`keras_ser.experiments.parallel`); everything else stays in this process.
Re-running the same command resumes: finished folds
(:func:`keras_ser.experiments.run_dir.fold_status`) are skipped, and an interrupted or
damaged one is redone with a note. The run holds the directory's lock throughout and
refuses to resume across a change of configuration or corpus. The layout is
:mod:`keras_ser.experiments.run_dir`'s.

Seeding: ``keras.utils.set_random_seed(seed)`` and TensorFlow op determinism
before every fold, so the same seed, data and settings give the same metrics (on the same
number of CPU threads, which each fold's ``metrics.json`` records as ``cpu_threads``).

Repeats: ``experiment.repeats = R`` (zhang2021_dcnn Sec. 3.2 reports the mean of three
runs per speaker) trains each network fold R times, run ``k`` with seed
:func:`repeat_seed` into ``folds/<fold>/repeat_<k>/`` (an ordinary fold folder), and
writes the fold's own files from them: the mean scores and probabilities, and the
model of the run with the best validation UA (:func:`run_repeats`). Resuming redoes
only the runs that are not finished.

Example
-------
>>> from keras_ser.experiments.runner import run_experiment
>>> from keras_ser.recipe import load_recipe, recipe_repeats
>>> recipe = load_recipe("zhao2019_attention_blstm_fcn", ["epochs=1"])
>>> results = run_experiment(recipe, out="runs/tiny", folds=["speaker_03"])  # doctest: +SKIP

One module on purpose: the loop, its resume decisions, repeats and the fusion dispatch
share the run's state (lock, store, mirror, fold status) and read as one story; the work
of a fold lives in the fold modules.
"""

import json
import os
import pathlib
import shutil
import sys

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_ser import audio
from keras_ser.data import label_names as corpus_labels
from keras_ser.data import load_corpus, make_folds
from keras_ser.data.cross_corpus import cross_corpus_fold
from keras_ser.distribute import get_strategy
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments import fusion, reports, word_vectors
from keras_ser.experiments.checkpoints import CHECKPOINTS_DIR, clear_folder, fit_checkpoints, remove_checkpoints
from keras_ser.experiments.clock import Stopwatch
from keras_ser.experiments.environment import run_environment
from keras_ser.experiments.neural import FeatureStore, cached_frontend, run_neural_fold, run_regression_fold
from keras_ser.experiments.parallel import check_jobs, run_folds
from keras_ser.experiments.precision import describe_policy, resolve_precision
from keras_ser.experiments.results import ResultsMirror, mirror_repeat, restore_repeat
from keras_ser.experiments.resume import RunLock, check_config, corpus_fingerprint
from keras_ser.experiments.run_dir import (MODEL_FILES, RunDir, atomic_path, default_root, fold_status, read_json,
                                           read_predictions, repeat_dir, repeat_restored, repeat_status, write_json,
                                           write_model_dir, write_predictions, write_regression_predictions)
from keras_ser.experiments.svm import run_svm_fold
from keras_ser.experiments.training import continuous_track, fold_context, label_index, set_seed
from keras_ser.experiments.two_stage import run_two_stage_fold
from keras_ser.frontend.presets import numerics_revision, resolve
from keras_ser.metrics import classification_scores, regression_scores
from keras_ser.recipe import load_recipe, recipe_repeats


def _fold_summary(fold):
    def speakers(utts):
        return sorted({str(u.speaker) for u in utts})

    return {
        "fold": fold.name,
        "test_speakers": speakers(fold.test),
        "validation_speakers": speakers(fold.validation),
        "n_train": len(fold.train),
        "n_validation": len(fold.validation),
        "n_test": len(fold.test),
    }


def _write_network_fold(recipe, fold, label_names, fold_dir, out, frontend, sample_rate):
    """Write a network fold's predictions, embeddings, history and MODEL DIR; return its metrics entries."""
    y_true = label_index(list(fold.test), label_names)
    probabilities = out["test_probabilities"]
    y_pred = probabilities.argmax(-1)
    write_predictions(fold_dir / "predictions.csv", [u.id for u in fold.test],
                      [label_names[k] for k in y_true], [label_names[k] for k in y_pred],
                      probabilities, label_names)
    validation = {}
    if out["val_probabilities"] is not None:
        val_pred = out["val_probabilities"].argmax(-1)
        write_predictions(fold_dir / "val_predictions.csv", [u.id for u in fold.validation],
                          [u.label for u in fold.validation],
                          [label_names[k] for k in val_pred],
                          out["val_probabilities"], label_names)
        # keras_ser.predict picks a run's fold model by validation UA, never by test UA.
        validation["validation_scores"] = classification_scores(
            label_index(list(fold.validation), label_names), val_pred, label_names)
    if out["embeddings"] is not None:
        ids = {"train": fold.train, "validation": fold.validation, "test": fold.test}
        with atomic_path(fold_dir / "embeddings.npz") as tmp:
            np.savez(tmp, **{f"{part}_x": v for part, v in out["embeddings"].items()},
                     **{f"{part}_ids": np.array([u.id for u in ids[part]]) for part in out["embeddings"]})
    write_json(fold_dir / "history.json", out["history"])
    if recipe["experiment"]["save_models"]:
        write_model_dir(fold_dir / "model", out["model"], out.get("frontend") or frontend, label_names, {
            "recipe": recipe["recipe"]["name"], "fold": fold.name, "pooling": out["pooling"],
            "corpus": recipe["experiment"]["corpus"], "sample_rate": sample_rate,
        })
    metrics = dict(scores=classification_scores(y_true, y_pred, label_names),
                   epochs_run=out["epochs_run"], best_epoch=out["best_epoch"], **validation)
    for key in ("stage1_epochs_run", "stage1_best_epoch", "encoder_epochs_run", "encoder_best_epoch"):
        if key in out:
            metrics[key] = out[key]
    return metrics


def regression(recipe):
    """True for a regression recipe (``train.loss = "ccc"``, tzirakis2021): continuous targets, CCC scores."""
    return recipe.get("train", {}).get("loss") == "ccc"


def _write_regression_fold(recipe, fold, dimensions, fold_dir, out, frontend, sample_rate):
    """Write a regression fold's predictions, history and MODEL DIR; return its metrics entries.

    ``predictions.csv`` (and ``val_predictions.csv``) hold, per utterance, the true and
    predicted value of each dimension: for a model with per-frame outputs, the means over
    the utterance's frames (:func:`keras_ser.experiments.neural.utterance_means`).
    ``scores`` is :func:`keras_ser.metrics.regression_scores` of those utterance values.
    """
    write_regression_predictions(fold_dir / "predictions.csv", [u.id for u in fold.test], out["test_targets"],
                                 out["test_values"], dimensions)
    validation = {}
    if out["val_values"] is not None:
        write_regression_predictions(fold_dir / "val_predictions.csv", [u.id for u in fold.validation],
                                     out["val_targets"], out["val_values"], dimensions)
        validation["validation_scores"] = regression_scores(out["val_targets"], out["val_values"], dimensions)
    write_json(fold_dir / "history.json", out["history"])
    if recipe["experiment"]["save_models"]:
        write_model_dir(fold_dir / "model", out["model"], out.get("frontend") or frontend, dimensions, {
            "recipe": recipe["recipe"]["name"], "fold": fold.name, "pooling": out["pooling"],
            "corpus": recipe["experiment"]["corpus"], "sample_rate": sample_rate, "task": "regression",
        })
    return dict(scores=regression_scores(out["test_targets"], out["test_values"], dimensions),
                epochs_run=out["epochs_run"], best_epoch=out["best_epoch"], **validation)


def repeat_seed(seed, repeat):
    """The seed of run ``repeat`` (1-based) of a fold under ``experiment.repeats``.

    Run 1 uses ``seed`` itself, so it is the run a recipe without repeats trains; run
    ``k > 1`` uses a 32-bit seed drawn from NumPy's ``SeedSequence([seed, k])``:
    deterministic, and unrelated to the seeds of a run started with ``seed + 1``.

    Example
    -------
    >>> repeat_seed(42, 1), repeat_seed(42, 2) == repeat_seed(42, 2), repeat_seed(42, 2) != repeat_seed(43, 2)
    (42, True, True)
    """
    if repeat == 1:
        return seed
    return int(np.random.SeedSequence([seed % 2 ** 32, repeat]).generate_state(1)[0])


def _train_network(recipe, fold, label_names, folder, *, seed, store, frontend, strategy, extra=None):
    """Train one network on ``fold`` with ``seed``; write its files into ``folder``, ``metrics.json`` last."""
    folder.mkdir(parents=True, exist_ok=True)
    watch = Stopwatch()
    set_seed(seed)
    if regression(recipe):
        runner, write = run_regression_fold, _write_regression_fold
    else:
        runner = run_two_stage_fold if recipe["experiment"]["kind"] == "two_stage" else run_neural_fold
        write = _write_network_fold
    # Experiment trackers' callback factories see this fold (training.register_callback_factory);
    # the fits keep their state in checkpoints/ until the network is finished.
    with fold_context(recipe, fold, folder), \
            fit_checkpoints(folder / CHECKPOINTS_DIR, recipe["experiment"]["checkpoint_minutes"]) as times:
        out = runner(recipe, fold, label_names, folder, store, strategy)
    metrics = dict(_fold_summary(fold), **(extra or {}),
                   **write(recipe, fold, label_names, folder, out, frontend, store.sample_rate))
    # With the training that earlier processes did before an interruption (checkpoints.FitTimes).
    metrics.update(watch.record(times.restored_s))
    # The sums of convolution gradients are split between threads: another count may change the last bits.
    metrics["cpu_threads"] = tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))
    # Written last: the fold (or run) counts as finished only once it is there (run_dir.fold_status).
    write_json(folder / "metrics.json", metrics)
    remove_checkpoints(folder)
    return metrics


def run_fold(recipe, fold, label_names, fold_dir, *, store=None, frontend=None, strategy=None, progress=True,
             results_fold=None):
    """Train and evaluate one fold; write its files; return its ``metrics.json`` dict.

    Under ``experiment.repeats = R > 1`` the fold trains R networks into
    ``repeat_<k>/`` (:func:`run_repeats`), skipping those finished before, here or in
    ``results_fold`` (the fold's folder in ``results/``).
    """
    fold_dir = pathlib.Path(fold_dir)
    fold_dir.mkdir(parents=True, exist_ok=True)
    seed = recipe["experiment"]["seed"]
    if recipe["experiment"]["kind"] != "features_svm":
        if recipe_repeats(recipe) > 1:
            return run_repeats(recipe, fold, label_names, fold_dir, store=store, frontend=frontend,
                               strategy=strategy, results_fold=results_fold)
        return _train_network(recipe, fold, label_names, fold_dir, seed=seed, store=store, frontend=frontend,
                              strategy=strategy)
    watch = Stopwatch()
    set_seed(seed)
    metrics = dict(_fold_summary(fold), **run_svm_fold(recipe, fold, label_names, fold_dir, progress=progress))
    metrics.update(watch.record())
    write_json(fold_dir / "metrics.json", metrics)
    return metrics


#: Keys of the fold's ``metrics.json`` taken from the run whose model the fold folder holds.
_MODEL_RUN_KEYS = ("epochs_run", "best_epoch", "validation_scores", "stage1_epochs_run", "stage1_best_epoch",
                   "encoder_epochs_run", "encoder_best_epoch")


def _link(source, target):
    """Hard-link ``source`` to ``target`` atomically (a copy where links are not possible): no second copy on disk."""
    with atomic_path(target) as tmp:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def _mean_predictions(paths):
    """Ids, labels and the mean probabilities of the same utterances' ``predictions.csv`` files."""
    ids, labels, _, first = read_predictions(paths[0])
    total = first.copy()
    for path in paths[1:]:
        other_ids, _, _, probabilities = read_predictions(path)
        if other_ids != ids:
            raise DataError(f"{path} lists other utterances than {paths[0]}; delete the fold's folder to redo it")
        total += probabilities
    return ids, labels, total / len(paths)


def run_repeats(recipe, fold, label_names, fold_dir, *, store=None, frontend=None, strategy=None,
                results_fold=None):
    """Train fold ``fold`` ``experiment.repeats`` times and write the fold's combined files.

    Run ``k`` (seed :func:`repeat_seed`) is an ordinary network fold in
    ``fold_dir/repeat_<k>/`` (its own ``metrics.json``, ``predictions.csv``, model, ...);
    a run finished before (:func:`~keras_ser.experiments.run_dir.repeat_status`) is not
    trained again, so a run killed after repeat 2 of a fold redoes only repeat 3. With
    ``results_fold`` (the fold's folder in ``results/``), each run is copied there as it
    ends (:func:`keras_ser.experiments.results.mirror_repeat`), and a run finished there
    but not here is restored from it (scores only, no model) instead of trained, so an
    unfinished fold goes on from its finished runs on another machine. Then, in
    ``fold_dir`` itself:

    * ``predictions.csv`` / ``val_predictions.csv``: the mean of the runs' class
      probabilities per utterance, ``predicted`` its argmax; the run's pooled metrics
      (:func:`keras_ser.experiments.reports.aggregate`) read these;
    * ``metrics.json``: ``scores`` holds the mean over the runs of each run's ``ua``,
      ``wa`` and ``macro_f1`` (zhang2021_dcnn Sec. 3.2: "for each speaker, we test three
      times and take the average accuracy as the speaker's result"), with ``*_std`` and
      ``n``; ``ensemble_scores`` the scores of the mean probabilities; ``per_repeat`` each
      run's ``repeat``, ``seed``, full ``scores`` and epochs; ``model_repeat`` the run
      whose model, history and embeddings the fold folder holds, with its ``epochs_run``,
      ``best_epoch`` and ``validation_scores``; ``wall_s`` (and ``stopped_s``) the sums of the runs';
    * ``model/``, ``history.json``, ``embeddings.npz``: those of the run with the best
      validation UA (the first run on a tie or without validation speakers), hard-linked
      (``meta.json`` rewritten with its ``repeat`` and ``seed``). ``predict`` and ``export``
      use that one network, so their scores are its own, not the mean of the runs. Runs
      restored from ``results/`` have no model: the choice is among the runs trained here
      (``restored_repeats`` in ``metrics.json`` lists the others), and a fold all of whose
      runs were restored has no model.

    Returns
    -------
    dict
        The fold's ``metrics.json``.
    """
    repeats, seed = recipe_repeats(recipe), recipe["experiment"]["seed"]
    save_models = recipe["experiment"]["save_models"]
    runs = []
    for k in range(1, repeats + 1):
        folder = repeat_dir(fold_dir, k)
        finished = repeat_status(fold_dir, fold.name, k, label_names, save_models)[0]
        if not finished and results_fold is not None:
            finished = restore_repeat(repeat_dir(results_fold, k), folder, fold.name, label_names)
            if finished:
                print(f"note: fold {fold.name}: run {k} of {repeats} restored from {results_fold} "
                      "(scores only, no model): not trained again", file=sys.stderr)
        if finished:
            runs.append(read_json(folder / "metrics.json"))
            continue
        clear_folder(folder)
        runs.append(_train_network(recipe, fold, label_names, folder, seed=repeat_seed(seed, k), store=store,
                                   frontend=frontend, strategy=strategy,
                                   extra={"repeat": k, "seed": repeat_seed(seed, k)}))
        if results_fold is not None:
            mirror_repeat(folder, repeat_dir(results_fold, k))
    folders = [repeat_dir(fold_dir, k) for k in range(1, repeats + 1)]
    index = {name: i for i, name in enumerate(label_names)}
    ids, labels, probabilities = _mean_predictions([f / "predictions.csv" for f in folders])
    predicted = probabilities.argmax(-1)
    write_predictions(fold_dir / "predictions.csv", ids, labels, [label_names[i] for i in predicted],
                      probabilities, label_names)
    if all((f / "val_predictions.csv").is_file() for f in folders):
        val_ids, val_labels, val_probabilities = _mean_predictions([f / "val_predictions.csv" for f in folders])
        write_predictions(fold_dir / "val_predictions.csv", val_ids, val_labels,
                          [label_names[i] for i in val_probabilities.argmax(-1)], val_probabilities, label_names)
    validation = [(run.get("validation_scores") or {}).get("ua") for run in runs]
    restored = [k for k in range(1, repeats + 1) if repeat_restored(fold_dir, k)]
    candidates = [i for i in range(repeats) if i + 1 not in restored] or list(range(repeats))
    chosen = candidates[0] if None in validation else max(candidates, key=lambda i: (validation[i], -i))
    model_run = folders[chosen]
    for filename in ("history.json", "embeddings.npz"):
        if (model_run / filename).is_file():
            _link(model_run / filename, fold_dir / filename)
    if (fold_dir / "model").exists():
        shutil.rmtree(fold_dir / "model")
    if save_models and chosen + 1 not in restored:
        for filename in (f for f in MODEL_FILES if f != "meta.json"):
            _link(model_run / "model" / filename, fold_dir / "model" / filename)
        meta = read_json(model_run / "model" / "meta.json")
        write_json(fold_dir / "model" / "meta.json", dict(meta, repeat=chosen + 1, seed=runs[chosen]["seed"]))
    measures = ("ua", "wa", "macro_f1")
    scores = {key: float(np.mean([run["scores"][key] for run in runs])) for key in measures}
    scores.update({f"{key}_std": float(np.std([run["scores"][key] for run in runs])) for key in measures})
    scores["n"] = runs[0]["scores"]["n"]
    metrics = dict(
        _fold_summary(fold), repeats=repeats, scores=scores,
        ensemble_scores=classification_scores([index[v] for v in labels], predicted, label_names),
        per_repeat=[{key: run[key] for key in ("repeat", "seed", "scores", "epochs_run", "best_epoch",
                                               "validation_scores", "wall_s", "stopped_s", "cpu_threads")
                     if key in run}
                    for run in runs],
        model_repeat=chosen + 1,
        **({"restored_repeats": restored} if restored else {}),
        **{key: runs[chosen][key] for key in _MODEL_RUN_KEYS if key in runs[chosen]},
        wall_s=round(float(sum(run.get("wall_s", 0.0) for run in runs)), 2),
    )
    stopped = sum(run.get("stopped_s", 0.0) for run in runs)
    if stopped:
        metrics["stopped_s"] = round(float(stopped), 2)
    # Written last: the fold counts as finished only once it is there (run_dir.fold_status).
    write_json(fold_dir / "metrics.json", metrics)
    return metrics


def select_folds(folds, wanted):
    """The folds named in ``wanted`` (``"speaker_03"`` or ``"03"``), or all of them.

    Raises
    ------
    ParameterError
        A name matches no fold.
    """
    if not wanted:
        return folds
    by_name = {f.name: f for f in folds}
    chosen = []
    for name in wanted:
        match = by_name.get(name) or by_name.get(f"speaker_{name}")
        if match is None:
            raise ParameterError(f"--folds: no fold {name!r}; folds are {', '.join(by_name)}")
        chosen.append(match)
    return chosen


def check_supported(recipe):
    """Refuse, before any data is read, a recipe whose training path the runner lacks.

    Regression recipes (``train.loss = "ccc"``, tzirakis2021) train networks on corpora
    with continuous labels (``sewa``, ``emodb_dimensional``) through
    :func:`keras_ser.experiments.neural.run_regression_fold`; the settings that path does
    not implement are refused (two-stage training, ``experiment.repeats``, cross-corpus
    testing, SVM or fusion kinds). A model that reads word vectors (tzirakis2021's semantic
    network) gets them from :mod:`keras_ser.experiments.word_vectors`, which refuses the
    settings it cannot serve.
    """
    name = recipe["recipe"]["name"]
    kind = recipe["experiment"]["kind"]
    if kind == "neural" and word_vectors.uses_word_vectors(recipe["model"]):
        word_vectors.check_word_vector_recipe(recipe)
    if not regression(recipe):
        return
    if kind != "neural":
        raise ParameterError(f"recipe {name!r}: train.loss='ccc' (regression) is trained by experiment.kind="
                             f"'neural' only, not {kind!r}")
    if recipe_repeats(recipe) > 1 or recipe["experiment"]["test_corpus"]:
        raise ParameterError(f"recipe {name!r}: train.loss='ccc' (regression) has no experiment.repeats or "
                             "experiment.test_corpus path; set experiment.repeats=1 and no test_corpus")


def _run_fusion(recipe, run_dir, *, corpus, data_dir, folds, strategy, overrides, progress, mirror=None,
                skip_bad=False, jobs=1):
    """Run the member recipes (resumable) into ``run_dir/members/<name>``, then fuse them."""
    members = {}
    for name, member_recipe, own in fusion.member_runs(recipe, overrides):
        members[name] = run_experiment(member_recipe, corpus=corpus, data_dir=data_dir,
                                       out=run_dir / "members" / name, folds=folds, strategy=strategy,
                                       overrides=own, progress=progress, skip_bad=skip_bad, jobs=jobs,
                                       results=mirror.member(name, recipe) if mirror else None)
    restored = {}
    if mirror:  # results/ (keras_ser.experiments.results)
        labels = read_json(RunDir(run_dir).labels)
        restored = mirror.restore_fused(run_dir, fusion.fusion_levels(recipe), labels,
                                        skip=fusion.fusable_folds(recipe, members))
    fused = fusion.fuse_members(recipe, run_dir, members, corpus=corpus, data_dir=data_dir, restored=restored)
    if mirror:
        mirror.mirror(run_dir)
    return fused


def run_experiment(recipe, *, corpus=None, data_dir=None, out=None, folds=None, strategy="default",
                   overrides=(), progress=True, results=None, final=False, skip_bad=False, jobs=1):
    """Run ``recipe`` over every fold (or ``folds``), resuming finished folds.

    Parameters
    ----------
    recipe : dict or str
        A resolved recipe (:func:`keras_ser.recipe.load_recipe`) or its name.
    corpus : str, optional
        Overrides ``[experiment] corpus`` (``"emodb"``, ``"manifest:PATH"``, ...).
    data_dir : str, optional
        Data root, see :func:`keras_ser.paths.data_root`.
    out : path, optional
        Run directory; default ``runs/<recipe name>``.
    folds : list of str, optional
        Fold names (``"speaker_03"`` or just ``"03"``) to run now; the others are
        left for a later call. Reports cover every finished fold.
    strategy : {"default", "mirrored", "multi_worker"}
        Passed to :func:`keras_ser.distribute.get_strategy`.
    overrides : sequence of str
        Recorded in ``config.json`` (and passed to fusion members).
    progress : bool
        tqdm bar over folds.
    results : path, optional
        A ``results/`` folder: finished folds are mirrored to ``results/<recipe>/<corpus>``
        and folds found there are not trained again
        (:class:`keras_ser.experiments.results.ResultsMirror`).
    final : bool
        After the folds, train the run's deployable model on every speaker
        (``RUN/final/model``, :func:`keras_ser.experiments.final.train_final`).
    skip_bad : bool
        Leave out the corpus files that :func:`keras_ser.audio.load` refuses (see
        :func:`screen_corpus`) instead of stopping at the first; they are in no fold and
        are listed in ``skipped.json`` and the reports. Recorded in ``config.json``
        (``"skip_bad": true``), so resuming such a run without it is refused as a
        change of configuration.
    jobs : int
        Folds trained at once, each in a worker process on its share of the CPU cores
        (:mod:`keras_ser.experiments.parallel`); 1 trains them one after another in this
        process. For ``neural`` and ``two_stage`` recipes (and a fusion's members); the
        folds of the other kinds run one at a time. Not with a GPU or another strategy.

    Returns
    -------
    dict
        The content of ``results.json``.

    Raises
    ------
    ParameterError
        Another process runs on the directory, or it (or ``results``) holds a run of another
        configuration; or ``jobs`` cannot be used (:func:`keras_ser.experiments.parallel.check_jobs`).
    DataError
        The corpus changed since the run started (see
        :func:`keras_ser.experiments.resume.check_config`); or, without ``skip_bad``, a
        corpus file is unreadable or refused by :func:`keras_ser.audio.load` (the message
        names it).
    """
    if isinstance(recipe, str):
        recipe = load_recipe(recipe, overrides)
    recipe = json.loads(json.dumps(recipe))
    if corpus:
        recipe["experiment"]["corpus"] = corpus
    check_supported(recipe)
    check_jobs(jobs, strategy)
    run_dir = RunDir(pathlib.Path(out) if out else default_root(recipe["recipe"]["name"]))
    mirror = ResultsMirror.for_run(results, recipe)
    with RunLock(run_dir.root):
        return _run_locked(recipe, run_dir, data_dir=data_dir, folds=folds, strategy=strategy,
                           overrides=overrides, progress=progress, mirror=mirror, final=final,
                           skip_bad=skip_bad, jobs=jobs)


def _resolved_precision(recipe):
    """The dtype policy of each trained table (``train``, and ``stage1`` of two-stage runs), logged."""
    tables = {"train": recipe["train"]}
    if recipe["experiment"]["kind"] == "two_stage":
        tables["stage1"] = recipe["stage1"]
    resolved = {}
    for key, table in tables.items():
        resolved[key] = resolve_precision(table["precision"])
        print(f"{key} {describe_policy(table['precision'], resolved[key])}", file=sys.stderr)
    return resolved


def _frontend_revision(recipe):
    """The front end's numerics revision that this run's inputs follow
    (:func:`keras_ser.frontend.presets.numerics_revision`), or None when it uses no TensorFlow front end.

    Neural and two-stage runs: their ``[frontend]``. A ``features_svm`` run on ``embedding:PATH``:
    the front end of the network it reads (a MODEL DIR's ``frontend.json``, a RUN_DIR's
    ``config.json``), which this code computes anew.
    """
    kind = recipe["experiment"]["kind"]
    if kind in ("neural", "two_stage"):
        return numerics_revision(resolve(**recipe["frontend"]))
    name = recipe.get("features", {}).get("name", "")
    if kind == "features_svm" and name.startswith("embedding:"):
        source = pathlib.Path(name[len("embedding:"):])
        if (source / "frontend.json").is_file():  # every resolved setting
            return numerics_revision(read_json(source / "frontend.json"))
        if RunDir(source).config.is_file():
            return numerics_revision(resolve(**read_json(RunDir(source).config)["recipe"]["frontend"]))
    return None


def screen_corpus(utterances, skip_bad=False):
    """Check every file of a corpus once, before folds are made.

    Each file goes through :func:`keras_ser.audio.load` at its own rate (``sr=None``):
    the checks (unreadable, empty, non-finite, silent, too short) do not depend on the
    rate, and not resampling keeps the pass cheap.

    Parameters
    ----------
    utterances : list of keras_ser.data.Utterance
    skip_bad : bool
        Collect the refused files instead of raising at the first.

    Returns
    -------
    kept : list of keras_ser.data.Utterance
    skipped : list of dict
        ``{"path": str, "reason": str}`` for each refused file (empty unless ``skip_bad``).

    Raises
    ------
    DataError
        Without ``skip_bad``: the first refused file, named by :func:`keras_ser.audio.load`'s message.
        With it: a class all of whose files were refused.
    """
    kept, skipped, labels = [], [], {}
    for utterance in utterances:
        try:
            audio.load(utterance.path, sr=None)
        except DataError as error:
            if not skip_bad:
                raise DataError(f"{error} (python -m keras_ser.train --skip-bad leaves such files out)") from error
            skipped.append({"path": str(utterance.path), "reason": str(error)})
            labels[str(utterance.path)] = utterance.label
            continue
        kept.append(utterance)
    lost = sorted({u.label for u in utterances} - {u.label for u in kept} - {None})
    if lost:
        # Caught here: a class absent from every fold would otherwise surface in the class weights.
        raise DataError(
            f"--skip-bad left class(es) {lost} without any file: every file of "
            f"{'that class' if len(lost) == 1 else 'those classes'} was refused ("
            + "; ".join(s["reason"] for s in skipped if labels[s["path"]] in lost)
            + "). Repair the files or remove the class from the corpus")
    if skipped:
        shown = "; ".join(s["reason"] for s in skipped[:5]) + (f"; and {len(skipped) - 5} more"
                                                               if len(skipped) > 5 else "")
        print(f"note: --skip-bad left out {len(skipped)} of {len(utterances)} files "
              f"(all listed in results.md): {shown}", file=sys.stderr)
    return kept, skipped


def _check_targets(corpus, utterances, dimensions):
    """Refuse a regression run whose corpus lacks continuous labels, or one of whose tracks is damaged.

    Raises
    ------
    DataError
        The corpus has no continuous labels at all (a categorical corpus such as ``emodb``:
        its derived dimensional variant is ``emodb_dimensional``), or an utterance lacks a
        dimension or holds a NaN (:func:`keras_ser.experiments.training.continuous_track`).
    """
    if not any(u.continuous for u in utterances):
        raise DataError(f"corpus {corpus!r} has no continuous labels, which train.loss='ccc' regresses; use a "
                        "corpus with them: 'sewa', or 'emodb_dimensional' (arousal / valence derived from "
                        "EMO-DB's categorical labels)")
    for utterance in utterances:
        for dimension in dimensions:
            continuous_track(utterance, dimension)


def _clear_unfinished(fold_dir, name, reason, repeats):
    """Remove an unfinished fold's files before it is redone, keeping its runs' folders under repeats
    and the checkpoints of an interrupted fit (:mod:`keras_ser.experiments.checkpoints`).

    ``run_repeats`` then trains only the runs that are not finished.
    """
    if repeats == 1:
        print(f"note: fold {name} is not finished ({reason}); redoing it", file=sys.stderr)
        clear_folder(fold_dir)
        return
    kept = {repeat_dir(fold_dir, k).name for k in range(1, repeats + 1)}
    print(f"note: fold {name} is not finished ({reason}); redoing it, keeping its finished runs", file=sys.stderr)
    for path in fold_dir.iterdir():
        if path.name in kept:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _cross_corpus_fold(recipe, run_dir, kept, test_set, labels):
    """The one fold of a run with ``experiment.test_corpus`` (:mod:`keras_ser.data.cross_corpus`).

    ``protocol_options.validation = "none"`` holds out no validation speaker; any other value
    the recipe's own protocol takes gives the cross-corpus default, one per gender. What the
    label map did is written to ``cross_corpus.json`` for the reports.
    """
    experiment = recipe["experiment"]
    validation = "none" if experiment["protocol_options"].get("validation") == "none" else "one_per_gender"
    fold, dropped = cross_corpus_fold([u for u in kept if u not in test_set], [u for u in kept if u in test_set],
                                      test_corpus=experiment["test_corpus"], label_map=experiment["label_map"],
                                      label_names=labels, validation=validation)
    write_json(run_dir.root / reports.CROSS_CORPUS_FILE, {
        "train_corpus": experiment["corpus"], "test_corpus": experiment["test_corpus"],
        "label_map": experiment["label_map"], "dropped": dropped, "validation": validation,
        "validation_speakers": sorted({u.speaker for u in fold.validation}),
        "n_test": len(fold.test)})
    if dropped:
        print(f"note: experiment.label_map dropped {sum(dropped.values())} test utterance(s) {dropped}",
              file=sys.stderr)
    return fold


def _run_locked(recipe, run_dir, *, data_dir, folds, strategy, overrides, progress, mirror=None, final=False,
                skip_bad=False, jobs=1):
    name = recipe["recipe"]["name"]
    corpus = recipe["experiment"]["corpus"]
    config = {"recipe": recipe, "overrides": list(overrides), "corpus": corpus,
              "data_dir": str(data_dir) if data_dir else None, "seed": recipe["experiment"]["seed"],
              "strategy": strategy, "folds": list(folds or []),
              "environment": run_environment([gpu.name for gpu in tf.config.list_physical_devices("GPU")])}
    if skip_bad:  # only when set, so that runs started before the flag existed still resume
        config["skip_bad"] = True
    if final and regression(recipe):
        raise ParameterError(f"--final trains classification recipes; {name!r} is a regression recipe "
                             "(train.loss='ccc'): use a fold model (predict / export choose one)")
    if final and recipe["experiment"]["kind"] == "neural" and word_vectors.uses_word_vectors(recipe["model"]):
        raise ParameterError(f"--final cannot train {name!r}: its model reads word vectors, which are fitted per "
                             "fold on the fold's training speakers; use a fold model")
    if final and recipe["experiment"]["kind"] != "neural":  # train --final (keras_ser.experiments.final)
        raise ParameterError(f"--final trains neural recipes (experiment.kind='neural'); "
                             f"{name!r} is {recipe['experiment']['kind']!r}")
    if recipe["experiment"]["kind"] == "fusion":
        # Each member run records and checks its own corpus fingerprint.
        check_config(run_dir.root, config)
        write_json(run_dir.labels, corpus_labels(corpus))
        if mirror:  # results/ (keras_ser.experiments.results)
            mirror.check_config(run_dir.root)
        return _run_fusion(recipe, run_dir.root, corpus=corpus, data_dir=data_dir, folds=folds,
                           strategy=strategy, overrides=overrides, progress=progress, mirror=mirror,
                           skip_bad=skip_bad, jobs=jobs)

    if recipe["experiment"]["kind"] in ("neural", "two_stage"):
        config["precision"] = _resolved_precision(recipe)
    revision = _frontend_revision(recipe)
    if revision is not None:
        config["frontend_revision"] = revision
    utterances = load_corpus(corpus, data_dir)
    test_corpus = recipe["experiment"]["test_corpus"]
    test_utterances = load_corpus(test_corpus, data_dir) if test_corpus else []
    # Before config.json is written: after a refused file is repaired, the same command starts afresh
    # instead of finding the corpus changed.
    kept, skipped = screen_corpus(utterances + test_utterances, skip_bad)
    check_config(run_dir.root, config, corpus_fingerprint(utterances + test_utterances))
    if skip_bad:
        write_json(run_dir.root / reports.SKIPPED_FILES, skipped)
    labels = corpus_labels(corpus)
    if regression(recipe):
        _check_targets(corpus, kept, labels)
    write_json(run_dir.labels, labels)
    if test_corpus:
        all_folds = [_cross_corpus_fold(recipe, run_dir, kept, set(test_utterances), labels)]
    else:
        all_folds = make_folds(recipe["experiment"]["protocol"], kept, **recipe["experiment"]["protocol_options"])
    chosen = select_folds(all_folds, folds)
    # results/ (keras_ser.experiments.results): folds finished there are copied here and count as done.
    restored = (mirror.start(run_dir.root, recipe, labels, [f.name for f in all_folds], {f.name for f in chosen})
                if mirror else set())
    todo = []
    for fold in chosen:
        if fold.name in restored:
            continue
        finished, reason = fold_status(run_dir.root, fold.name, labels)
        if finished:
            continue
        if run_dir.fold(fold.name).exists():
            _clear_unfinished(run_dir.fold(fold.name), fold.name, reason, recipe_repeats(recipe))
        todo.append(fold)
    kind = recipe["experiment"]["kind"]
    parallel = jobs > 1 and len(todo) > 1
    if parallel and kind not in ("neural", "two_stage"):
        print(f"note: jobs={jobs} trains the folds of neural and two_stage recipes in parallel; "
              f"the {kind} folds of {name!r} run one at a time", file=sys.stderr)
        parallel = False
    store = frontend = strategy_obj = None
    if todo and not parallel and kind in ("neural", "two_stage"):
        frontend = cached_frontend(recipe["frontend"])
        store = FeatureStore(frontend)
        strategy_obj = get_strategy(strategy)
    if mirror and todo:  # results/ names the protocol's folds (k of n) from the start, before any fold ends
        mirror.write_reports(run_dir.root)
    bar = tqdm(total=len(chosen), initial=len(chosen) - len(todo), desc=name, unit="fold", disable=not progress)

    def finished(fold_name):
        if mirror:  # results/: this fold and the refreshed reports
            mirror.fold_done(run_dir.root, fold_name)
        bar.update(1)

    results_root = RunDir(mirror.root) if mirror else None  # runs under experiment.repeats go there as they end
    if parallel:  # keras_ser.experiments.parallel: one worker process per group of cores
        run_folds(run_fold, recipe, todo, labels, run_dir, jobs=jobs, strategy=strategy, on_done=finished,
                  results_root=results_root)
    else:
        for fold in todo:
            bar.set_postfix_str(fold.name)
            run_fold(recipe, fold, labels, run_dir.fold(fold.name), store=store, frontend=frontend,
                     strategy=strategy_obj, progress=progress,
                     results_fold=results_root.fold(fold.name) if results_root else None)
            finished(fold.name)
    bar.close()
    if final:  # train --final: the deployable model on every speaker (keras_ser.experiments.final)
        from keras_ser.experiments.final import train_final

        train_final(recipe, run_dir.root, labels, all_folds, store=store,
                    strategy=strategy_obj or get_strategy(strategy))
    if mirror:  # results/: the reports cover the restored folds too
        return mirror.finish(run_dir.root)
    return reports.write_reports(run_dir.root, recipe, labels, [f.name for f in all_folds])
