"""Small EMO-DB manifests for tests that train real folds: a few speakers, classes and files each."""

import csv

#: EMO-DB's file-name codes of the three classes the small manifests keep.
ANGER_NEUTRAL_SADNESS = {"W": "anger", "N": "neutral", "T": "sadness"}


def emodb_manifest(emodb_wavs, folder, speakers, per_class, codes=ANGER_NEUTRAL_SADNESS):
    """Write ``folder/list.csv`` with the first ``per_class`` files of each speaker and class; return ``manifest:PATH``.

    Rows go speaker by speaker in the order of ``speakers``, class by class in the order of ``codes``
    (EMO-DB emotion letter -> label). Without an id column a manifest utterance's id is its path.
    """
    rows = []
    for speaker in speakers:
        for code, label in codes.items():
            chosen = [w for w in emodb_wavs if w.name[:2] == speaker and w.name[5] == code][:per_class]
            rows += [{"path": str(w), "label": label, "speaker": speaker} for w in chosen]
    path = folder / "list.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    return f"manifest:{path}"
