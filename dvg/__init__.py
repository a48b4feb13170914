"""DVG-Face (Fu et al., TPAMI 2021): dual variational generation of paired NIR-VIS faces.

- `dvg.models`: the attribute encoders E_N, E_V, the shared AdaIN decoder G with NIR and VIS
  heads, the identity sampler F_s, the per-domain discriminators D_N, D_V;
- `dvg.losses`: the angular orthogonal, distribution, pixel, pairwise identity-preserving and
  adversarial objectives and their weights;
- `dvg.sampler_task`: the `dvg-sampler` task (F_s on a frozen recognizer's features);
- `dvg.config`, `dvg.task`: the `dvg` task (the generator on paired, and unpaired VIS, images);
- `dvg.generate` and `dvg.commands`: `hfr generate-pairs`; `dvg.quickstart`: its quickstart stage.

It plugs into hfr through the entry points in `pyproject.toml` (`hfr.tasks`,
`hfr.generator_loaders`, `hfr.commands`, `hfr.quickstart`).
"""
