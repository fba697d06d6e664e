"""Packaging: saved models load after a plain ``import keras_ser`` (in fresh processes); the
command lines; the declared dependencies."""

import argparse
import importlib
import json
import os
import pathlib
import pkgutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_ser
from keras_ser.frontend import FrontEnd
from keras_ser.layers import AttentionPooling, FoldSegments, UnfoldSegments

ROOT = pathlib.Path(keras_ser.__file__).parent.parent

LOAD = """
import json, sys
import numpy as np
{imports}
import keras
model = keras.models.load_model(sys.argv[1])
np.save(sys.argv[2], model.predict(np.load(sys.argv[3]), verbose=0))
names = sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_ser>"))
print(json.dumps(names))
"""


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A ``.keras`` file of a model made of keras_ser layers, an input and its output."""
    folder = tmp_path_factory.mktemp("model")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2, 4000))
    segments = FoldSegments()(inputs)                           # [b * 2, 4000]
    features = FrontEnd("zhao2019", num_frames=24)(segments)      # [b * 2, 24, 40]
    pooled = AttentionPooling()(features)                         # [b * 2, 40]
    per_clip = keras.ops.mean(UnfoldSegments()([pooled, inputs]), axis=1)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(per_clip))
    x = np.random.default_rng(0).normal(scale=0.1, size=(2, 2, 4000)).astype("float32")
    model.save(folder / "model.keras")
    np.save(folder / "x.npy", x)
    return folder, model.predict(x, verbose=0)


def _all_custom_object_names():
    """Names registered once every keras_ser module is imported (in this process)."""
    for module in pkgutil.walk_packages(keras_ser.__path__, "keras_ser."):
        importlib.import_module(module.name)
    return {name for name in keras.saving.get_custom_objects() if name.startswith("keras_ser>")}


@pytest.mark.parametrize("imports", [
    "import keras_ser",                                    # registered right after `import keras`
    "import tensorflow\nimport keras_ser",                 # Keras already loaded: registered at once
    "import keras_ser.data\nimport keras_ser.audio\nfrom keras_ser.frontend import dataset",  # Keras loaded by keras_ser
])
def test_plain_import_loads_saved_models_in_a_fresh_process(saved_model, tmp_path, imports):
    folder, expected = saved_model
    out = tmp_path / "y.npy"
    result = subprocess.run(
        [sys.executable, "-c", LOAD.format(imports=imports), str(folder / "model.keras"), str(out),
         str(folder / "x.npy")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-5, atol=1e-6)
    registered = set(json.loads(result.stdout.strip().splitlines()[-1]))
    missing = _all_custom_object_names() - registered
    assert not missing, f"not registered by `{imports}`: {sorted(missing)}"
    assert {"keras_ser>ConcordanceCorrelation", "keras_ser>ccc_loss"} <= registered


# --- command lines -------------------------------------------------------------------------

COMMANDS = ("train", "predict", "export", "extract")


@pytest.mark.parametrize("module", [f"keras_ser.{command}" for command in COMMANDS] + ["keras_ser"])
def test_every_command_prints_its_version(module):
    result = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"keras_ser {keras_ser.__version__}"


def test_keras_ser_console_script_runs_the_commands():
    script = pathlib.Path(sys.executable).parent / "keras-ser"
    assert script.is_file(), f"{script} missing: reinstall with pip install --no-deps -e ."
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"keras_ser {keras_ser.__version__}", version.stderr
    # A subcommand gets its own parser: the export command's arguments, and its exit status 2.
    usage = subprocess.run([str(script), "export"], capture_output=True, text=True)
    assert usage.returncode == 2 and "python -m keras_ser.export" in usage.stderr and "out_dir" in usage.stderr


def test_commands_do_not_import_tensorflow_before_configuring_its_logging():
    # Each main() parses its arguments and calls _cli.configure first (checked below), so
    # TensorFlow, which reads TF_CPP_MIN_LOG_LEVEL once when imported, sees the setting.
    code = ("import sys\nfrom keras_ser import train, predict, export, extract, _cli\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('tensorflow', 'keras.')))")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("command, argv", [
    ("train", ["--recipe", "zhao2018_attention_blstm_fcn"]),
    ("predict", ["runs/none", "a.wav"]),
    ("export", ["runs/none", "out"]),
    ("extract", ["--features", "logmel", "--input", "emodb", "--out", "x.csv"]),
])
def test_main_configures_logging_right_after_parsing(monkeypatch, command, argv):
    from keras_ser import _cli

    class Configured(Exception):
        pass

    def configure(args):
        raise Configured(args)

    monkeypatch.setattr(_cli, "configure", configure)
    module = importlib.import_module(f"keras_ser.{command}")
    with pytest.raises(Configured) as info:
        module.main(argv + ["--quiet"])
    args = info.value.args[0]
    assert args.quiet and not args.verbose


@pytest.mark.parametrize("user_level, verbose, expected", [
    (None, False, "3"),     # quiet by default
    ("1", False, "1"),      # the user's own setting is kept
    ("2", True, "0"),       # --verbose shows everything
    (None, True, "0"),
])
def test_tensorflow_log_level(monkeypatch, user_level, verbose, expected):
    from keras_ser import _cli

    if user_level is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", user_level)
    args = _cli.add_common_arguments(argparse.ArgumentParser()).parse_args(["--verbose"] if verbose else [])
    _cli.configure(args)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == expected


def test_quiet_default_leaves_standard_error_empty(tmp_path):
    # TensorFlow imported and run (a tf.data map) by a command's configure(), no flag given.
    code = ("import argparse, keras_ser._cli as cli\n"
            "cli.configure(cli.add_common_arguments(argparse.ArgumentParser()).parse_args([]))\n"
            "import tensorflow as tf\n"
            "print(sum(tf.data.Dataset.range(4).map(lambda x: 2 * x, num_parallel_calls=2).as_numpy_iterator()))")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.split() == ["12"], result.stderr
    assert result.stderr == ""


class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


def test_keras_progress_bars_only_on_a_terminal(monkeypatch):
    from keras_ser import _cli

    parser = _cli.add_common_arguments(argparse.ArgumentParser())
    plain, quiet = parser.parse_args([]), parser.parse_args(["--quiet"])
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert _cli.interactive(plain, _Stream(True))
    assert not _cli.interactive(plain, _Stream(False))        # a log file or a pipe
    assert not _cli.interactive(quiet, _Stream(True))
    monkeypatch.setattr(sys, "stdout", _Stream(True))
    keras.config.disable_interactive_logging()
    try:
        with _cli.keras_output(plain):
            assert keras.config.is_interactive_logging_enabled()
        assert not keras.config.is_interactive_logging_enabled()     # restored
        keras.config.enable_interactive_logging()
        with _cli.keras_output(quiet):
            assert not keras.config.is_interactive_logging_enabled()
        assert keras.config.is_interactive_logging_enabled()
    finally:
        keras.config.enable_interactive_logging()


# --- declared dependencies -----------------------------------------------------------------

#: Declared at run time without a keras_ser import: the TensorBoard callback of every training
#: run imports it (setup.cfg says so).
RUNTIME_WITHOUT_IMPORT = {"tensorboard"}

#: requirements.txt pins the CPU build in place of setup.cfg's ``tensorflow``.
SAME_DISTRIBUTION = {"tensorflow-cpu": "tensorflow"}


def _canonical(name):
    from packaging.utils import canonicalize_name

    name = canonicalize_name(name)
    return SAME_DISTRIBUTION.get(name, name)


def _setup_cfg():
    import configparser

    from packaging.requirements import Requirement

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")

    def names(value):
        return {_canonical(Requirement(line).name) for line in value.splitlines() if line.strip()}

    extras = {extra: names(value) for extra, value in config["options.extras_require"].items()}
    return config, names(config["options"]["install_requires"]), extras


def _third_party_imports():
    """Distributions keras_ser imports: (at module level, inside functions), read with ``ast``."""
    import ast
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    module_level, in_functions, unknown = set(), set(), set()
    for path in (ROOT / "keras_ser").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                name = module.split(".")[0]
                if name in sys.stdlib_module_names or name == "keras_ser":
                    continue
                if name not in owners:
                    unknown.add(f"{name} ({path.name})")
                    continue
                for distribution in owners[name]:
                    (module_level if id(node) in top else in_functions).add(_canonical(distribution))
    assert not unknown, f"imported but not installed: {sorted(unknown)}"
    return module_level, in_functions


def test_setup_cfg_declares_what_keras_ser_imports():
    config, required, extras = _setup_cfg()
    module_level, in_functions = _third_party_imports()
    assert module_level <= required, f"imported on import, not in install_requires: {module_level - required}"
    optional = set().union(*(extras[name] for name in ("opensmile", "semantic")))
    assert in_functions <= required | optional, f"imported, not declared: {in_functions - required - optional}"
    assert required - module_level - in_functions == RUNTIME_WITHOUT_IMPORT, "declared, never imported"
    assert {"tensorflow"} <= extras["cuda"] and {"pytest", "librosa", "scipy"} <= extras["test"]
    assert config["options"]["python_requires"] == ">=3.11"     # tomllib, and the pinned numpy/scipy/keras


def test_requirements_txt_pins_everything_the_tests_need():
    from packaging.requirements import Requirement

    _, required, extras = _setup_cfg()
    pinned = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            pinned[_canonical(requirement.name)] = str(requirement.specifier)
    # .ci/run installs keras_ser with --no-deps on top of requirements.txt, so nothing may be missing.
    needed = required | extras["test"] | extras["opensmile"] | extras["semantic"]
    assert needed <= set(pinned), f"not in requirements.txt: {needed - set(pinned)}"
    assert all(spec.startswith("==") for spec in pinned.values()), pinned
    assert "--no-deps -e ." in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_readme_quick_start_test_command_verbatim():
    import re

    blocks = re.findall(r"```bash\n(.*?)\n\s*```", (ROOT / "README.md").read_text(), re.S)
    commands = [b.strip() for b in blocks if "python -m pytest" in b and "python3 -m venv" in b]
    assert len(commands) == 1, commands
    assert commands[0] in (ROOT / ".ci" / "run").read_text().splitlines()
    # -qq: the pip configuration of some machines logs a warning per missing local index entry.
    assert "pip install -qq" in commands[0]


def test_readme_states_the_python_that_setup_cfg_requires():
    import re

    stated = set(re.findall(r"Python >= ?(3\.\d+)", (ROOT / "README.md").read_text()))
    assert stated == {"3.11"}, stated


def test_ci_runs_the_readme_test_command_verbatim():
    import re

    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^ *(python3 -m venv .venv && .*pytest.*)$", readme, flags=re.M)
    assert len(commands) == 1, commands
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[0].strip() in [line.strip() for line in ci]
