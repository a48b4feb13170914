"""TSGAN: two-stage de-occlusion then frontalization with mask attention and a dual triplet loss.

- `tsgan.models`: the U-Net generators G_d (de-occlusion) and G_f (frontalization) with the
  mask-attention module on their skips, and the PatchGAN discriminators D_d, D_f;
- `tsgan.losses`: pixel, symmetry, total-variation, identity, dual triplet and adversarial terms;
- `tsgan.data`, `tsgan.config`, `tsgan.task`: the `tsgan` training task (`hfr train-generator`);
- `tsgan.export`: generator.pt; `tsgan.deocclude` and `tsgan.commands`: `hfr deocclude`.

It plugs into hfr through the entry points in `pyproject.toml` (`hfr.tasks`,
`hfr.generator_loaders`, `hfr.commands`).
"""
