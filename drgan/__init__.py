"""DR-GAN (Tran, Yin, Liu, CVPR 2017 / TPAMI 2018): pose-disentangled encoder-decoder GAN.

- `drgan.models`: G_enc (CASIA-Net), G_dec, D, multi-image fusion;
- `drgan.losses`: the D and G objectives;
- `drgan.config`, `drgan.task`: the `drgan` training task (`hfr train-generator`);
- `drgan.export`: generator.pt; `drgan.recognizer`: G_enc as a recognizer (kind `drgan`);
- `drgan.rotate`: `hfr rotate`.
"""
