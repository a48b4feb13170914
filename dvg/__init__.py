"""DVG-Face (Fu et al., TPAMI 2021): dual variational generation of paired NIR-VIS faces.

Built so far: `dvg.models` (attribute encoders E_N, E_V, the shared AdaIN decoder G with NIR and
VIS heads, the identity sampler F_s, per-domain discriminators), `dvg.losses` (the objectives
and their weights), `dvg.sampler_task` (the `dvg-sampler` task that trains F_s on a frozen
recognizer's features) and `dvg.config` / `dvg.task` (the `dvg` task: the generator on paired
NIR-VIS images) and `dvg.generate` (`hfr generate-pairs`). Unpaired-VIS training and the
benchmark follow.
"""
