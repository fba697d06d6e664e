"""Every recipe builds its front end and network at tiny size and trains one step.

Each recipe is loaded with a few ``key=value`` overrides that shrink widths only (the
recipe's own front end, model name, optimiser and loss are kept), its front end runs on
a short random waveform, and the network it names takes that output and trains one
step (a two-stage recipe: the stage-1 DCNN on the segments, then the stage-2 network on
the DCNN's fc7 sequence). Every registered model must be named by a recipe or listed in
:data:`BUILDING_BLOCKS` with the reason it has no row of its own.
"""

import inspect

import keras
import numpy as np
import pytest

from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.neural import cached_frontend, model_kwargs
from keras_ser.experiments.training import class_weight, make_loss, make_optimizer
from keras_ser.experiments.word_vectors import reads_frame_sequences
from keras_ser.models import available, build, info
from keras_ser.models.multicnn import CONV_LAYERS_FOR_LENGTH
from keras_ser.report import DIAGNOSTICS
from keras_ser.recipe import (IMAGENET_MODELS, RECIPE_DIR, available_recipes, load_recipe, recipe_listing,
                              reported_rows, weights_statement)

#: Registered models that are no paper row of their own, so no recipe names them.
BUILDING_BLOCKS = {
    # zhang2021_multicnn's utterance-level models: the runner averages the segment models' scores itself
    # (experiment.pooling = "mean_segments"), so Table 7's 1D / 2D / 3D rows are the
    # zhang2021_multicnn_1d / _2d / _3d recipes; these are the same path as one Keras model.
    "zhang2021_multicnn_1d_utterance": "zhang2021_multicnn Table 7, 1D CNNs: recipe zhang2021_multicnn_1d",
    "zhang2021_multicnn_2d_utterance": "zhang2021_multicnn Table 7, 2D CNNs: recipe zhang2021_multicnn_2d",
    "zhang2021_multicnn_3d_utterance": "zhang2021_multicnn Table 7, 3D CNNs: recipe zhang2021_multicnn_3d",
    # The plain fine-tuned AlexNet, the same network as zhang2021_multicnn_2d (zhang2021_multicnn Table 2)
    # and zhang2021_dcnn (zhang2021_dcnn Sec. 2.4.1, stage 1 of every zhang2021_dcnn recipe).
    "zhang2021_alexnet": "zhang2021_multicnn Table 2 / zhang2021_dcnn Sec. 2.4.1: recipes zhang2021_multicnn_2d, zhang2021_dcnn_blstmwa",
}

_WAVEFORM_SECONDS = 0.5


def _tiny(recipe_name):
    """Width-only overrides for ``recipe_name`` (and ImageNet weights off: no file here)."""
    recipe = load_recipe(recipe_name)
    kind = recipe["experiment"]["kind"]
    if kind == "two_stage":
        return ["stage1.model_options.weights=none", "frontend.image_size=67", "stage1.model_options.image_size=67",
                "stage1.model_options.filters=[4, 4, 4, 4, 4]", "stage1.model_options.fc_units=[8, 8]",
                "model.lstm_units=4", "model.dnn_units=[8]"]
    name = recipe["model"]["name"]
    builder = info(name).builder.__name__
    if builder == "zhao2019_attention_blstm_fcn":
        return ["frontend.num_frames=40", "model.rnn_units=4", "model.conv_filters=[4, 4, 4]", "model.dnn_units=[4]"]
    if builder == "zhao2018_attention_blstm_fcn":
        return ["model.rnn_units=4", "model.conv_filters=[4, 4]", "model.dnn_units=[4]", "model.shuffle_frames=8"]
    if builder == "zhang2021_cnn1d":
        layers = CONV_LAYERS_FOR_LENGTH[recipe["frontend"]["segment_samples"]] if "segment_samples" in \
            recipe["frontend"] else 4
        return [f"model.filters={[4] * layers}", "model.fc_units=[8, 8]"]
    if builder == "zhang2021_cnn2d":
        size = 67 if IMAGENET_MODELS[name] == "alexnet" else 32
        tiny = ["model.weights=none", f"frontend.image_size={size}", f"model.image_size={size}",
                f"model.backbone_size={size}", "model.fc_units=[8, 8]"]
        return tiny + (["model.filters=[4, 4, 4, 4, 4]"] if size == 67 else [])
    if builder == "zhang2021_cnn3d":
        return ["model.filters=[4, 4]", "model.fc_units=[8, 8]"]
    if builder == "zhang2021_2cnn_lstm":
        return ["model.filters=[2, 2]", "model.lstm_units=4"]
    if builder == "tzirakis2021_semantic":
        return ["frontend.sequence_frames=3", "model.units=8", "model.branch_units=4", "model.lstm_units=4",
                "model.filters=[2, 2, 2]"]
    raise AssertionError(f"no tiny setting for {name} ({builder}); add one here")


def _trainable_recipes():
    names = []
    for name in available_recipes():
        kind = load_recipe(name)["experiment"]["kind"]
        if kind in ("neural", "two_stage"):
            names.append(name)
    return names


_FRONTEND_CACHE = {}


def _frontend_output(frontend_table):
    """``[1, ...]`` front-end output of one short random waveform, shared between recipes."""
    key = repr(sorted(frontend_table.items()))
    if key not in _FRONTEND_CACHE:
        frontend = cached_frontend(frontend_table)
        samples = int(_WAVEFORM_SECONDS * frontend.sample_rate)
        waveform = np.random.default_rng(0).uniform(-0.5, 0.5, (1, samples)).astype("float32")
        _FRONTEND_CACHE[key] = (frontend, np.asarray(frontend(waveform)))
    return _FRONTEND_CACHE[key]


def _labels(recipe):
    """Class names for a recipe's tiny run: FAU-AEC's five where its class weights need them."""
    if recipe["train"]["class_weight"] == "zhao2019_table4":
        return ("anger", "emphatic", "neutral", "positive", "rest")
    return ("a", "b", "c")


def _one_step(model, train, x, y, labels):
    """One ``train_on_batch``; returns the loss, asserting it is finite and the weights moved."""
    model.compile(optimizer=make_optimizer(train), loss=make_loss(train), run_eagerly=True)
    before = [np.array(w) for w in model.trainable_weights]
    # Every class once more than the batch holds, so that a one-example batch has a weight per class.
    weights = class_weight(train, list(labels) + [labels[k] for k in np.ravel(y)], list(labels)) \
        if train["loss"] != "ccc" else None
    loss = model.train_on_batch(x, y, class_weight=weights)
    loss = float(np.ravel(loss)[0])
    assert np.isfinite(loss)
    assert any(not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights))
    return loss


@pytest.mark.parametrize("name", _trainable_recipes())
def test_recipe_builds_tiny_and_trains_one_step(name):
    recipe = load_recipe(name, _tiny(name))
    frontend, output = _frontend_output(recipe["frontend"])
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = _labels(recipe)
    classes = len(labels)
    segmented = recipe["experiment"]["pooling"] == "mean_segments" or recipe["experiment"]["kind"] == "two_stage"
    if recipe["experiment"]["kind"] == "two_stage":
        segments = output[0]
        dcnn = build(recipe["stage1"]["model"], num_classes=classes, **recipe["stage1"]["model_options"])
        _one_step(dcnn, recipe["stage1"], segments, rng.integers(0, classes, len(segments)), labels)
        fc7 = keras.Model(dcnn.input, dcnn.get_layer("fc7").output)
        sequence = np.asarray(fc7(segments, training=False))[None]
        head = build(recipe["model"]["name"], num_classes=classes, feature_dim=sequence.shape[-1],
                     **{k: v for k, v in recipe["model"].items() if k != "name"})
        _one_step(head, recipe["train"], sequence, np.array([1]), labels)
        return
    regression = recipe["train"]["loss"] == "ccc"
    if regression or reads_frame_sequences(recipe["model"]):
        # tzirakis2021: [sequences, frames, samples] audio and a word vector per frame; regression: 3 outputs
        # per frame (built without num_classes, as the runner does), else one softmax per sequence.
        model = build(recipe["model"]["name"], num_classes=None if regression else classes,
                      **model_kwargs(recipe["model"], frontend))
        audio = output[0]
        inputs = {"audio_frames": audio, "word_vectors": rng.standard_normal(audio.shape[:2] + (300,))}
        x = [inputs[t.name.split(":")[0]] for t in model.inputs]
        y = (rng.uniform(-1, 1, audio.shape[:2] + (3,)).astype("float32") if regression
             else rng.integers(0, classes, len(audio)))
        _one_step(model, recipe["train"], x, y, labels)
        return
    model = build(recipe["model"]["name"], num_classes=classes, **model_kwargs(recipe["model"], frontend))
    x = output[0] if segmented else output
    _one_step(model, recipe["train"], x, rng.integers(0, classes, len(x)), labels)


def test_every_registered_model_has_a_recipe_or_is_a_building_block():
    named = set()
    for name in available_recipes():
        recipe = load_recipe(name)
        if recipe["experiment"]["kind"] in ("neural", "two_stage"):
            named.add(recipe["model"]["name"])
        if recipe["experiment"]["kind"] == "two_stage":
            named.add(recipe["stage1"]["model"])
    # Stand-in networks that other test modules register (paper "test") are not keras_ser's.
    registered = {name for name in available() if info(name).paper != "test"}
    assert not set(BUILDING_BLOCKS) - registered, "stale BUILDING_BLOCKS entries"
    assert not named & set(BUILDING_BLOCKS), "a model with a recipe is listed as a building block"
    missing = registered - named - set(BUILDING_BLOCKS)
    assert not missing, f"registered models with neither a recipe nor a BUILDING_BLOCKS entry: {sorted(missing)}"


def test_every_paper_row_has_a_figure_or_says_why_not():
    for name in available_recipes():
        paper = load_recipe(name)["paper"]
        rows = paper["reported"]
        if name in DIAGNOSTICS:  # dissects one of the paper's systems: no figure of its own, and says so
            assert not rows and paper["note"], name
            continue
        assert rows, f"{name} names no paper row"
        for row in rows:
            figures = {k: v for k, v in row.items() if k not in ("table", "corpus", "protocol", "note", "weights")}
            # A row without a figure must say why (the paper gives none for it).
            assert figures or row.get("note"), f"{name}: {row['table']} has neither a figure nor a note"
            assert all(isinstance(v, (int, float)) for v in figures.values()), (name, row)


def test_imagenet_backbone_models_are_exactly_those_taking_weights():
    taking = {name for name in available() if "weights" in inspect.signature(info(name).builder).parameters}
    assert taking == set(IMAGENET_MODELS)


def test_backbone_recipes_default_to_imagenet_and_stop_without_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache: no bvlc_alexnet.npy
    recipe = load_recipe("zhang2021_multicnn_2d")
    assert recipe["model"]["weights"] == "imagenet"
    assert load_recipe("zhang2021_dcnn_blstmwa")["stage1"]["model_options"]["weights"] == "imagenet"
    assert load_recipe("zhao2019_features_alexnet_fc7")["features"]["weights"] == "imagenet"
    kwargs = dict(image_size=67, backbone_size=67, filters=[4, 4, 4, 4, 4], fc_units=[8, 8])
    with pytest.raises(DataError, match=r'bvlc_alexnet\.npy.*model\.weights="none"'):
        build("zhang2021_multicnn_2d", num_classes=3, weights=recipe["model"]["weights"], **kwargs)
    with pytest.raises(DataError, match="does not exist"):
        build("zhang2021_dcnn_c1", num_classes=3, weights=str(tmp_path / "missing.npy"), **kwargs)
    from keras_ser.extraction.deep_spectrum import DeepSpectrumExtractor

    with pytest.raises(DataError, match='features.weights="none"'):
        DeepSpectrumExtractor("alexnet_fc7", weights="imagenet")
    with pytest.raises(ParameterError, match="applies to models with an ImageNet backbone"):
        load_recipe("zhao2019_fcn", ["model.weights=none"])


def test_report_names_the_weights_and_compares_random_init_with_the_untrained_figure():
    pretrained = load_recipe("zhang2021_dcnn_blstmwa")
    random_init = load_recipe("zhang2021_dcnn_blstmwa", ["stage1.model_options.weights=none"])
    assert "ImageNet-pretrained" in weights_statement(pretrained)
    assert "NOT pretrained" in weights_statement(random_init)
    assert "the paper fine-tunes ImageNet weights" in weights_statement(random_init)
    # zhao2019's deep spectrum runs the ImageNet CNN as a fixed feature extractor.
    extractor = weights_statement(load_recipe("zhao2019_features_vgg19_fc7", ["features.weights=none"]))
    assert "vgg19 from random initialisation, NOT pretrained" in extractor
    assert "the paper extracts features with ImageNet weights" in extractor
    assert {row["UA"] for row in reported_rows(pretrained)} == {87.86, 68.50}
    assert {row["UA"] for row in reported_rows(random_init)} == {81.31, 64.04}
    # Without a figure for random weights in the paper, the pretrained figures stay (the Weights line warns).
    assert reported_rows(load_recipe("zhang2021_multicnn_2d", ["model.weights=none"]))
    assert weights_statement(load_recipe("zhao2019_features_egemaps")).startswith("Weights: none")
    assert "from scratch" in weights_statement(load_recipe("zhao2018_fcn"))

    from keras_ser.experiments.reports import results_markdown

    results = {"corpus": "emodb", "folds_done": [], "folds_total": 10}
    text = results_markdown(results, random_init, ["anger"])
    assert "- Weights: alexnet from random initialisation, NOT pretrained" in text
    assert "81.31" in text and "87.86" not in text


def test_fau_recipe_uses_zhao2019_table4_class_weights():
    recipe = load_recipe("zhao2019_attention_blstm_fcn_fau")
    assert (recipe["experiment"]["corpus"], recipe["train"]["class_weight"]) == ("fau_aibo", "zhao2019_table4")
    labels = ["anger", "emphatic", "neutral", "positive", "rest"]
    assert class_weight(recipe["train"], labels, labels) == {0: 1.1, 1: 0.5, 2: 0.2, 3: 1.5, 4: 1.4}
    with pytest.raises(ParameterError, match="five FAU-AEC classes"):
        class_weight(recipe["train"], ["anger"], ["anger", "sadness"])


def test_list_prints_recipes_by_paper_and_table_with_the_papers_figures(capsys):
    from keras_ser.train import main

    assert main(["--list"]) == 0
    text = capsys.readouterr().out
    assert text == recipe_listing()
    lines = text.splitlines()
    recipe_lines = [line for line in lines if line.startswith("    ")]
    assert sorted(line.split()[0] for line in recipe_lines) == available_recipes()
    paper = lines.index("zhao2019")
    table = lines.index("  Table 6", paper)
    assert lines[table + 1].split()[0] == "zhao2019_attention_blstm_fcn_mel100"
    assert "WA 65.0 UA 63.4" in lines[table + 1] and "UA 41.0" in lines[table + 1]
    assert any("(without pre-training): UA 81.31" in line for line in recipe_lines)


def test_tzirakis2021_dropout_on_the_fusion_and_one_sequence_length():
    recipe = load_recipe("tzirakis2021_semantic")
    # Sec. 5.1's "10 sec long sequences" of 0.1 s frames, what the front end cuts.
    assert recipe["frontend"]["sequence_frames"] == 100
    assert cached_frontend(recipe["frontend"]).settings["sequence_frames"] == 100
    tiny = dict(units=8, branch_units=4, lstm_units=4, filters=[2, 2, 2])
    for name in ("tzirakis2021_semantic", "tzirakis2021_semantic_concat"):
        assert build(name, **tiny).get_layer("fusion_dropout").rate == 0.5
    assert "fusion_dropout" not in {layer.name for layer in build("tzirakis2021_paralinguistic", **tiny).layers}


def test_multicnn_1d_parameter_count_stated_in_recipe_and_docstring():
    # Pooling stride 5 (kept) against the stated stride 1: both counts are written down.
    text = (RECIPE_DIR / "zhang2021_multicnn_1d.toml").read_text()
    from keras_ser.models.multicnn import zhang2021_cnn1d

    assert build("zhang2021_multicnn_1d", num_classes=7).count_params() == 2_271_367
    assert "2,271,367" in text and "80,390,279" in text
    assert "2,271,367" in zhang2021_cnn1d.__doc__ and "80,390,279" in zhang2021_cnn1d.__doc__


def test_2cnn_lstm_mel_first_reads_the_front_end_layout_as_time_first():
    kwargs = dict(num_frames=12, n_mels=8, filters=(2, 2), lstm_units=3)
    time_first = build("zhang2021_2cnn_lstm", num_classes=3, **kwargs)
    mel_first = build("zhang2021_2cnn_lstm", num_classes=3, mel_first=True, **kwargs)
    mel_first.set_weights(time_first.get_weights())
    x = np.random.default_rng(0).standard_normal((2, 12, 8, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(mel_first(x.transpose(0, 2, 1, 3))), np.asarray(time_first(x)), atol=1e-6)
