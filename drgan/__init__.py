"""DR-GAN (Tran, Yin, Liu, CVPR 2017 / TPAMI 2018): pose-disentangled encoder-decoder GAN.

Not built yet: the models, losses and training task arrive with the DR-GAN issue.
"""
