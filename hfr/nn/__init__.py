"""Reusable neural-network pieces shared by the recognizer and the generative methods.

- `hfr.nn.layers`: max-feature-map (MFM), LightCNN group and residual blocks, weight initialisation.
- `hfr.nn.gan`: the PatchGAN discriminator, the adversarial loss kinds (lsgan, bce, hinge), the L1 pixel loss.
- `hfr.nn.sizing`: width scaling, image-size, width and choice checks, parameter counts.
- `hfr.nn.ranges`: image value ranges ([0, 1] <-> [-1, 1]) and RGB -> gray / channel conversion.

Only `layers`' names are re-exported here; import the others from their modules (`hfr.nn.ranges`
imports kornia, which `import hfr.nn` should not pay for).
"""

from hfr.nn.layers import INIT_KINDS, MFM, Group, ResBlock, init_weights

__all__ = ["INIT_KINDS", "MFM", "Group", "ResBlock", "init_weights"]
