"""Constants that training, export and the runtime must agree on, each written once."""
from __future__ import annotations

# The letterbox canvas grey (YOLOX's and ultralytics' value). Part of the ONNX input contract:
# exported metadata records it and the runtime refuses a model that expects another.
PAD_VALUE = 114

# C in NWD = exp(−W2 / C), in pixels: the paper's value, AI-TOD's mean object size (flowdet.ops.nwd).
NWD_CONSTANT = 12.8

# The class of an ignore region's box in an augmentation Sample and in a training target row: neither
# an object to learn nor background (flowdet.detect.loss leaves the objectness of anchors inside it out).
IGNORE_CLASS = -1
