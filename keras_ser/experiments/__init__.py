"""Experiments: run a recipe over the folds of its protocol and write a resumable run directory.

Modules, from the bottom up (each may import only those above it in this list, as
said per module, plus the rest of :mod:`keras_ser`; all imports at module level):

* :mod:`~keras_ser.experiments.run_dir`: the run directory's layout, atomic JSON and CSV
  writers, fold status and model-directory resolution (imports nothing of this package,
  nor Keras; :mod:`keras_ser.predict`, :mod:`keras_ser.export` and
  :mod:`keras_ser.extraction` read runs through it);
* :mod:`~keras_ser.experiments.resume`: the run lock, the corpus fingerprint and the
  config checks that decide whether a run may resume (imports ``run_dir``);
* :mod:`~keras_ser.experiments.environment`: the versions, commit and machine a run
  records (imports nothing of this package);
* :mod:`~keras_ser.experiments.clock`: elapsed time that leaves out the stretches the
  process was stopped, for ``wall_s`` (imports nothing of this package);
* :mod:`~keras_ser.experiments.checkpoints`: a fit's epoch checkpoints, from which an
  interrupted fold goes on (imports ``clock``);
* :mod:`~keras_ser.experiments.training`: optimiser, loss, class weights, the
  validation-pass callback, ``fit``, seeding, training-array helpers (imports
  ``checkpoints``);
* :mod:`~keras_ser.experiments.reports`: ``results.json`` / ``results.md`` / plots
  (imports ``run_dir`` and ``resume``);
* one module per kind of fold: :mod:`~keras_ser.experiments.neural` and
  :mod:`~keras_ser.experiments.two_stage` (import ``training``),
  :mod:`~keras_ser.experiments.svm` (imports ``run_dir``; the SVM itself is
  :mod:`keras_ser.svm`), :mod:`~keras_ser.experiments.fusion` (imports ``run_dir`` and
  ``reports``);
* :mod:`~keras_ser.experiments.results`: the committed ``results/`` copy of a run, mirrored
  fold by fold and resumed from (imports ``run_dir``, ``resume`` and ``reports``);
* :mod:`~keras_ser.experiments.runner`: :func:`~keras_ser.experiments.runner.run_experiment`,
  fold selection and the loop (imports all of the above).

This ``__init__`` imports nothing, so that reading a run directory does not load
TensorFlow.
"""
