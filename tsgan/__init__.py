"""TSGAN: two-stage de-occlusion then frontalization with mask attention and a dual triplet loss.

Not built yet: the models, losses and training task arrive with the TSGAN issue.
"""
