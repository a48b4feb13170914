"""DVG-Face (Fu et al., TPAMI 2021): dual variational generation of paired NIR-VIS faces.

Built so far: `dvg.models` (attribute encoders E_N, E_V, the shared AdaIN decoder G with NIR and
VIS heads, the identity sampler F_s, per-domain discriminators), `dvg.losses` (the objectives
and their weights) and `dvg.sampler_task` (the `dvg-sampler` task that trains F_s on a frozen
recognizer's features). The generator's training task, pair generation and the benchmark follow.
"""
