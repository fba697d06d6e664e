"""Registered variants of zhang2021_dcnn's DCNN-BLSTMwA and its 2-CNN-LSTM baseline.

One entry per paper system or table row: the builder, the paper, the table and row
reproduced, the input at the paper defaults and the builder arguments the name binds
(:mod:`keras_ser.models.registry` registers every entry).
"""

from keras_ser.models.dcnn_blstmwa import zhang2021_2cnn_lstm, zhang2021_blstm_attention_dnn, zhang2021_dcnn

ZHANG2021_DCNN = "zhang2021_dcnn Zhang, Gou, Shang, Shen, Wu, Dai. Frontiers in Physiology 12, 2021"
FC7_SEQUENCE = "sequence of AlexNet fc7 segment features, [segments, 4096]"

PRESETS = {
    # Stage 1: the segment-level DCNN on C-channel log-mel images (Table 1).
    "zhang2021_dcnn": {
        "builder": zhang2021_dcnn, "paper": ZHANG2021_DCNN,
        "table": "Sec. 2.4.1; Table 1, C=3 (stage 1, segment-level DCNN)",
        "input": "64x64x3 log-mel segment resized to 227x227x3, [0, 255]", "overrides": {"channels": 3},
    },
    "zhang2021_dcnn_c1": {
        "builder": zhang2021_dcnn, "paper": ZHANG2021_DCNN,
        "table": "Sec. 2.4.1; Table 1, C=1 (stage 1, segment-level DCNN)",
        "input": "64x64x1 log-mel segment resized to 227x227x1, [0, 255]", "overrides": {"channels": 1},
    },
    "zhang2021_dcnn_c2": {
        "builder": zhang2021_dcnn, "paper": ZHANG2021_DCNN,
        "table": "Sec. 2.4.1; Table 1, C=2 (stage 1, segment-level DCNN)",
        "input": "64x64x2 log-mel segment resized to 227x227x2, [0, 255]", "overrides": {"channels": 2},
    },
    # Stage 2: the fc7 sequence model (Table 3).
    "zhang2021_dcnn_blstmwa": {
        "builder": zhang2021_blstm_attention_dnn, "paper": ZHANG2021_DCNN,
        "table": "Sec. 2.4.2-2.5; Table 3, DCNN-BLSTMwA (stage 2)", "input": FC7_SEQUENCE,
    },
    "zhang2021_dcnn_blstm": {
        "builder": zhang2021_blstm_attention_dnn, "paper": ZHANG2021_DCNN,
        "table": "Table 3, DCNN-BLSTM without attention (stage 2)", "input": FC7_SEQUENCE,
        "overrides": {"attention": False},
    },
    # Baseline of Tables 5-6.
    "zhang2021_2cnn_lstm": {
        "builder": zhang2021_2cnn_lstm, "paper": ZHANG2021_DCNN, "table": "Tables 5-6, baseline 2-CNN-LSTM",
        "input": ("3-channel log-mel of a 3 s utterance, [300, 64, 3] ([64, 300, 3] with `mel_first=True`, "
                  "as its recipe feeds it)"),
    },
}
