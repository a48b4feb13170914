"""Reusable neural-network layers: max-feature-map (MFM), LightCNN group and residual blocks,
and weight-initialisation helpers."""

from hfr.nn.layers import INIT_KINDS, MFM, Group, ResBlock, init_weights

__all__ = ["INIT_KINDS", "MFM", "Group", "ResBlock", "init_weights"]
