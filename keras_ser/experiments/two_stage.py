"""The two-stage fold of zhang2021_dcnn (Sec. 2.3-2.5, 3.2).

Stage 1 fine-tunes the ``[stage1] model`` (a segment-level DCNN) on labelled
log-mel segments; its ``fc7`` activations, one vector per segment, form each
utterance's sequence, on which stage 2 trains the recipe's ``[model]`` (a BLSTM
with attention and a DNN). The saved model chains both stages so that it still
takes the front-end output.

How stage 2 is trained (``[encoder] schedule``, :func:`train_stage2`). Sec. 3.2 gives two
sets of settings: batch 128, 20 epochs, lr 1e-4 after "we input X into BLSTM-Attention
model", and batch 16, 30 epochs, lr 5e-6 for "the parameters of DNN are also optimized"
(both Adam with Nesterov momentum 0.9, cross-entropy); Sec. 2.5 "First, DNN classification
model was constructed, and then the utterance-level features were used for DNN training".
The reading chosen for the zhang2021_dcnn recipes, ``"separate"``: the BLSTM + attention
(the *encoder*, up to layer ``encoder.layer``) is trained first with a softmax of its own
on the attention output ``Z`` and the first set; then the DNN is trained on ``Z`` with the
encoder frozen and the second set (``[train]``). The other reading, ``"joint"`` (and a
two-stage recipe without ``[encoder]``): one fit of the whole stage-2 network with
``[train]``. The paper gives no settings for the DCNN fine-tuning; the recipes give it the
first set (the one the text gives right after describing the fine-tuning; see their
``[stage1]`` comments).

Imports :mod:`~keras_ser.experiments.training` only, of this package.
"""

import keras
import numpy as np

from keras_ser.errors import ParameterError
from keras_ser.experiments.precision import build_in_precision, resolve_precision
from keras_ser.experiments.training import (augmented, class_weight, fit_model, flatten_segments, label_index,
                                            predict_arrays, with_input_resize)
from keras_ser.models import build


def fc7_model(dcnn, name):
    """Sub-model of the fine-tuned DCNN giving its ``fc7`` activations (zhang2021_dcnn Sec. 2.4.1)."""
    if "fc7" not in {layer.name for layer in dcnn.layers}:
        raise ParameterError(f"[stage1] model {name!r} has no layer named 'fc7' to take segment features from")
    return keras.Model(dcnn.inputs, dcnn.get_layer("fc7").output)


def stage2_kwargs(model_table, feature_dim):
    """Builder arguments of the stage-2 model; its ``feature_dim`` is the fc7 width."""
    kwargs = {k: v for k, v in model_table.items() if k != "name"}
    if kwargs.setdefault("feature_dim", feature_dim) != feature_dim:
        raise ParameterError(
            f"model.feature_dim={kwargs['feature_dim']} but the stage-1 fc7 layer has {feature_dim} units; "
            "drop model.feature_dim (it follows fc7) or change stage1.model_options.fc_units"
        )
    return kwargs


def build_stage1_model(recipe, label_names):
    """The segment-level DCNN of ``[stage1]`` in its ``precision`` (call inside the strategy scope)."""
    stage1 = recipe["stage1"]
    return build_in_precision(lambda: build(stage1["model"], num_classes=len(label_names), **stage1["model_options"]),
                              resolve_precision(stage1["precision"]))


def build_stage2_model(recipe, label_names, feature_dim):
    """The sequence model of ``[model]`` on ``feature_dim``-wide fc7 vectors, in ``train.precision``.

    Call inside the strategy scope.
    """
    return build_in_precision(
        lambda: build(recipe["model"]["name"], num_classes=len(label_names),
                      **stage2_kwargs(recipe["model"], feature_dim)),
        resolve_precision(recipe["train"]["precision"]),
    )


def encoder_model(head, layer):
    """The stage-2 network up to and including ``layer`` (zhang2021_dcnn's BLSTM + attention)."""
    names = [item.name for item in head.layers]
    if layer not in names:
        raise ParameterError(f"encoder.layer={layer!r}: the stage-2 model {head.name!r} has no such layer "
                             f"(layers: {', '.join(names)})")
    return keras.Model(head.inputs, head.get_layer(layer).output, name="encoder")


def train_stage2(recipe, head, train_data, val_data, class_weights, log_dir):
    """Train the stage-2 network ``head`` by the recipe's ``[encoder] schedule`` (module docstring).

    Parameters
    ----------
    recipe : dict
        Resolved two-stage recipe; without ``[encoder]`` the schedule is ``"joint"``.
    head : keras.Model
        Built (inside the strategy scope; call this inside it too).
    train_data, val_data : (x, y)
        fc7 sequences and labels (``val_data`` may be None).
    class_weights : (dict or None, dict or None)
        Keras ``class_weight`` of the encoder phase and of the ``[train]`` phase.
    log_dir : pathlib.Path
        TensorBoard folder; the encoder phase logs to ``log_dir / "encoder"``.

    Returns
    -------
    (history, epochs_run, best_epoch, encoder)
        The ``[train]`` fit's, and ``encoder``: None under ``"joint"``, else the encoder
        phase's ``{"history", "epochs_run", "best_epoch"}``.

    Raises
    ------
    ParameterError
        ``encoder.layer`` is not a layer of ``head``, or no layer follows it.
    """
    train = recipe["train"]
    table = recipe.get("encoder")
    if table is None or table["schedule"] == "joint":
        history, epochs, best = fit_model(head, train, train_data, val_data, class_weight=class_weights[1],
                                          log_dir=log_dir)
        return history, epochs, best, None
    encoder = encoder_model(head, table["layer"])
    inside = {id(item) for item in encoder.layers}
    if not any(item.weights for item in head.layers if id(item) not in inside):
        raise ParameterError(f"encoder.layer={table['layer']!r} is the last trained layer of {head.name!r}: "
                             "nothing is left for [train] to train after the encoder")
    settings = dict(table, loss=train["loss"], precision=train["precision"])
    # Sec. 3.2 trains the BLSTM-Attention model with cross-entropy: a softmax on Z, dropped afterwards.
    softmax = keras.layers.Dense(head.output_shape[-1], activation="softmax", dtype="float32",
                                 name="encoder_softmax")
    trainer = keras.Model(encoder.inputs, softmax(encoder.output), name="encoder_trainer")
    encoder_history, encoder_epochs, encoder_best = fit_model(
        trainer, settings, train_data, val_data, class_weight=class_weights[0], log_dir=log_dir / "encoder")
    for item in encoder.layers:
        item.trainable = False
    history, epochs, best = fit_model(head, train, train_data, val_data, class_weight=class_weights[1],
                                      log_dir=log_dir)
    return history, epochs, best, {"history": encoder_history, "epochs_run": encoder_epochs,
                                   "best_epoch": encoder_best}


def run_two_stage_fold(recipe, fold, label_names, fold_dir, store, strategy):
    """Train and evaluate both stages on one fold.

    Returns
    -------
    dict
        As :func:`keras_ser.experiments.neural.run_neural_fold` (``embeddings`` is
        None, the model chains both stages and takes the front end's output), plus
        ``stage1_epochs_run`` and ``stage1_best_epoch`` (and ``encoder_epochs_run``, ``encoder_best_epoch`` under
        ``encoder.schedule = "separate"``). ``history`` holds the stage-1 fit's keys with
        a ``stage1_`` prefix, the encoder phase's with ``encoder_``.
    """
    stage1, train = recipe["stage1"], recipe["train"]
    val_utts, test_utts = list(fold.validation), list(fold.test)
    # Every segment of the corpus (times the speed factors) is held for the fold: as 64 x 64
    # log-mel images, resized to the DCNN's 227 x 227 per batch inside the model
    # (training.with_input_resize), not as 227 x 227 ones (12.6 times the memory).
    images, resize = store.split_resize()

    # Stage 1 (Sec. 2.3, 3.2): fine-tune the DCNN on labelled segments.
    s1_features, s1_utts = augmented(images, list(fold.train), stage1["speed_perturbation"])
    x1, y1, _ = flatten_segments(s1_features, label_index(s1_utts, label_names))
    segment_shape = x1.shape[1:]
    val1 = flatten_segments(images.get(val_utts), label_index(val_utts, label_names))[:2] if val_utts else None
    with strategy.scope():
        dcnn = build_stage1_model(recipe, label_names)
        history1, epochs1, best1 = fit_model(
            with_input_resize(dcnn, resize, segment_shape), stage1, (x1, y1), val1,
            class_weight=class_weight(stage1, [u.label for u in s1_utts], label_names),
            log_dir=fold_dir / "tensorboard" / "stage1",
        )
    del x1, y1, val1  # stage 2 reads the store again; the flattened copies would stay alive through it
    fc7 = fc7_model(dcnn, stage1["model"])
    fc7_of_images = with_input_resize(fc7, resize, segment_shape)

    # Stage 2: the fc7 activations of an utterance's segments form its sequence.
    def sequences(features):
        # One predict call over every segment: a call per utterance costs ~0.1 s of Keras overhead each.
        counts = [len(f) for f in features]
        values = np.asarray(predict_arrays(fc7_of_images, np.concatenate(features), stage1["batch_size"]))
        return np.stack(np.split(values, np.cumsum(counts)[:-1]))

    s2_features, s2_utts = augmented(images, list(fold.train), train["speed_perturbation"])
    x2, y2 = sequences(s2_features), label_index(s2_utts, label_names)
    val2 = (sequences(images.get(val_utts)), label_index(val_utts, label_names)) if val_utts else None
    feature_dim = fc7.output_shape[-1]
    stage2_labels = [u.label for u in s2_utts]
    weights = class_weight(train, stage2_labels, label_names)
    if recipe.get("encoder") is not None:
        weights = (class_weight(recipe["encoder"], stage2_labels, label_names), weights)
    else:
        weights = (None, weights)
    with strategy.scope():
        head = build_stage2_model(recipe, label_names, feature_dim)
        history2, epochs2, best2, encoder = train_stage2(recipe, head, (x2, y2), val2, weights,
                                                         fold_dir / "tensorboard" / "stage2")
        # The saved model chains both stages so it takes the front-end output (resized images).
        shape = images.get(test_utts[:1])[0].shape
        segments_in = keras.Input(shape=resize.compute_output_shape(shape) if resize is not None else shape)
        combined = keras.Model(segments_in, head(keras.layers.TimeDistributed(fc7)(segments_in)))

    def predict(utterances):
        return np.asarray(predict_arrays(head, sequences(images.get(utterances)), train["batch_size"]))

    history = {f"stage1_{k}": v for k, v in history1.items()}
    extra = {}
    if encoder is not None:
        history.update({f"encoder_{k}": v for k, v in encoder["history"].items()})
        extra = {"encoder_epochs_run": encoder["epochs_run"], "encoder_best_epoch": encoder["best_epoch"]}
    history.update(history2)
    return {
        "model": combined,
        "pooling": "none",
        "history": history,
        "epochs_run": epochs2,
        "best_epoch": best2,
        "stage1_epochs_run": epochs1,
        "stage1_best_epoch": best1,
        **extra,
        "test_probabilities": predict(test_utts),
        "val_probabilities": predict(val_utts) if val_utts else None,
        "embeddings": None,
    }
