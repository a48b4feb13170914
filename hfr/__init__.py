"""hfr: heterogeneous (NIR-VIS) and pose-invariant face recognition with generative models.

The core package holds what every method shares: configs, errors, the dataset format
(manifests), the SynthFace renderer, real-dataset adapters, augmentation, alignment and plots. The
generators live in the sibling packages `drgan`, `dvg` and `tsgan`.
"""

__version__ = "0.1.0"
