"""The committed ``results/`` folder: mirror finished folds there, resume runs from it.

``python -m keras_ser.train ... --results results/`` keeps, for each run, a copy of what
reports it and resumes it in ``results/<recipe>/<corpus>/``, with the run directory's
layout (:mod:`keras_ser.experiments.run_dir`) but only the small files of
:data:`MIRRORED_FILES`::

    config.json, labels.json, results.json, results.md, confusion.png
    folds/<fold>/metrics.json, predictions.csv, val_predictions.csv, history.json
    members/<member>/...            fusion members (zhang2021_multicnn), the same layout
    score/..., feature/...          fused folds and reports of each fusion level

Model weights, TensorBoard logs, embeddings and feature caches stay in the run directory.

How a run uses it (:class:`ResultsMirror`):

* at the start, the run's ``config.json`` is compared with the one in ``results/``: any
  difference in the recipe (after overrides), a fusion member's overrides, the corpus, seed,
  or in the corpus's utterances (id, label, speaker, file size, content digest) is refused
  with the keys that differ. The data folder,
  the corpus files' paths and modification times, the strategy and the folds chosen
  may differ, so a run moves between machines; so may the recipe's descriptive text (its
  citation, description and the paper's figures), and a recipe key added to the schema since
  counts as its default (:func:`keras_ser.experiments.resume.config_differences`). The
  ``config.json`` kept there records no modification times where a content digest
  identifies the file (:func:`portable_config`): a corpus copied anew does not rewrite it;
* folds finished in ``results/`` and not in the run directory are copied into it and
  count as done: the runner does not train them again, and reports cover them. They have
  no MODEL DIR, so ``predict`` / ``export`` / ``embedding:RUN_DIR`` can use only folds
  trained in that run directory (a run without ``--results`` redoes them);
* after each fold is trained, its files and the refreshed run reports are copied to
  ``results/`` (each file written under a temporary name and renamed, and only when its
  content changed), so committing ``results/`` after any fold loses nothing;
* under ``experiment.repeats`` (zhang2021_dcnn: three runs per fold, hours on a CPU) each
  run of a fold is copied to ``results/.../folds/<fold>/repeat_<k>/`` as it ends
  (:func:`mirror_repeat`), and a fold left unfinished there starts on another machine from
  its finished runs (:func:`restore_repeat`): only the missing runs are trained. A restored
  run has no model; the fold keeps the model of its best run trained in the run directory
  (:func:`keras_ser.experiments.runner.run_repeats`), or none when every run was restored,
  and then counts as finished by its scores, like a restored fold.

A fold that depends on another run's files: a zhang2021_dcnn two-stage fold trains its
stage-1 DCNN inside the same fold (:mod:`keras_ser.experiments.two_stage`), so a
finished fold needs no model and an unfinished one trains both stages. Score-level fusion
needs only its members' ``predictions.csv`` / ``val_predictions.csv``, which ``results/``
keeps, also in the member's own run (``results/<member>/<corpus>[__variant]``, when its
recipe resolves to the member's: :meth:`ResultsMirror.member`); feature-level fusion needs
each member fold's ``embeddings.npz``, which it does not, so a fusion recipe with
feature-level fusion says so and retrains those member folds. The fused folds' scores are
kept, so a fusion run that fuses some folds reports them with every fold fused before in
``results/`` (:meth:`ResultsMirror.restore_fused`). The other way round, a
member's recipe run on its own borrows the folds a fusion run trained for it
(``results/<fusion>/<corpus>[__variant]/members/<member>``, when the configurations match:
:meth:`ResultsMirror.for_run`).
``zhao2019_features_embedding`` (``features.name = "embedding:RUN_DIR"``) reads each fold's
``embeddings.npz`` or model from another run directory: a fold of that run restored from
``results/`` has neither, and the SVM run stops naming the missing model; train that run's
folds in its run directory first (without ``--results``, or with a fresh ``results/``).

One module on purpose: what ``results/`` keeps, how it is written (folds, runs, reports) and
how a run resumes from it are one contract; split, the writer and the reader could drift apart.

Example
-------
>>> from keras_ser.experiments.results import results_dir
>>> results_dir("results", {"recipe": {"name": "zhao2018_attention_blstm_fcn"},
...                         "experiment": {"corpus": "emodb"}}).as_posix()
'results/zhao2018_attention_blstm_fcn/emodb'
"""

import json
import pathlib
import re
import shutil
import sys

from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments import reports
from keras_ser.experiments.resume import RESUMABLE_KEYS, corpus_changes, fingerprint_of
from keras_ser.experiments.resume import config_differences as run_dir_differences
from keras_ser.experiments.run_dir import (RESTORED_MARKER, RunDir, atomic_path, fold_status, json_default,
                                           read_json, scores_problem)

#: Run-level files copied to ``results/``.
RUN_FILES = ("config.json", "labels.json", "results.json", "results.md", "confusion.png")

#: Per-fold files copied to ``results/``.
FOLD_FILES = ("metrics.json", "predictions.csv", "val_predictions.csv", "history.json")

#: Every file name ``results/`` may hold.
MIRRORED_FILES = RUN_FILES + FOLD_FILES

#: Folders of a run directory never copied (model weights, TensorBoard logs, feature caches).
SKIPPED_DIRS = ("model", "tensorboard", "feature_cache")

#: ``config.json`` keys that may differ between the run and ``results/``: besides the
#: run directory's own (:data:`~keras_ser.experiments.resume.RESUMABLE_KEYS`), the data
#: folder, and the corpus fingerprint, whose paths and times are machine-specific and
#: whose content is compared by :func:`corpus_differences`.
IGNORED_KEYS = RESUMABLE_KEYS + ("data_dir", "corpus_fingerprint")


def corpus_key(corpus):
    """The folder name of a corpus in ``results/<recipe>/``: ``emodb``; ``manifest:a/b.csv`` -> ``manifest_b``."""
    corpus = str(corpus)
    if corpus.startswith("manifest:"):
        corpus = "manifest_" + pathlib.Path(corpus.split(":", 1)[1]).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", corpus)


#: Separates a variant's name from the corpus in its folder name: ``results/<recipe>/emodb__bf16``.
VARIANT_SEPARATOR = "__"


def results_dir(root, recipe, variant=None):
    """``root/<recipe name>/<corpus>`` of a resolved recipe; ``<corpus>_to_<test corpus>`` across corpora.

    ``variant`` (``train --results-variant NAME``) files a run of the same recipe under other
    settings beside the recipe's own, in ``<corpus>__<NAME>``: an ablation of one setting, such as
    another precision, kept as evidence for the recipe's choice.

    Raises
    ------
    ParameterError
        ``variant`` is empty or holds characters other than letters, digits, ``.``, ``_``, ``-``.
    """
    experiment = recipe["experiment"]
    key = corpus_key(experiment["corpus"])
    if experiment.get("test_corpus"):
        key += "_to_" + corpus_key(experiment["test_corpus"])
    if variant is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", str(variant)) or VARIANT_SEPARATOR in str(variant):
            raise ParameterError(f"--results-variant {variant!r}: use letters, digits, '.', '-' and single '_'")
        key += VARIANT_SEPARATOR + str(variant)
    return pathlib.Path(root) / recipe["recipe"]["name"] / key


def _same_corpus_key(folder, key):
    """Whether ``folder`` (``<corpus>`` or ``<corpus>__<variant>``) is a run on corpus key ``key``."""
    return folder == key or folder.startswith(key + VARIANT_SEPARATOR)


def config_differences(stored, current):
    """:func:`keras_ser.experiments.resume.config_differences` beyond :data:`IGNORED_KEYS`."""
    return run_dir_differences(stored, current, IGNORED_KEYS)


#: Recipe keys that change what a run saves, not its scores.
SCORE_NEUTRAL_KEYS = ("recipe.experiment.save_features", "recipe.experiment.save_models")


def scores_config_differences(stored, current):
    """:func:`config_differences` of the settings a run's scores depend on.

    The resolved recipes are compared, not the overrides that produced them (a fusion
    member gets ``experiment.seed=...`` and ``experiment.save_features=true`` on top of
    what a run of the member on its own was given), and :data:`SCORE_NEUTRAL_KEYS` are
    left out.

    Example
    -------
    >>> stored = {"recipe": {"experiment": {"seed": 42, "save_features": False}}, "overrides": []}
    >>> scores_config_differences(stored, {"recipe": {"experiment": {"seed": 42, "save_features": True}},
    ...                                    "overrides": ["experiment.seed=42", "experiment.save_features=true"]})
    []
    """
    def recipe_only(config):
        return {k: v for k, v in config.items() if k != "overrides"}

    return [line for line in config_differences(recipe_only(stored), recipe_only(current))
            if line.split(":", 1)[0] not in SCORE_NEUTRAL_KEYS]


def corpus_differences(stored, current):
    """How the corpus of config ``current`` differs from that of ``stored``, paths and times aside.

    :func:`keras_ser.experiments.resume.corpus_changes` without paths of the two configs'
    fingerprints (none if either config has none): ``results/`` is read on other machines,
    where the corpus lies elsewhere and its files have other modification times.
    """
    if stored.get("corpus_fingerprint") is None or current.get("corpus_fingerprint") is None:
        return []
    return corpus_changes(stored["corpus_fingerprint"], current["corpus_fingerprint"], paths=False)


def fold_problem(fold_dir, name, label_names):
    """Why the fold in ``fold_dir`` has no complete scores, or None.

    :func:`keras_ser.experiments.run_dir.fold_status` without its MODEL DIR check
    (``results/`` keeps no models): ``metrics.json`` names fold ``name`` and holds
    ``ua``, ``wa`` and ``n``; ``predictions.csv`` has one score column per class of
    ``label_names``, one finite row per test utterance counted.
    """
    fold_dir = pathlib.Path(fold_dir)
    return scores_problem(fold_dir / "metrics.json", fold_dir / "predictions.csv", name, label_names)


def portable_config(config):
    """``config`` as ``results/`` keeps it: without the corpus files' modification times.

    A fingerprint record ``[id, path, label, speaker, size, mtime_ns, digest]`` with a digest
    gets ``None`` for its time (:func:`corpus_differences` compares size and digest): times
    change whenever the corpus is copied, and would rewrite every ``config.json`` of
    ``results/`` on each machine. Its ``sha256`` is recomputed over the records kept.
    Records without a digest (runs older than digests) keep their time.

    Examples
    --------
    >>> config = {"corpus_fingerprint": {"utterances": [["u1", "/a/u1.wav", "anger", "03", 10, 5, "00ff"]]}}
    >>> portable_config(config)["corpus_fingerprint"]["utterances"]
    [['u1', '/a/u1.wav', 'anger', '03', 10, None, '00ff']]
    """
    fingerprint = config.get("corpus_fingerprint")
    if not fingerprint or not any(len(r) > 6 and r[5] is not None for r in fingerprint["utterances"]):
        return config
    records = [r[:5] + [None] + r[6:] if len(r) > 6 else r for r in fingerprint["utterances"]]
    return {**config, "corpus_fingerprint": fingerprint_of(records)}


def copy_file(source, target):
    """Copy ``source`` to ``target`` atomically, unless ``target`` already holds the same bytes.

    A run's ``config.json`` is written as :func:`portable_config` gives it.

    Returns
    -------
    bool
        Whether ``target`` was written (unchanged files keep their time stamps, and
        ``git status`` stays quiet).
    """
    source, target = pathlib.Path(source), pathlib.Path(target)
    data = source.read_bytes()
    if source.name == "config.json":
        config = json.loads(data)
        portable = portable_config(config)
        if portable is not config:
            data = json.dumps(portable, indent=2, default=json_default).encode()
    if target.is_file() and target.read_bytes() == data:
        return False
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return True


def mirror_tree(source, target):
    """Copy every file of :data:`MIRRORED_FILES` under ``source`` to the same place under ``target``.

    Folders in :data:`SKIPPED_DIRS` and hidden files (the lock, temporary files) are
    skipped.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    source, target = pathlib.Path(source), pathlib.Path(target)
    written = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if (not path.is_file() or path.name not in MIRRORED_FILES or path.name.startswith(".")
                or any(part in SKIPPED_DIRS or part.startswith(".") for part in relative.parts[:-1])):
            continue
        if copy_file(path, target / relative):
            written.append(target / relative)
    return written


def mirror_repeat(source, target):
    """Copy the finished run in ``source`` (``folds/<fold>/repeat_<k>/``) to ``target`` in ``results/``.

    ``metrics.json``, which marks a run finished, is copied last.
    """
    source, target = pathlib.Path(source), pathlib.Path(target)
    for filename in FOLD_FILES[1:] + FOLD_FILES[:1]:
        if (source / filename).is_file():
            copy_file(source / filename, target / filename)


def restore_repeat(source, target, name, label_names):
    """Copy the run of fold ``name`` in ``source`` (``results/``) to ``target`` in the run directory.

    The copy is marked as restored (:data:`~keras_ser.experiments.run_dir.RESTORED_MARKER`):
    it has scores but no model.

    Returns
    -------
    bool
        False, copying nothing, when ``source`` holds no complete scores (:func:`fold_problem`).
    """
    source, target = pathlib.Path(source), pathlib.Path(target)
    if not source.is_dir() or fold_problem(source, name, label_names) is not None:
        return False
    if target.exists():
        shutil.rmtree(target)
    mirror_repeat(source, target)
    # After the scores: a copy cut short has no marker, so it needs its model and is trained again.
    with atomic_path(target / RESTORED_MARKER) as tmp:
        tmp.write_text(f"scores copied from {source}\n")
    return True


def _note(message):
    print(f"note: {message}", file=sys.stderr)


class ResultsMirror:
    """The ``results/`` copy of one run: :meth:`start`, then :meth:`fold_done` per fold, then :meth:`finish`.

    A fusion run calls :meth:`check_config` at its start and :meth:`mirror` at its end;
    its members get their own mirrors (:meth:`member`).

    Parameters
    ----------
    root : path-like
        This run's folder in ``results/`` (:func:`results_dir`).
    require : tuple of str
        Fold files the run needs beyond what ``results/`` keeps; a fold whose run
        directory copy lacks one is trained again (feature-level fusion members:
        ``("embeddings.npz",)``).
    """

    def __init__(self, root, require=(), standalone=()):
        self.root = pathlib.Path(root)
        self.require = tuple(require)
        self.standalone = tuple(pathlib.Path(p) for p in standalone)
        self.restored = set()
        self._report = None

    @classmethod
    def for_run(cls, results, recipe, variant=None):
        """The mirror of ``recipe``'s run under ``results`` (a ``results/`` root or a ready ResultsMirror).

        A recipe that is also a fusion member borrows the finished folds of the fusion runs'
        ``members/<name>`` folders of the same corpus whose configuration matches its own
        (:meth:`start`): a fold that a feature-level fusion trained for its member, which
        scores as the recipe run alone would, is not trained again.
        """
        if results is None or isinstance(results, cls):
            return results
        root = results_dir(results, recipe, variant)
        key = root.name.split(VARIANT_SEPARATOR)[0]
        members = sorted(p for p in pathlib.Path(results).glob(f"*/*/members/{recipe['recipe']['name']}")
                         if _same_corpus_key(p.parent.parent.name, key))
        return cls(root, standalone=members)

    def member(self, name, recipe):
        """The mirror of fusion member ``name`` of fusion recipe ``recipe`` (``members/<name>``).

        For score-level fusion alone, the member's own runs in ``results/<name>/`` (the
        corpus's folder and its variants) are searched too: folds of a run with the member's
        configuration are restored from there (:meth:`start`), so a member run on its own is
        not trained again for the fusion.
        """
        if recipe["fusion"]["level"] in ("feature", "both"):
            return type(self)(self.root / "members" / name, require=("embeddings.npz",))
        key = self.root.name.split(VARIANT_SEPARATOR)[0]
        own_runs = sorted(p for p in (self.root.parent.parent / name).glob(f"{key}*") if _same_corpus_key(p.name, key))
        return type(self)(self.root / "members" / name, standalone=own_runs)

    def check_config(self, run_root):
        """Refuse a run whose ``config.json`` differs from the one in ``results/``; then record it there.

        Raises
        ------
        ParameterError
            The recipe, overrides, corpus or seed differ: the message names every key.
        DataError
            The corpus's utterances differ (ids, labels, speakers, file sizes).
        """
        current = read_json(RunDir(run_root).config)
        stored_path = RunDir(self.root).config
        if stored_path.is_file():
            stored = read_json(stored_path)
            keys = config_differences(stored, current)
            if keys:
                raise ParameterError(
                    f"{stored_path} holds results of a different configuration: " + "; ".join(keys)
                    + ". Resume with the same recipe, overrides and corpus, or choose another --results folder"
                )
            changes = corpus_differences(stored, current)
            if changes:
                shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
                raise DataError(
                    f"corpus {current.get('corpus')!r} differs from the one the results in {self.root} were "
                    f"computed on ({len(changes)} change(s): {shown}); choose another --results folder"
                )
        copy_file(RunDir(run_root).config, stored_path)
        if RunDir(run_root).labels.is_file():
            copy_file(RunDir(run_root).labels, RunDir(self.root).labels)

    def start(self, run_root, recipe=None, label_names=None, fold_names=(), selected=None):
        """Check the configuration, then copy into ``run_root`` the folds ``results/`` has and it lacks.

        ``selected`` names the folds this run trains (default: all of ``fold_names``); a fold
        of ``results/`` that cannot be restored is noted only when the run trains it again.

        Returns
        -------
        set of str
            The folds restored from ``results/``: finished, without a MODEL DIR.
        """
        self.check_config(run_root)
        self._report = (recipe, label_names, list(fold_names))
        run, stored = RunDir(run_root), RunDir(self.root)
        for name in fold_names:
            source = stored.fold(name)
            if not source.is_dir() or fold_status(run.root, name, label_names)[0]:
                continue
            retrained = selected is None or name in selected
            problem = fold_problem(source, name, label_names)
            if problem is not None:
                if retrained:
                    _note(f"fold {name} in {self.root} is not complete ({problem}); not restored: training it again")
                continue
            if self.require:
                have = [f for f in self.require if (run.fold(name) / f).is_file()]
                if len(have) < len(self.require):
                    if retrained:
                        _note(f"fold {name}: {self.root} has its scores, but this run also needs its "
                              f"{', '.join(self.require)}, which results/ does not keep; not restored: "
                              "training it again")
                    continue
            self._restore_fold(run, source, name)
        if self.restored:
            _note(f"{len(self.restored)} finished fold(s) restored from {self.root} "
                  f"({', '.join(sorted(self.restored))}): not trained again; they have scores but no saved model")
        for source_root in self.standalone:
            self._restore_standalone(run, source_root, label_names, fold_names)
        return set(self.restored)

    def _restore_fold(self, run, source, name):
        """Replace fold ``name`` of the run directory ``run`` by the fold files in ``source``."""
        if run.fold(name).exists():
            shutil.rmtree(run.fold(name))
        for filename in FOLD_FILES:
            if (source / filename).is_file():
                copy_file(source / filename, run.fold(name) / filename)
        self.restored.add(name)

    def _restore_standalone(self, run, source_root, label_names, fold_names):
        """Restore the folds still missing from ``source_root``, a run of the same configuration."""
        stored_path = RunDir(source_root).config
        if not stored_path.is_file():
            return
        stored, current = read_json(stored_path), read_json(run.config)
        if scores_config_differences(stored, current) or corpus_differences(stored, current):
            return
        restored = []
        for name in fold_names:
            source = RunDir(source_root).fold(name)
            if (name in self.restored or not source.is_dir() or fold_status(run.root, name, label_names)[0]
                    or fold_problem(source, name, label_names) is not None):
                continue
            self._restore_fold(run, source, name)
            restored.append(name)
        if restored:
            _note(f"{len(restored)} finished fold(s) restored from {source_root}, a run of the same "
                  f"configuration ({', '.join(restored)}): not trained again")

    def finished(self, run_root, label_names):
        """``finished(fold_name)`` for :func:`keras_ser.experiments.reports.write_reports`: trained or restored."""
        def finished(name):
            return name in self.restored or fold_status(run_root, name, label_names)[0]
        return finished

    def write_reports(self, run_root):
        """Rewrite the run's reports (covering restored folds) and mirror the run to ``results/``."""
        recipe, label_names, fold_names = self._report
        results = reports.write_reports(run_root, recipe, label_names, fold_names,
                                        finished=self.finished(run_root, label_names))
        mirror_tree(run_root, self.root)
        return results

    def fold_done(self, run_root, name):
        """After fold ``name`` is trained: copy it and the refreshed reports to ``results/``.

        A fold whose runs were all restored from ``results/`` (``experiment.repeats``) has no
        model; its complete scores make it finished, as a restored fold.
        """
        for filename in FOLD_FILES:
            source = RunDir(run_root).fold(name) / filename
            if source.is_file():
                copy_file(source, RunDir(self.root).fold(name) / filename)
        if (not fold_status(run_root, name, self._report[1])[0]
                and fold_problem(RunDir(self.root).fold(name), name, self._report[1]) is None):
            self.restored.add(name)
        return self.write_reports(run_root)

    def finish(self, run_root):
        """At the end of the run: final reports, mirrored; returns ``results.json``'s content."""
        return self.write_reports(run_root)

    def mirror(self, run_root):
        """Copy the run's reports and folds as they are (a fusion run, whose reports the fusion writes)."""
        return mirror_tree(run_root, self.root)

    def restore_fused(self, run_root, levels, label_names, skip=()):
        """Copy into fusion run ``run_root`` the fused folds ``results/`` has and it lacks.

        A feature-level fold needs its members' ``embeddings.npz``, which ``results/`` does
        not keep, so a run directory can fuse again only the folds whose members it trained;
        the folds fused elsewhere keep their scores in ``results/<fusion>/.../<level>/`` and
        count as done, so the level's reports cover every fused fold, not only this
        directory's. ``skip`` names the folds this run fuses itself (its members have them).
        A fold an earlier run of this directory restored is not copied again, and counts.

        Returns
        -------
        dict
            Level -> sorted names of the folds restored, now or by an earlier run.
        """
        restored = {}
        for level in levels:
            stored, run = RunDir(self.root / level), RunDir(pathlib.Path(run_root) / level)
            for name in stored.fold_names():
                if name in skip or fold_problem(stored.fold(name), name, label_names) is not None:
                    continue
                if fold_problem(run.fold(name), name, label_names) is not None:
                    self._restore_fold(run, stored.fold(name), name)
                restored.setdefault(level, []).append(name)
        for level, names in restored.items():
            _note(f"{len(names)} {level}-level fused fold(s) restored from {self.root / level} "
                  f"({', '.join(names)}): their scores are reported, their members are not in this run directory")
        return restored
