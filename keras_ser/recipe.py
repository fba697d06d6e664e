"""Recipes: one small TOML file per paper system and ablation row.

A recipe names the front end, the model, the optimiser, class weighting,
augmentation, the evaluation protocol and what the paper itself reported for
that row. Files live in ``keras_ser/recipes/<name>.toml``; a recipe may start
from another with ``[recipe] extends = "<name>"`` (tables are merged key by key,
the child wins), which keeps an ablation row to a few lines.

Sections and keys (``*`` = free-form table passed on as keyword arguments):

``[recipe]``      ``name``, ``paper``, ``description``, ``extends``
``[experiment]``  ``kind`` (``"neural"``, ``"two_stage"``, ``"features_svm"``,
                  ``"fusion"``), ``corpus``, ``protocol``, ``seed``, ``pooling``
                  (``"none"`` or ``"mean_segments"``: zhang2021_multicnn's segment-to-utterance
                  score averaging), ``protocol_options`` (*, for ``make_folds``),
                  ``test_corpus`` and ``label_map`` (cross-corpus evaluation: one fold, all
                  of ``corpus`` against all of ``test_corpus``, see :mod:`keras_ser.data.cross_corpus`),
                  ``save_models`` (write each fold's model directory),
                  ``save_features`` (write each fold's embeddings.npz: the "embedding"
                  layer or pooled final-FC features, for zhao2019's SVM row and zhang2021_multicnn's fusion),
                  ``repeats`` (networks trained per fold with different seeds, their
                  scores averaged: zhang2021_dcnn Sec. 3.2 "we test three times and take
                  the average"; see :func:`recipe_repeats`), ``checkpoint_minutes``
                  (how often a fit saves the state an interrupted fold resumes from,
                  :mod:`keras_ser.experiments.checkpoints`)
``[frontend]``    ``preset`` + * (``keras_ser.frontend.FrontEnd`` arguments; ``max_seconds``
                  caps each waveform to its first seconds, in training, ``predict`` and
                  the exported model: see :mod:`keras_ser.frontend.layers`, "Length cap")
``[model]``       ``name`` + * (``keras_ser.models.build`` overrides)
``[train]``       optimiser and fit settings, see :data:`TRAIN_KEYS`
``[stage1]``      two-stage recipes (zhang2021_dcnn): the first network, same keys as
                  ``[train]`` plus ``model`` (name) and ``model_options`` (*)
``[encoder]``     two-stage recipes: how the stage-2 network is trained, see
                  :data:`ENCODER_KEYS`; without it the whole network is trained at once
                  with ``[train]``
``[fusion]``      ``members`` (recipe names), ``level``, ``tune_on``, ``step``,
                  ``svm_c``
``[semantic]``    tzirakis2021's word-vector input, fitted per fold: ``vectors``
                  (``"aligned_speech2vec"``, ``"speech2vec"``, ``"word2vec"``: Table 2's
                  inputs), ``alignment``, ``word2vec`` / ``speech2vec`` /
                  ``alignment_options`` (*), see :data:`SEMANTIC_KEYS`
``[features]``, ``[svm]``  * (``keras_ser.svm.run_fold``)
``[paper]``       ``corpus``, ``protocol``, ``note`` and ``[[paper.reported]]``
                  rows (``table``, ``corpus``, ``protocol`` and numbers such as
                  ``WA``, ``UA``, ``accuracy``), shown beside ours in results.md

Command-line overrides are ``key=value`` with a dotted key (``train.epochs=2``,
``model.units=4``); a bare key (``epochs=2``) is accepted when exactly one
section holds it. Values are parsed as TOML (``1e-3``, ``true``, ``[0.9, 1.1]``,
``"x"``) and fall back to a plain string (``corpus=emodb``). A fusion recipe
passes its overrides on to every member; ``MEMBER:key=value``
(``zhang2021_multicnn_2d:model.filters=[8, 8, 8, 8, 8]``) goes to that member only,
for settings that exist in one member's model or front end and not the others'.

Example
-------
>>> from keras_ser.recipe import load_recipe
>>> r = load_recipe("zhao2019_attention_blstm_fcn", ["epochs=1", "train.batch_size=8"])
>>> r["train"]["epochs"], r["train"]["batch_size"], r["experiment"]["protocol"]
(1, 8, 'loso')

One module on purpose: the recipe format is one thing (schema, reader, ``extends``,
overrides, validation, listing), and its schema table is most of its length.
"""

import copy
import difflib
import pathlib
import tomllib

from keras_ser.errors import ParameterError

RECIPE_DIR = pathlib.Path(__file__).resolve().parent / "recipes"

KINDS = ("neural", "two_stage", "features_svm", "fusion")
POOLINGS = ("none", "mean_segments")
OPTIMIZERS = ("adam", "nadam", "sgd")
#: ``"zhao2019_table4"``: zhao2019 Table 4's fixed FAU-AEC weights (the five FAU classes only).
CLASS_WEIGHTS = ("none", "inverse_frequency", "zhao2019_table4")
LOSSES = ("sparse_categorical_crossentropy", "ccc")
#: Mirrors keras_ser.experiments.precision.PRECISIONS (recipe.py stays TensorFlow-free).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
FUSION_LEVELS = ("score", "feature", "both")
TUNE_ON = ("validation", "test")

#: ``[train]`` keys, their types and defaults. ``decay`` is Keras 2's legacy
#: per-iteration decay ``lr / (1 + decay * iterations)`` (zhao2019 Sec. IV-B).
TRAIN_KEYS = {
    "optimizer": (str, "adam"),
    "learning_rate": (float, 1e-3),
    "decay": (float, 0.0),
    "momentum": (float, 0.0),
    "beta_1": (float, 0.9),
    "clipnorm": (float, 0.0),
    "batch_size": (int, 32),
    "epochs": (int, 100),
    "class_weight": (str, "none"),
    "loss": (str, "sparse_categorical_crossentropy"),
    "early_stopping": (bool, True),
    "monitor": (str, "val_loss"),
    "patience": (int, 10),
    # Epochs before early stopping may pick a best epoch (keras EarlyStopping's warm-up): with one
    # small validation speaker, val_ua can peak by chance in the first few epochs.
    "start_from_epoch": (int, 0),
    "speed_perturbation": (list, []),
    "verbose": (int, 1),
    # XLA is off by default: on CPU it made the zhao2019 training step 2.9x slower
    # (22.3 s vs 7.8 s at batch 100), compiling the recurrent loops costs more than it saves.
    "jit_compile": (bool, False),
    # keras_ser.experiments.precision: float32 | mixed_bfloat16 | mixed_float16 | auto.
    "precision": (str, "float32"),
}

STAGE1_KEYS = dict(TRAIN_KEYS, model=(str, ""), model_options=(dict, {}))

#: ``[encoder]`` of a two-stage recipe. ``schedule = "separate"``: the stage-2 network up to
#: and including layer ``layer`` (the encoder: zhang2021_dcnn's BLSTM + attention) is trained
#: first, with a softmax of its own on that layer's output and these optimiser settings; then
#: ``[train]`` trains the layers after it (the DNN) with the encoder frozen. ``"joint"``: no
#: encoder phase, ``[train]`` trains the whole stage-2 network (the other settings here are
#: unused). The encoder trains on the same sequences as the DNN, in ``train.precision``
#: with ``train.loss``, so those keys are not repeated here.
ENCODER_KEYS = dict(
    {k: v for k, v in TRAIN_KEYS.items() if k not in ("precision", "loss", "speed_perturbation")},
    schedule=(str, "separate"), layer=(str, "attention"),
)
ENCODER_SCHEDULES = ("separate", "joint")

#: ``[semantic]``: the word-vector input of tzirakis2021's semantic models, fitted per fold on
#: the training speakers (:mod:`keras_ser.experiments.word_vectors`). ``vectors`` picks the
#: Table 2 input; ``word2vec`` and ``speech2vec`` are the options of
#: :func:`keras_ser.semantic.fit_semantic` (``word2vec_options``, ``speech2vec_options``).
SEMANTIC_KEYS = {
    "vectors": (str, "aligned_speech2vec"),
    "alignment": (str, "adversarial"),
    "word2vec": (dict, {}),
    "speech2vec": (dict, {}),
    "alignment_options": (dict, {}),
}
#: Mirror keras_ser.semantic.pipeline.VECTORS and ALIGNMENTS (recipe.py stays TensorFlow-free).
SEMANTIC_VECTORS = ("aligned_speech2vec", "speech2vec", "word2vec")
SEMANTIC_ALIGNMENTS = ("adversarial", "procrustes_shared_vocabulary")

SCHEMA = {
    "recipe": {
        "name": (str, ""),
        "paper": (str, ""),
        "description": (str, ""),
        "extends": (str, ""),
    },
    "experiment": {
        "kind": (str, "neural"),
        "corpus": (str, "emodb"),
        "protocol": (str, "loso"),
        "protocol_options": (dict, {}),
        "seed": (int, 42),
        "pooling": (str, "none"),
        "save_models": (bool, True),
        "save_features": (bool, False),
        # Cross-corpus evaluation (keras_ser.data.cross_corpus): train on all of `corpus`, test on all
        # of `test_corpus`; label_map sends its other labels to training classes ("" drops them).
        "test_corpus": (str, ""),
        "label_map": (dict, {}),
        "repeats": (int, 1),
        # keras_ser.experiments.checkpoints: a network's fit saves its state at the end of an
        # epoch once this many minutes have passed since its last save (0: every epoch), and a
        # rerun of the fold goes on from it. It changes when state is saved, not what is computed.
        "checkpoint_minutes": (float, 10.0),
    },
    "train": TRAIN_KEYS,
    "stage1": STAGE1_KEYS,
    "encoder": ENCODER_KEYS,
    "fusion": {
        "members": (list, []),
        "level": (str, "both"),
        "tune_on": (str, "validation"),
        "step": (float, 0.1),
        "svm_c": (float, 1.0),
    },
    "semantic": SEMANTIC_KEYS,
    "paper": {
        "corpus": (str, ""),
        "protocol": (str, ""),
        "note": (str, ""),
        "reported": (list, []),
    },
}

#: Registered models with an ImageNet backbone -> that backbone. Their recipes take
#: ``[model] weights = "imagenet" | PATH | "none"`` (``[stage1] model_options.weights`` in a
#: two-stage recipe), ``"imagenet"`` (the papers' choice) when absent; the builders take the
#: same ``weights`` argument (tests/test_recipes_all.py checks this list against them).
IMAGENET_MODELS = {
    "zhang2021_multicnn_2d": "alexnet",
    "zhang2021_multicnn_2d_vgg16": "vgg16",
    "zhang2021_multicnn_2d_resnet50": "resnet50",
    "zhang2021_alexnet": "alexnet",
    "zhang2021_dcnn": "alexnet",
    "zhang2021_dcnn_c1": "alexnet",
    "zhang2021_dcnn_c2": "alexnet",
}
#: ``[features] name`` values computed by an ImageNet CNN; ``[features] weights`` as above.
IMAGENET_FEATURES = {"alexnet_fc7": "alexnet", "vgg16_fc7": "vgg16", "vgg19_fc7": "vgg19"}

#: Sections whose keys are passed through unchecked (builder kwargs, SVM options).
FREE_SECTIONS = ("frontend", "model", "features", "svm")

#: Sections every resolved recipe has, filled from :data:`SCHEMA` defaults.
_ALWAYS = ("recipe", "experiment", "train", "paper")


def available_recipes():
    """Sorted names of the recipes shipped in ``keras_ser/recipes``."""
    return sorted(path.stem for path in RECIPE_DIR.glob("*.toml"))


def recipe_path(name_or_path):
    """The TOML file of a recipe given by name or by path."""
    text = str(name_or_path)
    path = pathlib.Path(text).expanduser()
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ParameterError(f"recipe file {path} does not exist")
        return path
    path = RECIPE_DIR / f"{text}.toml"
    if not path.is_file():
        close = difflib.get_close_matches(text, available_recipes(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ParameterError(
            f"unknown recipe {text!r}{hint} (available: {', '.join(available_recipes())})"
        )
    return path


def _read(path):
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ParameterError(f"recipe {path} is not valid TOML: {error}") from None


def _merge(base, child):
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _raw_recipe(name_or_path, seen=()):
    path = recipe_path(name_or_path)
    raw = _read(path)
    own_name = raw.get("recipe", {}).get("name", path.stem)
    parent = raw.get("recipe", {}).get("extends")
    if parent:
        if parent in seen:
            raise ParameterError(f"recipe {path}: circular 'extends' through {parent!r}")
        base = _raw_recipe(parent, seen + (parent,))
        # [paper] describes one row; a child never inherits its parent's numbers.
        base.pop("paper", None)
        raw = _merge(base, raw)
    raw.setdefault("recipe", {})["name"] = own_name
    return raw


def parse_value(text):
    """A ``key=value`` override's value, typed by TOML rules, else a string.

    Example
    -------
    >>> parse_value("1e-3"), parse_value("true"), parse_value("[0.9, 1.1]"), parse_value("emodb")
    (0.001, True, [0.9, 1.1], 'emodb')
    """
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items):
    """``["train.epochs=2", "lr=..."]`` -> ``[(key, value), ...]`` in order."""
    parsed = []
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"override {item!r} is not of the form key=value")
        parsed.append((key, parse_value(value.strip())))
    return parsed


def split_member_key(key):
    """``"MEMBER:section.key"`` -> ``("MEMBER", "section.key")``; ``(None, key)`` when unscoped."""
    member, sep, rest = str(key).partition(":")
    return (member.strip(), rest.strip()) if sep else (None, key)


def member_overrides(overrides, member):
    """The ``key=value`` items a fusion run passes to ``member``: unscoped ones and ``member:`` ones.

    Example
    -------
    >>> member_overrides(["epochs=1", "a:model.x=2", "b:model.x=3"], "a")
    ['epochs=1', 'model.x=2']
    """
    chosen = []
    for item in overrides:
        key, sep, value = str(item).partition("=")
        scope, rest = split_member_key(key)
        if scope is None:
            chosen.append(str(item))
        elif scope == member:
            chosen.append(f"{rest}{sep}{value}")
    return chosen


def _resolve_key(recipe, key):
    if "." in key:
        section, _, rest = key.partition(".")
        if section not in SCHEMA and section not in FREE_SECTIONS:
            raise ParameterError(
                f"override {key!r}: unknown section {section!r} "
                f"(sections: {', '.join(sorted(set(SCHEMA) | set(FREE_SECTIONS)))})"
            )
        return [section] + rest.split(".")
    holders = sorted(
        section
        for section, table in recipe.items()
        # [recipe] and [paper] describe the row; they are never the target of a bare key.
        if section not in ("recipe", "paper") and isinstance(table, dict) and key in table
    )
    if len(holders) == 1:
        return [holders[0], key]
    if not holders:
        raise ParameterError(
            f"override {key!r}: no section of this recipe has that key; "
            f"write it as section.{key} (e.g. model.{key})"
        )
    raise ParameterError(f"override {key!r} is ambiguous (in {holders}); write section.{key}")


def apply_overrides(recipe, overrides):
    """Return a copy of ``recipe`` with ``key=value`` overrides applied and validated.

    Parameters
    ----------
    recipe : dict
        A resolved recipe (see :func:`load_recipe`).
    overrides : sequence of str or of (key, value)

    Returns
    -------
    dict
    """
    recipe = copy.deepcopy(recipe)
    pairs = [
        item if isinstance(item, tuple) else parse_overrides([item])[0] for item in overrides
    ]
    scoped = [key for key, _ in pairs if split_member_key(key)[0] is not None]
    for key, value in pairs:
        if key in scoped:
            # Applied to that member by keras_ser.experiments.fusion, checked below.
            continue
        parts = _resolve_key(recipe, key)
        table = recipe
        for part in parts[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ParameterError(f"override {key!r}: {part!r} is not a table")
        table[parts[-1]] = value
    recipe = validate(recipe)
    for key in scoped:
        member = split_member_key(key)[0]
        if recipe["experiment"]["kind"] != "fusion":
            raise ParameterError(f"override {key!r} names a fusion member, but this is not a fusion recipe")
        if member not in recipe["fusion"]["members"]:
            raise ParameterError(
                f"override {key!r}: {member!r} is not a member of this fusion "
                f"(members: {', '.join(recipe['fusion']['members'])})"
            )
    return recipe


def _check_type(section, key, value, expected):
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool):
        raise ParameterError(f"[{section}] {key} must be an integer, got {value!r}")
    if not isinstance(value, expected):
        raise ParameterError(
            f"[{section}] {key} must be {expected.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _check_choice(section, key, value, choices):
    if value not in choices:
        raise ParameterError(f"[{section}] {key} must be one of {choices}, got {value!r}")


def _check_training(section, table):
    _check_choice(section, "optimizer", table["optimizer"], OPTIMIZERS)
    _check_choice(section, "class_weight", table["class_weight"], CLASS_WEIGHTS)
    # [encoder] takes its loss and precision from [train].
    if "loss" in table:
        _check_choice(section, "loss", table["loss"], LOSSES)
    if "precision" in table:
        _check_choice(section, "precision", table["precision"], PRECISIONS)
    for key in ("learning_rate", "batch_size", "epochs"):
        if table[key] <= 0:
            raise ParameterError(f"[{section}] {key} must be > 0, got {table[key]!r}")
    for key in ("decay", "momentum", "clipnorm", "patience", "start_from_epoch"):
        if table[key] < 0:
            raise ParameterError(f"[{section}] {key} must be >= 0, got {table[key]!r}")
    factors = table.get("speed_perturbation", [])
    if any(isinstance(f, bool) or not isinstance(f, (int, float)) or f <= 0 for f in factors):
        raise ParameterError(
            f"[{section}] speed_perturbation must list positive factors, got {factors!r}"
        )


def validate(recipe):
    """Fill defaults and check every known key; return the resolved recipe.

    Raises
    ------
    ParameterError
        For an unknown section or key, a wrong type or a value out of range; the
        message names the section and key.
    """
    recipe = copy.deepcopy(recipe)
    _check_repeats(recipe.get("experiment"))
    unknown = set(recipe) - set(SCHEMA) - set(FREE_SECTIONS)
    if unknown:
        raise ParameterError(
            f"unknown recipe section(s) {sorted(unknown)}; "
            f"known: {sorted(set(SCHEMA) | set(FREE_SECTIONS))}"
        )
    for section in FREE_SECTIONS:
        if section in recipe and not isinstance(recipe[section], dict):
            raise ParameterError(f"[{section}] must be a table")
    for section, keys in SCHEMA.items():
        if section not in recipe and section not in _ALWAYS:
            continue
        table = recipe.setdefault(section, {})
        if not isinstance(table, dict):
            raise ParameterError(f"[{section}] must be a table")
        extra = set(table) - set(keys)
        if extra:
            close = {k: difflib.get_close_matches(k, keys, n=1) for k in extra}
            hints = "; ".join(f"{k!r} (did you mean {v[0]!r}?)" if v else repr(k) for k, v in close.items())
            raise ParameterError(f"unknown key(s) in [{section}]: {hints}")
        for key, (expected, default) in keys.items():
            if key in table:
                table[key] = _check_type(section, key, table[key], expected)
            else:
                table[key] = copy.deepcopy(default)

    experiment = recipe["experiment"]
    _check_choice("experiment", "kind", experiment["kind"], KINDS)
    _check_choice("experiment", "pooling", experiment["pooling"], POOLINGS)
    _check_training("train", recipe["train"])
    kind = experiment["kind"]
    if kind in ("neural", "two_stage"):
        if not recipe.get("model", {}).get("name"):
            raise ParameterError(f"a {kind!r} recipe needs [model] name")
        if "preset" not in recipe.get("frontend", {}):
            raise ParameterError(f"a {kind!r} recipe needs [frontend] preset")
    if kind == "two_stage":
        if "stage1" not in recipe or not recipe["stage1"]["model"]:
            raise ParameterError("a 'two_stage' recipe needs [stage1] model")
        _check_training("stage1", recipe["stage1"])
    if "encoder" in recipe:
        if kind != "two_stage":
            raise ParameterError(f"[encoder] trains the stage-2 network of a 'two_stage' recipe; this one is {kind!r}")
        _check_choice("encoder", "schedule", recipe["encoder"]["schedule"], ENCODER_SCHEDULES)
        _check_training("encoder", recipe["encoder"])
        if not recipe["encoder"]["layer"]:
            raise ParameterError("[encoder] layer must name the stage-2 layer whose output the encoder ends with")
    if "semantic" in recipe:
        if kind != "neural":
            raise ParameterError(f"[semantic] feeds word vectors to a 'neural' recipe's model; this one is {kind!r}")
        _check_choice("semantic", "vectors", recipe["semantic"]["vectors"], SEMANTIC_VECTORS)
        _check_choice("semantic", "alignment", recipe["semantic"]["alignment"], SEMANTIC_ALIGNMENTS)
    if not experiment["checkpoint_minutes"] >= 0:
        raise ParameterError(f"experiment.checkpoint_minutes must be >= 0 (0 saves a fit's state after every "
                             f"epoch), got {experiment['checkpoint_minutes']!r}")
    if experiment["repeats"] > 1 and kind not in ("neural", "two_stage"):
        raise ParameterError(f"experiment.repeats={experiment['repeats']} repeats the training of a network; "
                             f"a {kind!r} recipe trains none (use 1)")
    if kind == "features_svm" and not recipe.get("features", {}).get("name"):
        raise ParameterError("a 'features_svm' recipe needs [features] name")
    if kind == "fusion":
        fusion = recipe.get("fusion")
        if not fusion or len(fusion["members"]) < 2:
            raise ParameterError("a 'fusion' recipe needs [fusion] members = [two or more recipes]")
        _check_choice("fusion", "level", fusion["level"], FUSION_LEVELS)
        _check_choice("fusion", "tune_on", fusion["tune_on"], TUNE_ON)
        if not 0 < fusion["step"] <= 1 or abs(round(1 / fusion["step"]) * fusion["step"] - 1) > 1e-9:
            raise ParameterError(f"[fusion] step must divide 1, got {fusion['step']!r}")
    for row in recipe["paper"]["reported"]:
        if not isinstance(row, dict) or "table" not in row:
            raise ParameterError("every [[paper.reported]] row needs a 'table' reference")
        if row.get("weights", "imagenet") not in ("imagenet", "none"):
            raise ParameterError(f"[[paper.reported]] {row['table']!r}: weights must be 'imagenet' or 'none'")
    _check_weights(recipe)
    return recipe


def _check_repeats(experiment):
    """``experiment.repeats`` must be a whole number >= 1 (checked before the generic type check, to name it)."""
    if not isinstance(experiment, dict) or "repeats" not in experiment:
        return
    value = experiment["repeats"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"experiment.repeats must be a whole number >= 1 (networks trained per fold), "
                             f"got {value!r}")


def recipe_repeats(recipe):
    """How many networks a resolved recipe trains per fold (``experiment.repeats``).

    A recipe recorded in a ``config.json`` before the setting existed has no ``repeats``:
    it trained one network per fold (and such runs resume, see
    :func:`keras_ser.experiments.resume.config_differences`).

    Example
    -------
    >>> recipe_repeats(load_recipe("zhao2018_attention_blstm_fcn"))
    1
    >>> recipe_repeats(load_recipe("zhang2021_dcnn_blstmwa"))
    3
    """
    return recipe["experiment"].get("repeats", 1)


def _weights_table(recipe):
    """``(setting name, table holding weights, backbone)`` of a recipe's ImageNet CNN, or None."""
    kind = recipe["experiment"]["kind"]
    if kind == "neural" and recipe["model"]["name"] in IMAGENET_MODELS:
        return "model.weights", recipe["model"], IMAGENET_MODELS[recipe["model"]["name"]]
    if kind == "two_stage" and recipe["stage1"]["model"] in IMAGENET_MODELS:
        return ("stage1.model_options.weights", recipe["stage1"]["model_options"],
                IMAGENET_MODELS[recipe["stage1"]["model"]])
    if kind == "features_svm" and recipe["features"]["name"] in IMAGENET_FEATURES:
        return "features.weights", recipe["features"], IMAGENET_FEATURES[recipe["features"]["name"]]
    return None


def _check_weights(recipe):
    found = _weights_table(recipe)
    if found is None:
        if "weights" in recipe.get("model", {}):
            raise ParameterError(
                f"model.weights applies to models with an ImageNet backbone ({', '.join(sorted(IMAGENET_MODELS))}); "
                f"{recipe['model']['name']!r} has none"
            )
        return
    setting, table, _ = found
    table.setdefault("weights", "imagenet")
    if not isinstance(table["weights"], str) or not table["weights"]:
        raise ParameterError(f"{setting} must be \"imagenet\", a path or \"none\", got {table['weights']!r}")


def recipe_weights(recipe):
    """``(setting, value, backbone)`` of a resolved recipe's ImageNet CNN weights, or None.

    Example
    -------
    >>> recipe_weights(load_recipe("zhang2021_multicnn_2d"))
    ('model.weights', 'imagenet', 'alexnet')
    """
    found = _weights_table(recipe)
    # A run recorded before the weights setting existed was built with random weights.
    return None if found is None else (found[0], found[1].get("weights", "none"), found[2])


def weights_statement(recipe):
    """The "Weights: ..." line of a run report: what the network started from.

    Example
    -------
    >>> weights_statement(load_recipe("zhang2021_dcnn_blstmwa", ["stage1.model_options.weights=none"]))[:61]
    'Weights: alexnet from random initialisation, NOT pretrained ('
    """
    found = recipe_weights(recipe)
    kind = recipe["experiment"]["kind"]
    if found is not None:
        setting, value, backbone = found
        if value == "none":
            # A features_svm recipe runs the CNN as a fixed extractor (zhao2019's deep spectrum).
            used = "extracts features with" if kind == "features_svm" else "fine-tunes"
            return (f"Weights: {backbone} from random initialisation, NOT pretrained ({setting} = \"none\"; "
                    f"the paper {used} ImageNet weights)")
        if value == "imagenet":
            return f"Weights: {backbone} ImageNet-pretrained ({setting} = \"imagenet\", the paper's setting)"
        return f"Weights: {backbone} from {value} ({setting})"
    if kind == "fusion":
        return "Weights: those of each member recipe (see the member reports under members/)"
    if kind == "features_svm":
        name = recipe["features"]["name"]
        if name.startswith("embedding:"):
            return f"Weights: the trained networks of {name.partition(':')[2]} (one per fold)"
        return f"Weights: none ({name} features have no trained network; the SVM is trained per fold)"
    return "Weights: random initialisation (the paper trains this network from scratch, no pretrained part)"


def reported_rows(recipe):
    """The ``[[paper.reported]]`` rows comparable with this run's weights.

    A row may say ``weights = "none"`` (the paper's figure without pre-training) or
    ``"imagenet"``. A random-init run is compared with the "none" rows where the paper
    gives them, a pretrained run never with them; untagged rows are always shown.
    """
    rows = recipe["paper"]["reported"]
    found = recipe_weights(recipe)
    random_init = found is not None and found[1] == "none"
    if random_init and any(row.get("weights") == "none" for row in rows):
        return [row for row in rows if row.get("weights") != "imagenet"]
    if not random_init:
        return [row for row in rows if row.get("weights") != "none"]
    return list(rows)


def load_recipe(name_or_path, overrides=()):
    """Load, merge (``extends``), override and validate a recipe.

    Parameters
    ----------
    name_or_path : str or path
        A name from :func:`available_recipes` or a path to a ``.toml`` file.
    overrides : sequence of str
        ``key=value`` items, applied in order (later wins).

    Returns
    -------
    dict
        The resolved recipe, every known key present (``[stage1]`` and ``[encoder]`` only
        when given).

    Raises
    ------
    ParameterError
        Unknown recipe, invalid TOML, unknown key, wrong type or bad value.
    """
    recipe = validate(_raw_recipe(name_or_path))
    if overrides:
        recipe = apply_overrides(recipe, overrides)
    return recipe


_FIGURE_SKIP = ("table", "corpus", "protocol", "note", "weights")


def _paper_key(recipe):
    # A recipe's [recipe] paper field opens with the paper's key: "zhao2019 Zhao, Bao, ...".
    return recipe["recipe"]["paper"].split(" ", 1)[0] or "other"


def _table_key(row):
    """``"Table 5"`` from ``"Table 5, FCNs"`` (``"zhao2019 Table 7"`` too); the whole reference otherwise."""
    words = row["table"].replace(",", " ").replace(";", " ").split()
    for index, word in enumerate(words[:-1]):
        if word == "Table":
            return f"Table {words[index + 1]}"
    return row["table"]


def _figures(row):
    numbers = " ".join(f"{key} {value}" for key, value in row.items() if key not in _FIGURE_SKIP)
    untrained = " (without pre-training)" if row.get("weights") == "none" else ""
    return f"{row.get('corpus', '')}{untrained}: {numbers or 'no figure (' + row.get('note', 'none given') + ')'}"


def recipe_listing(names=None):
    """Text of ``python -m keras_ser.train --list``: recipes grouped by paper and table.

    One line per recipe: its name, the table row of its first ``[[paper.reported]]``
    row and the paper's figures of every row.

    Parameters
    ----------
    names : sequence of str, optional
        Recipes to list (all of :func:`available_recipes` by default).

    Returns
    -------
    str
    """
    groups = {}
    for name in names if names is not None else available_recipes():
        recipe = load_recipe(name)
        rows = recipe["paper"]["reported"]
        table = _table_key(rows[0]) if rows else "no paper figure"
        groups.setdefault(_paper_key(recipe), {}).setdefault(table, []).append((name, recipe, rows))
    width = max(len(name) for tables in groups.values() for entries in tables.values() for name, _, _ in entries)
    lines = []
    for paper in sorted(groups):
        lines.append(paper)
        for table in sorted(groups[paper], key=lambda t: (not t.startswith("Table"), len(t), t)):
            lines.append(f"  {table}")
            for name, recipe, rows in groups[paper][table]:
                row = rows[0]["table"] if rows else ""
                figures = "; ".join(_figures(r) for r in rows)
                lines.append(f"    {name.ljust(width)}  {row} | {figures}")
    return "\n".join(lines) + "\n"
