"""Data: the manifest format, SynthFace, real-dataset adapters, datasets, samplers, augmentation, alignment."""
