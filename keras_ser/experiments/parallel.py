"""Fold-parallel training: several folds of a run trained at once, each in a worker process on its own cores.

On a CPU, the small networks of these papers do not keep every core busy: a training step is
a long chain of small operations, and a second thread shortens few of them. Measured on this
project's 2-core machine (float32, same batch): zhang2021_multicnn's 1D CNN takes 29 ms a step
on two cores and 31 ms on one, zhao2019's attention-LSTM ablation 389 ms on two and 602 ms on
one. Two folds at once, one per core, therefore train about 1.9 and 1.3 times as many steps an
hour as one fold on both cores (``benchmarks/fold_parallel.py`` measures it on any machine).
The large convolutional networks (AlexNet, the zhang2021_dcnn stage 1) already use both cores
well and gain little.

``python -m keras_ser.train --jobs N`` (:func:`keras_ser.experiments.runner.run_experiment`'s
``jobs``) splits the cores this process may use into N groups and starts N worker processes.
The parent keeps everything that concerns the run as a whole: its lock, ``config.json``,
the fold status, the ``results/`` mirror and the reports. It hands each unfinished fold to
the next free worker and mirrors it the moment it ends, so an interrupted parallel run
resumes like a sequential one. A worker is started with ``spawn`` (it shares no TensorFlow
state with the parent), is pinned to its cores, sets TensorFlow's thread pools to their
number, builds its own front end and feature cache, and runs the fold through
:func:`keras_ser.experiments.runner.run_fold`: the same code and the same per-fold seeds as
the sequential loop.

A fold's result does not depend on which worker trained it, or when. It can depend, in the
last bits, on the number of cores it trained on, as it would on another machine: TensorFlow
splits the sums of convolution gradients between its threads. After three training steps
from the same seed on one core and on two, the largest weight difference was 0 for
zhao2019's attention-LSTM, 6e-8 for zhang2021_multicnn's 1D CNN and 1e-3 for zhao2019's FCN.
Each fold's ``metrics.json`` records its ``cpu_threads``. tests/test_experiments_parallel.py
checks that a parallel run of a dense network reproduces every prediction of the sequential run.

Networks and experiment trackers registered in the parent process
(:func:`keras_ser.models.registry.register`,
:func:`keras_ser.experiments.training.register_callback_factory`) are registered again in
each worker; they must therefore be importable functions, not lambdas or closures.
"""

import multiprocessing
import os

from keras_ser.errors import ParameterError

#: What a worker process keeps between folds: the run's recipe, labels, front end, feature cache and strategy.
_WORKER = {}


def core_groups(jobs, cores=None):
    """Split CPU cores into ``jobs`` groups of consecutive cores, as equal in size as they can be.

    Parameters
    ----------
    jobs : int
        Number of groups (worker processes), at least 1.
    cores : iterable of int, optional
        Core ids; default the cores this process may run on (``os.sched_getaffinity(0)``).

    Returns
    -------
    list of list of int

    Raises
    ------
    ParameterError
        ``jobs`` is not a whole number of at least 1, or exceeds the number of cores.

    Examples
    --------
    >>> core_groups(2, cores=range(5))
    [[0, 1], [2, 3, 4]]
    """
    cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"jobs must be a whole number of at least 1, got {jobs!r}")
    if jobs > len(cores):
        raise ParameterError(f"jobs={jobs} exceeds the {len(cores)} CPU core(s) this process may use: each "
                             "worker needs a core of its own")
    return [cores[len(cores) * i // jobs:len(cores) * (i + 1) // jobs] for i in range(jobs)]


def check_jobs(jobs, strategy):
    """Refuse a fold-parallel run that cannot work: ``jobs`` invalid, or > 1 with a GPU or a distribution strategy.

    Raises
    ------
    ParameterError
    """
    core_groups(jobs)
    if jobs == 1:
        return
    if strategy != "default":
        raise ParameterError(f"jobs={jobs} trains folds in parallel on CPU cores; strategy {strategy!r} "
                             "distributes one fold instead: use one or the other")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        raise ParameterError(f"jobs={jobs} splits CPU cores between folds; on this machine's GPU train one "
                             "fold at a time (jobs=1)")


def _process_registrations(recipe):
    """The networks and tracker factories registered in this process that a worker process can import.

    Raises
    ------
    ParameterError
        A network the recipe builds, or a tracker factory (every fit calls them all), cannot
        be pickled by reference: a lambda, a closure or a function of a notebook cell.
    """
    import pickle

    from keras_ser.experiments.training import _CALLBACK_FACTORIES
    from keras_ser.models import registry

    def importable(function):
        try:
            pickle.dumps(function)
        except (pickle.PicklingError, AttributeError, TypeError):
            return False
        return True

    used = {recipe["model"].get("name"), recipe.get("stage1", {}).get("model")}
    entries = []
    for entry in map(registry.info, registry.registered_here()):
        if importable(entry.builder):
            entries.append(entry)
        elif entry.name in used:
            raise ParameterError(f"model {entry.name!r} was registered with a builder that worker processes "
                                 "cannot import; define it at the top level of a module, or use jobs=1")
    for factory in _CALLBACK_FACTORIES:
        if not importable(factory):
            raise ParameterError(f"callback factory {factory!r} cannot reach worker processes; define it at "
                                 "the top level of a module, or use jobs=1")
    return entries, list(_CALLBACK_FACTORIES)


def pin_to_cores(cores):
    """Run this process on ``cores`` only, with TensorFlow's thread pools sized to them.

    Call it before TensorFlow runs its first operation: the pools are sized once, then.
    """
    os.sched_setaffinity(0, cores)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(len(cores))
    tf.config.threading.set_inter_op_parallelism_threads(len(cores))


def _start_worker(groups, counter, train_fold, recipe, label_names, strategy, registrations):
    # Before TensorFlow runs anything: its thread pools are sized once, at the first operation.
    with counter.get_lock():
        cores = groups[counter.value % len(groups)]
        counter.value += 1
    pin_to_cores(cores)

    from keras_ser.distribute import get_strategy
    from keras_ser.experiments.neural import FeatureStore, cached_frontend
    from keras_ser.experiments.training import register_callback_factory
    from keras_ser.models import registry

    entries, factories = registrations
    for entry in entries:
        if entry.name not in registry.available():
            registry.register(entry.name, paper=entry.paper, table=entry.table, input=entry.input,
                              **entry.default_kwargs)(entry.builder)
    for factory in factories:
        register_callback_factory(factory)
    frontend = cached_frontend(recipe["frontend"])
    _WORKER.update(train_fold=train_fold, recipe=recipe, label_names=label_names, frontend=frontend,
                   store=FeatureStore(frontend), strategy=get_strategy(strategy))


def _run_fold_in_worker(task):
    fold, fold_dir, results_fold = task
    _WORKER["train_fold"](_WORKER["recipe"], fold, _WORKER["label_names"], fold_dir, store=_WORKER["store"],
                          frontend=_WORKER["frontend"], strategy=_WORKER["strategy"], progress=False,
                          results_fold=results_fold)
    return fold.name


def run_folds(train_fold, recipe, folds, label_names, run_dir, *, jobs, strategy="default", on_done=None,
              results_root=None):
    """Train ``folds`` in ``jobs`` worker processes; call ``on_done(fold_name)`` in this process as each ends.

    Parameters
    ----------
    train_fold : callable
        :func:`keras_ser.experiments.runner.run_fold`, which the workers call (handed over, so
        that this module does not import the runner that imports it).
    recipe : dict
        Resolved recipe of a ``neural`` or ``two_stage`` run.
    folds : list of keras_ser.data.Fold
        The folds to train (their folders are cleared of unfinished work by the caller).
    label_names : list of str
    run_dir : keras_ser.experiments.run_dir.RunDir
    jobs : int
        Worker processes (at most one per fold); :func:`core_groups` splits the cores.
    strategy : str
        ``"default"`` (:func:`check_jobs`).
    on_done : callable, optional
        Called with each fold's name, in the order the folds finish.
    results_root : keras_ser.experiments.run_dir.RunDir, optional
        The run's folder in ``results/``: a worker copies each run of a fold under
        ``experiment.repeats`` there as it ends (``train_fold``'s ``results_fold``).

    Raises
    ------
    ParameterError
        See :func:`check_jobs` and the module docstring (registrations workers cannot import).
    Exception
        The first error of a fold, after the other workers are stopped; the folds finished
        before it keep their results.
    """
    groups = core_groups(min(jobs, len(folds)))
    registrations = _process_registrations(recipe)
    context = multiprocessing.get_context("spawn")
    counter = context.Value("i", 0)
    tasks = [(fold, run_dir.fold(fold.name), results_root.fold(fold.name) if results_root else None)
             for fold in folds]
    with context.Pool(len(groups), initializer=_start_worker,
                      initargs=(groups, counter, train_fold, recipe, label_names, strategy, registrations)) as pool:
        for name in pool.imap_unordered(_run_fold_in_worker, tasks):
            if on_done is not None:
                on_done(name)
