"""DVG-Face (Fu et al., TPAMI 2021): dual variational generation of paired NIR-VIS faces.

Not built yet: the models, losses and training task arrive with the DVG-Face issue.
"""
