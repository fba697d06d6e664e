"""The environment a run's numbers were computed in: versions, source commit, machine.

Every call of the runner records :func:`run_environment` in ``config.json`` (a run may be
resumed after an upgrade or on another machine, so the key shows the latest call's).

Imports nothing of this package.
"""

import importlib.metadata
import os
import pathlib
import platform
import subprocess


def _version(*distributions):
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _git_commit(directory):
    try:
        done = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model(cpuinfo="/proc/cpuinfo"):
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def run_environment(gpus=()):
    """What a run's numbers depend on besides its recipe: versions, source commit, machine.

    Parameters
    ----------
    gpus : sequence of str
        Names of the GPUs TensorFlow sees (the caller has TensorFlow imported; this module does not).

    Returns
    -------
    dict
        ``keras_ser``, ``tensorflow``, ``keras``, ``numpy`` and ``python`` versions, the git
        commit of the keras_ser checkout (None outside one), and the machine (architecture,
        CPU model, CPU count, GPUs).

    Examples
    --------
    >>> sorted(run_environment())
    ['git_commit', 'keras', 'keras_ser', 'machine', 'numpy', 'python', 'tensorflow']
    """
    return {
        "keras_ser": _version("keras_ser", "keras-ser"),
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
        "git_commit": _git_commit(pathlib.Path(__file__).resolve().parents[2]),
        "machine": {"architecture": platform.machine(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
                    "gpus": list(gpus)},
    }
