"""Evaluation protocols (cross-modal, cross-pose, pair verification) and their reports."""
