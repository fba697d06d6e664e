"""The run's deployable model: one network trained on every speaker after the folds.

``python -m keras_ser.train ... --final`` (:func:`keras_ser.experiments.runner.run_experiment`
with ``final=True``) ends a neural run with :func:`train_final`, which

1. takes the number of epochs the folds chose on their validation speakers: the
   median of the finished folds' ``best_epoch`` (``metrics.json``; the epoch whose
   weights early stopping kept, or the epochs run without it), rounded half up;
2. trains one model from scratch (same recipe, seed and class weighting) on every
   utterance of the run's folds, without validation or early stopping, for that many
   epochs;
3. standardises as the folds do, with statistics of the whole training set:
   ``frontend.standardize = "global"``: one mean / std per dimension over every
   training frame (speed-perturbed copies included, as in a fold);
   ``"speaker"``: each speaker with its own statistics during training, and the
   saved front end holds those of every frame of every speaker pooled (unperturbed
   utterances), the fallback the SavedModel uses for a speaker whose statistics a
   request does not give (:mod:`keras_ser.export`);
4. writes ``RUN/final/model/`` (a MODEL DIR: ``model.keras``, ``frontend.json``,
   ``labels.json``, ``meta.json`` with ``"fold": "final"``), ``final/history.json`` and
   TensorBoard logs, and last ``final/final.json`` (epochs, the folds and best epochs
   they came from, utterance and speaker counts, wall time): the model counts only
   once it is there.

``predict RUN`` and ``export RUN`` then use ``final/model`` (policy ``"deployable"`` of
:func:`keras_ser.experiments.run_dir.resolve_model_dir`); ``--fold`` still picks a fold
model. A later ``--final`` call retrains the final model only when the finished folds
or their best epochs changed. The final model has no test speaker, so it has no
score of its own: its expected performance is the folds' pooled result.
Callback factories (:func:`keras_ser.experiments.training.register_callback_factory`)
see it as a fold named ``"final"``.
"""

import math
import sys

import numpy as np

from keras_ser.data.splits import Fold
from keras_ser.errors import ParameterError
from keras_ser.experiments.checkpoints import CHECKPOINTS_DIR, clear_folder, fit_checkpoints, remove_checkpoints
from keras_ser.experiments.clock import Stopwatch
from keras_ser.experiments.neural import (FeatureStore, build_model, cached_frontend, flatten_segments, mask_value,
                                          pad_stack, per_fold_statistics)
from keras_ser.experiments.run_dir import (FINAL_INFO, FINAL_MODEL, fold_status, read_json, write_json,
                                           write_model_dir)
from keras_ser.experiments.training import (augmented, class_weight, fit_model, fold_context, label_index,
                                            set_seed, with_input_resize)
from keras_ser.frontend import FrontEnd, feature_statistics

#: The ``fold`` name of the final model (its folder, meta.json, callback factories).
FINAL = "final"


def final_epochs(run_dir, fold_names, label_names=None):
    """Epochs of the final model: the median best epoch of the finished folds, rounded half up.

    Returns
    -------
    (int, dict)
        The epochs and ``{fold: best_epoch}`` of the folds used.

    Raises
    ------
    ParameterError
        No fold of ``fold_names`` is finished, or a finished fold records no ``best_epoch``.
    """
    best = {}
    for name in fold_names:
        if not fold_status(run_dir, name, label_names)[0]:
            continue
        metrics = read_json(run_dir / "folds" / name / "metrics.json")
        if not metrics.get("best_epoch"):
            raise ParameterError(f"--final: {run_dir / 'folds' / name / 'metrics.json'} records no best_epoch")
        best[name] = int(metrics["best_epoch"])
    if not best:
        raise ParameterError(f"--final: {run_dir} has no finished fold to take the number of epochs from; "
                             "train the folds first")
    return max(1, int(math.floor(np.median(list(best.values())) + 0.5))), best


def _all_utterances(folds):
    """Every utterance of the folds, once each, in first-seen order."""
    seen = {}
    for fold in folds:
        for u in (*fold.train, *fold.validation, *fold.test):
            seen.setdefault(u.id, u)
    return list(seen.values())


def _standardized(recipe, utterances, features, owners, store):
    """The training features standardised as the folds do, and the front end to save."""
    table = recipe["frontend"]
    if not per_fold_statistics(table):
        return features, store.frontend
    mode = table["standardize"]
    if mode == "global":
        mean, std = feature_statistics(features)
        frontend = FrontEnd(**dict(table, feature_mean=mean, feature_std=std))
        return [(f - np.float32(mean)) / np.float32(std) for f in features], frontend
    unknown = [u.id for u in utterances if u.speaker is None]
    if unknown:
        raise ParameterError(f"frontend.standardize='speaker' needs speaker ids; utterance {unknown[0]!r} has none")
    by_speaker = {}
    for f, u in zip(features, owners):
        by_speaker.setdefault(u.speaker, []).append(f)
    stats = {speaker: [np.asarray(v, np.float32) for v in feature_statistics(items)]
             for speaker, items in by_speaker.items()}
    # The fallback for an unknown speaker: every training frame of every speaker, unperturbed.
    mean, std = feature_statistics(store.get(utterances))
    frontend = FrontEnd(**dict(table, feature_mean=mean, feature_std=std))
    return [(f - stats[u.speaker][0]) / stats[u.speaker][1] for f, u in zip(features, owners)], frontend


def train_final(recipe, run_dir, label_names, folds, *, store=None, strategy=None):
    """Train and save the run's deployable model (module docstring); return ``final.json``'s dict.

    Parameters
    ----------
    recipe : dict
        Resolved recipe of a ``neural`` run.
    run_dir : pathlib.Path
    label_names : list of str
    folds : list of keras_ser.data.Fold
        Every fold of the run's protocol: the final model trains on all their
        utterances and takes its epochs from those that are finished.
    store : keras_ser.experiments.neural.FeatureStore, optional
        The run's cached front-end outputs (a new one when None).
    strategy : tf.distribute.Strategy, optional

    Raises
    ------
    ParameterError
        The recipe is not ``neural``, or no fold is finished.
    """
    import tensorflow as tf

    kind = recipe["experiment"]["kind"]
    if kind != "neural":
        raise ParameterError(f"--final trains neural recipes (experiment.kind='neural'); "
                             f"{recipe['recipe']['name']!r} is {kind!r}")
    if not recipe["experiment"]["save_models"]:
        raise ParameterError("--final saves a model, but the recipe sets experiment.save_models = false")
    epochs, best = final_epochs(run_dir, [f.name for f in folds], label_names)
    final_dir = run_dir / FINAL
    if (run_dir / FINAL_INFO).is_file() and (run_dir / FINAL_MODEL / "model.keras").is_file():
        done = read_json(run_dir / FINAL_INFO)
        if done.get("fold_best_epochs") == best and done.get("epochs") == epochs:
            return done
    if final_dir.exists():
        print(f"note: retraining the final model in {final_dir} (the finished folds changed or it was "
              "not finished)", file=sys.stderr)
        clear_folder(final_dir)
    final_dir.mkdir(parents=True, exist_ok=True)
    if len(best) < len(folds):
        print(f"note: the final model's {epochs} epochs come from {len(best)} of {len(folds)} folds "
              f"({', '.join(best)})", file=sys.stderr)
    watch = Stopwatch()
    set_seed(recipe["experiment"]["seed"])
    store = store or FeatureStore(cached_frontend(recipe["frontend"]))
    strategy = strategy or tf.distribute.get_strategy()
    train = dict(recipe["train"], epochs=epochs, early_stopping=False)
    utterances = _all_utterances(folds)
    segments = recipe["experiment"]["pooling"] == "mean_segments"
    # Segment images are held before their resize, as in the folds (training.with_input_resize).
    images, resize = store.split_resize() if segments else (store, None)
    features, owners = augmented(images, utterances, train["speed_perturbation"])
    features, frontend = _standardized(recipe, utterances, features, owners, store)
    y = label_index(owners, label_names)
    if segments:
        x, y, _ = flatten_segments(features, y)
    else:
        x = pad_stack(features, mask_value(recipe["model"]))
    fold = Fold(FINAL, utterances, (), ())
    with fold_context(recipe, fold, final_dir), strategy.scope(), \
            fit_checkpoints(final_dir / CHECKPOINTS_DIR, recipe["experiment"]["checkpoint_minutes"]) as times:
        model = build_model(recipe, label_names, store.frontend)
        history, epochs_run, _ = fit_model(
            with_input_resize(model, resize, x.shape[1:]), train, (x, y), None,
            class_weight=class_weight(train, [u.label for u in owners], label_names),
            log_dir=final_dir / "tensorboard",
        )
    write_json(final_dir / "history.json", history)
    write_model_dir(run_dir / FINAL_MODEL, model, frontend, label_names, {
        "recipe": recipe["recipe"]["name"], "fold": FINAL, "pooling": recipe["experiment"]["pooling"],
        "corpus": recipe["experiment"]["corpus"], "sample_rate": store.sample_rate, "epochs": epochs_run,
        "speaker_statistics": "training set" if recipe["frontend"].get("standardize") == "speaker" else None,
    })
    info = {"epochs": epochs, "epochs_run": epochs_run, "fold_best_epochs": best,
            "epochs_rule": "median of the finished folds' best_epoch, rounded half up",
            "n_train": len(utterances), "speakers": sorted({str(u.speaker) for u in utterances}),
            "standardize": recipe["frontend"].get("standardize"), **watch.record(times.restored_s)}
    # Written last: the final model counts only once this is there.
    write_json(run_dir / FINAL_INFO, info)
    remove_checkpoints(final_dir)
    return info
