"""Registered variants of zhao2019's and zhao2018's Attention-BLSTM-FCN.

One entry per paper system or ablation row: the builder, the paper, the table and row
reproduced, the input at the paper defaults and the builder arguments the name binds
(:mod:`keras_ser.models.registry` registers every entry).
"""

from keras_ser.models.attention_blstm_fcn import zhao2018_attention_blstm_fcn, zhao2019_attention_blstm_fcn

ZHAO2019 = "zhao2019 Zhao et al. 2019, IEEE Access"
ZHAO2018 = "zhao2018 Zhao et al. 2018, Interspeech"
ZHAO2019_INPUT = "`[500, 40]` log-mel (frames, bands; FrontEnd preset `zhao2019`)"
ZHAO2018_INPUT = ("`[frames, 120]` log-mel + deltas (FrontEnd preset `zhao2018`, substitute for zhao2018's "
                  "743 YAAFE features: `num_features=743`)")

PRESETS = {
    # zhao2019, Table 5 (architectures) and Table 6 (mel bands).
    "zhao2019_attention_blstm_fcn": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019, "input": ZHAO2019_INPUT,
        "table": "Table 5, Attention- Two-layer BLSTM-FCN; Table 6, 40 mel bands",
    },
    "zhao2019_attention_blstm_fcn_1layer": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019, "input": ZHAO2019_INPUT,
        "table": "Table 5, Attention- One-layer BLSTM-FCN", "overrides": {"rnn_layers": 1},
    },
    "zhao2019_attention_blstm_fcn_3layer": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019, "input": ZHAO2019_INPUT,
        "table": "Table 5, Attention- Three-layer BLSTM-FCN", "overrides": {"rnn_layers": 3},
    },
    "zhao2019_attention_blstm_fcn_mel30": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019,
        "input": "`[500, 30]` log-mel (FrontEnd preset `zhao2019`, `n_mels=30`)",
        "table": "Table 6, 30 mel bands", "overrides": {"n_mels": 30},
    },
    "zhao2019_attention_blstm_fcn_mel60": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019,
        "input": "`[500, 60]` log-mel (FrontEnd preset `zhao2019`, `n_mels=60`)",
        "table": "Table 6, 60 mel bands", "overrides": {"n_mels": 60},
    },
    "zhao2019_attention_blstm_fcn_mel80": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019,
        "input": "`[500, 80]` log-mel (FrontEnd preset `zhao2019`, `n_mels=80`)",
        "table": "Table 6, 80 mel bands", "overrides": {"n_mels": 80},
    },
    "zhao2019_attention_blstm_fcn_mel100": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019,
        "input": "`[500, 100]` log-mel (FrontEnd preset `zhao2019`, `n_mels=100`)",
        "table": "Table 6, 100 mel bands", "overrides": {"n_mels": 100},
    },
    "zhao2019_fcn": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019, "input": ZHAO2019_INPUT,
        "table": "Table 5, FCNs", "overrides": {"use_rnn": False, "fcn_pooling": "average"},
    },
    "zhao2019_attention_fcn": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019, "input": ZHAO2019_INPUT,
        "table": "Table 5, Attention-FCN", "overrides": {"use_rnn": False},
    },
    "zhao2019_attention_lstm": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019, "input": ZHAO2019_INPUT,
        "table": "Table 5, Attention-LSTM", "overrides": {"use_fcn": False, "bidirectional": False},
    },
    "zhao2019_attention_blstm": {
        "builder": zhao2019_attention_blstm_fcn, "paper": ZHAO2019, "input": ZHAO2019_INPUT,
        "table": "Table 5, Attention-BLSTM", "overrides": {"use_fcn": False},
    },
    # zhao2018, Table 2 (architectures) and Table 3 (poolings).
    "zhao2018_attention_blstm_fcn": {
        "builder": zhao2018_attention_blstm_fcn, "paper": ZHAO2018, "input": ZHAO2018_INPUT,
        "table": "Table 2, Attention-BLSTM-FCN; Table 3, attention-pooling; Table 4",
    },
    "zhao2018_blstm_fcn_max_pooling": {
        "builder": zhao2018_attention_blstm_fcn, "paper": ZHAO2018, "input": ZHAO2018_INPUT,
        "table": "Table 3, global max-pooling", "overrides": {"rnn_pooling": "max"},
    },
    "zhao2018_blstm_fcn_average_pooling": {
        "builder": zhao2018_attention_blstm_fcn, "paper": ZHAO2018, "input": ZHAO2018_INPUT,
        "table": "Table 3, global average-pooling", "overrides": {"rnn_pooling": "average"},
    },
    "zhao2018_attention_lstm_fcn": {
        "builder": zhao2018_attention_blstm_fcn, "paper": ZHAO2018, "input": ZHAO2018_INPUT,
        "table": "Sec. 5.2 text, Attention-LSTM-FCN (named among the compared models, absent from Table 2)",
        "overrides": {"bidirectional": False},
    },
    "zhao2018_fcn": {
        "builder": zhao2018_attention_blstm_fcn, "paper": ZHAO2018, "input": ZHAO2018_INPUT,
        "table": "Table 2, FCNs", "overrides": {"use_rnn": False},
    },
    "zhao2018_attention_lstm": {
        "builder": zhao2018_attention_blstm_fcn, "paper": ZHAO2018, "input": ZHAO2018_INPUT,
        "table": "Table 2, Attention-LSTM", "overrides": {"use_fcn": False, "bidirectional": False},
    },
    "zhao2018_attention_blstm": {
        "builder": zhao2018_attention_blstm_fcn, "paper": ZHAO2018, "input": ZHAO2018_INPUT,
        "table": "Table 2, Attention-BLSTM", "overrides": {"use_fcn": False},
    },
}
