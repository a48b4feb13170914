"""Recognizer models: LightCNN-9/29/29v2 and import of the official LightCNN checkpoints."""

from hfr.models.lightcnn import (
    ARCHITECTURES,
    FEATURE_DIM,
    OFFICIAL_NUM_CLASSES,
    LightCNN,
    LightCNN9,
    LightCNN29,
    LightCNN29v2,
    build_lightcnn,
    count_parameters,
    fc_input_size,
    load_official,
)

__all__ = [
    "ARCHITECTURES",
    "FEATURE_DIM",
    "OFFICIAL_NUM_CLASSES",
    "LightCNN",
    "LightCNN9",
    "LightCNN29",
    "LightCNN29v2",
    "build_lightcnn",
    "count_parameters",
    "fc_input_size",
    "load_official",
]
