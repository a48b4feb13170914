"""DR-GAN (Tran, Yin, Liu, CVPR 2017 / TPAMI 2018): pose-disentangled encoder-decoder GAN.

- `drgan.models`: G_enc (CASIA-Net), G_dec, D, multi-image fusion;
- `drgan.losses`: the D and G objectives;
- `drgan.config`, `drgan.task`: the `drgan` training task (`hfr train-generator`);
- `drgan.export`: generator.pt; `drgan.recognizer`: G_enc as a recognizer (kind `drgan`);
- `drgan.rotate` and `drgan.commands`: `hfr rotate`; `drgan.frontalize`: frontal syntheses of
  probes for the benchmarks; `drgan.quickstart`: its quickstart stage.

It plugs into hfr through the entry points in `pyproject.toml` (`hfr.tasks`,
`hfr.recognizer_kinds`, `hfr.generator_readers`, `hfr.generator_loaders`, `hfr.commands`,
`hfr.quickstart`).
"""
