"""Extracted features in DeepSpectrum's row layout, written to CSV / ARFF / NPZ (:class:`FeatureTable`).

Output layout (DeepSpectrum's, so existing SVM scripts keep working): one row per
utterance, or per window (a ``timestamp`` column then holds the window start in
seconds), columns ``name, [timestamp], <features...>, label``. The output is written
to a hidden temporary file in the output's folder and renamed at the end, so an
interrupted run leaves no truncated output under the final name.

Imports NumPy, :mod:`keras_ser.errors` and :mod:`keras_ser.experiments.run_dir` (atomic writes).
"""

import dataclasses
import pathlib

import numpy as np

from keras_ser.errors import ParameterError
from keras_ser.experiments.run_dir import atomic_path

OUTPUT_FORMATS = (".csv", ".arff", ".npz")


@dataclasses.dataclass
class FeatureTable:
    """Extracted features in DeepSpectrum's row layout.

    Attributes
    ----------
    names : list of str
        Row names (utterance id or relative file name).
    timestamps : numpy.ndarray or None
        Window start (s) per row; None for one row per utterance.
    features : numpy.ndarray [rows, d] float32
    feature_names : list of str
    labels : list
        Label per row (None when unknown).
    description : str
        What was extracted, including which CNN weights were used.
    """

    names: list
    timestamps: object
    features: np.ndarray
    feature_names: list
    labels: list
    description: str = ""

    def write(self, path):
        """Write as ``.csv``, ``.arff`` or ``.npz`` (by suffix).

        The table goes to a hidden temporary file in the same folder
        (:func:`keras_ser.experiments.run_dir.atomic_path`), flushed to disk and renamed onto ``path`` at the end:
        ``path`` is either absent, the previous complete output, or the new
        complete one. An interrupted write removes its temporary file (a killed
        process leaves it, under the temporary name).
        """
        path = pathlib.Path(path)
        suffix = path.suffix.lower()
        if suffix not in OUTPUT_FORMATS:
            raise ParameterError(f"output {path} must end in one of {', '.join(OUTPUT_FORMATS)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        labels = ["?" if label is None else str(label) for label in self.labels]
        with atomic_path(path) as temporary, open(temporary, "wb") as raw:
            if suffix == ".npz":
                extra = {} if self.timestamps is None else {"timestamps": np.asarray(self.timestamps, np.float64)}
                np.savez(raw, names=np.array(self.names), features=self.features,
                         feature_names=np.array(self.feature_names), labels=np.array(labels),
                         description=np.array(self.description), **extra)
            else:
                with open(raw.fileno(), "w", encoding="utf-8", newline="\n", closefd=False) as out:
                    if suffix == ".arff":
                        self._write_arff(out, labels)
                    else:
                        self._write_csv(out, labels)
        return path

    def _cells(self, i, labels, quote):
        lead = [quote(self.names[i])]
        if self.timestamps is not None:
            lead.append(f"{self.timestamps[i]:.3f}")
        return lead + [repr(float(v)) for v in self.features[i]] + [quote(labels[i])]

    def _write_csv(self, out, labels):
        def quote(text):
            return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text

        header = ["name"] + (["timestamp"] if self.timestamps is not None else []) + list(self.feature_names)
        out.write(",".join(header + ["label"]) + "\n")
        for i in range(len(self.names)):
            out.write(",".join(self._cells(i, labels, quote)) + "\n")

    def _write_arff(self, out, labels):
        def quote(text):
            return "?" if text == "?" else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

        out.write(f"% {self.description}\n@relation keras_ser_features\n\n@attribute name string\n")
        if self.timestamps is not None:
            out.write("@attribute timestamp numeric\n")
        for feature in self.feature_names:
            out.write(f"@attribute {quote(feature)} numeric\n")
        classes = sorted({label for label in labels if label != "?"})
        nominal = "{" + ",".join(quote(c) for c in classes) + "}" if classes else "string"
        out.write(f"@attribute class {nominal}\n\n@data\n")
        for i in range(len(self.names)):
            out.write(",".join(self._cells(i, labels, quote)) + "\n")
