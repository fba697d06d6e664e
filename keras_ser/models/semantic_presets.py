"""Registered variants of tzirakis2021's semantic + paralinguistic network.

One entry per paper system or table row: the builder, the paper, the table and row
reproduced, the input at the paper defaults and the builder arguments the name binds
(:mod:`keras_ser.models.registry` registers every entry).
"""

from keras_ser.models.semantic import tzirakis2021_semantic

TZIRAKIS2021 = "tzirakis2021 Tzirakis, Nguyen, Zafeiriou, Schuller. ICASSP 2021"
BOTH_INPUTS = "aligned word vectors [T, 300] + raw-wave frames [T, 2205] at 22.05 kHz (T frames of 0.1 s)"

PRESETS = {
    "tzirakis2021_semantic": {
        "builder": tzirakis2021_semantic, "paper": TZIRAKIS2021, "input": BOTH_INPUTS,
        "table": "Table 3, disentangled attention; Table 4, proposed (Table 1 CNN)",
    },
    "tzirakis2021_semantic_concat": {
        "builder": tzirakis2021_semantic, "paper": TZIRAKIS2021, "input": BOTH_INPUTS,
        "table": "Table 3, concatenation", "overrides": {"fusion": "concat"},
    },
    "tzirakis2021_semantic_code": {
        "builder": tzirakis2021_semantic, "paper": TZIRAKIS2021, "input": BOTH_INPUTS,
        "table": "authors' public code: last conv 250, d_u 1024, a/v/l 512 with ReLU, LSTM 256",
        "overrides": {"filters": (50, 125, 250), "branch_units": 512, "projection_activation": "relu",
                      "branch_activation": "relu"},
    },
    "tzirakis2021_semantic_only": {
        "builder": tzirakis2021_semantic, "paper": TZIRAKIS2021,
        "input": "word vectors [T, 300], one per 0.1 s frame",
        "table": "Table 2, Word2Vec / Speech2Vec / aligned Speech2Vec (semantic network alone)",
        "overrides": {"modalities": ("semantic",)},
    },
    "tzirakis2021_paralinguistic": {
        "builder": tzirakis2021_semantic, "paper": TZIRAKIS2021, "input": "raw-wave frames [T, 2205] at 22.05 kHz",
        "table": "Table 2, paralinguistic network alone", "overrides": {"modalities": ("paralinguistic",)},
    },
}
