"""Registered variants of zhang2021_multicnn's 1D, 2D and 3D CNNs.

One entry per paper system or table row: the builder, the paper, the table and row
reproduced, the input at the paper defaults and the builder arguments the name binds
(:mod:`keras_ser.models.registry` registers every entry).
"""

from keras_ser.models.multicnn import zhang2021_cnn1d, zhang2021_cnn2d, zhang2021_cnn3d, zhang2021_multicnn_utterance

ZHANG2021_MULTICNN = "zhang2021_multicnn Zhang, Tao, Chuang, Zhao. Speech Communication 127, 2021"
IMAGE_INPUT = "64x64x3 log-mel segment resized to 227x227x3, [0, 255]"
IMAGE_INPUT_224 = "64x64x3 log-mel segment resized to 227x227x3 (resized to 224 inside), [0, 255]"

PRESETS = {
    # 1D CNN on raw-wave segments: Table 1, and Table 4's segment lengths.
    "zhang2021_multicnn_1d": {
        "builder": zhang2021_cnn1d, "paper": ZHANG2021_MULTICNN,
        "table": "Table 1; Table 4, 625 samples, 4 conv",
        "input": "625-sample raw-wave segment at 22.05 kHz, [625, 1]", "overrides": {"segment_length": 625},
    },
    "zhang2021_multicnn_1d_125": {
        "builder": zhang2021_cnn1d, "paper": ZHANG2021_MULTICNN,
        "table": "Table 1; Table 4, 125 samples, 3 conv",
        "input": "125-sample raw-wave segment at 22.05 kHz, [125, 1]", "overrides": {"segment_length": 125},
    },
    "zhang2021_multicnn_1d_3125": {
        "builder": zhang2021_cnn1d, "paper": ZHANG2021_MULTICNN,
        "table": "Table 1; Table 4, 3125 samples, 5 conv",
        "input": "3125-sample raw-wave segment at 22.05 kHz, [3125, 1]", "overrides": {"segment_length": 3125},
    },
    "zhang2021_multicnn_1d_15625": {
        "builder": zhang2021_cnn1d, "paper": ZHANG2021_MULTICNN,
        "table": "Table 1; Table 4, 15625 samples, 6 conv",
        "input": "15625-sample raw-wave segment at 22.05 kHz, [15625, 1]", "overrides": {"segment_length": 15625},
    },
    # 2D CNN: AlexNet (Table 2) and the backbones of Table 5.
    "zhang2021_multicnn_2d": {
        "builder": zhang2021_cnn2d, "paper": ZHANG2021_MULTICNN, "table": "Table 2; Table 5, AlexNet",
        "input": IMAGE_INPUT,
    },
    "zhang2021_alexnet": {
        "builder": zhang2021_cnn2d, "paper": f"{ZHANG2021_MULTICNN}; zhang2021_dcnn Sec. 2.4.1",
        "table": "zhang2021_multicnn Table 2 (AlexNet fine-tuned on log-mel segments)", "input": IMAGE_INPUT,
    },
    "zhang2021_multicnn_2d_vgg16": {
        "builder": zhang2021_cnn2d, "paper": ZHANG2021_MULTICNN, "table": "Table 5, VGG-16",
        "input": IMAGE_INPUT_224, "overrides": {"backbone": "vgg16"},
    },
    "zhang2021_multicnn_2d_resnet50": {
        "builder": zhang2021_cnn2d, "paper": ZHANG2021_MULTICNN, "table": "Table 5, ResNet-50",
        "input": IMAGE_INPUT_224, "overrides": {"backbone": "resnet50"},
    },
    # 3D CNN on stacked log-mel segments: Table 3, and Table 6's video lengths.
    "zhang2021_multicnn_3d": {
        "builder": zhang2021_cnn3d, "paper": ZHANG2021_MULTICNN,
        "table": "Table 3; Table 6, video length 4, Conv1 [8, 8, 4]",
        "input": "4 stacked 64x64x3 log-mel segments, [64, 64, 4, 3]", "overrides": {"video_length": 4},
    },
    "zhang2021_multicnn_3d_6": {
        "builder": zhang2021_cnn3d, "paper": ZHANG2021_MULTICNN,
        "table": "Table 3; Table 6, video length 6, Conv1 [8, 8, 6]",
        "input": "6 stacked 64x64x3 log-mel segments, [64, 64, 6, 3]", "overrides": {"video_length": 6},
    },
    "zhang2021_multicnn_3d_8": {
        "builder": zhang2021_cnn3d, "paper": ZHANG2021_MULTICNN,
        "table": "Table 3; Table 6, video length 8, Conv1 [8, 8, 8]",
        "input": "8 stacked 64x64x3 log-mel segments, [64, 64, 8, 3]", "overrides": {"video_length": 8},
    },
    "zhang2021_multicnn_3d_10": {
        "builder": zhang2021_cnn3d, "paper": ZHANG2021_MULTICNN,
        "table": "Table 3; Table 6, video length 10, Conv1 [8, 8, 10]",
        "input": "10 stacked 64x64x3 log-mel segments, [64, 64, 10, 3]", "overrides": {"video_length": 10},
    },
    # Utterance level: the segment scores averaged (Sec. 2.3).
    "zhang2021_multicnn_1d_utterance": {
        "builder": zhang2021_multicnn_utterance, "paper": ZHANG2021_MULTICNN,
        "table": "Sec. 2.3 / Table 7, 1D CNNs (segment scores averaged)",
        "input": "[segments, 625, 1] raw-wave segments", "overrides": {"branch": "1d"},
    },
    "zhang2021_multicnn_2d_utterance": {
        "builder": zhang2021_multicnn_utterance, "paper": ZHANG2021_MULTICNN,
        "table": "Sec. 2.3 / Table 7, 2D CNNs (segment scores averaged)",
        "input": "[segments, 227, 227, 3] log-mel images", "overrides": {"branch": "2d"},
    },
    "zhang2021_multicnn_3d_utterance": {
        "builder": zhang2021_multicnn_utterance, "paper": ZHANG2021_MULTICNN,
        "table": "Sec. 2.3 / Table 7, 3D CNNs (segment scores averaged)",
        "input": "[stacks, 64, 64, 4, 3] stacked log-mel segments", "overrides": {"branch": "3d"},
    },
}
