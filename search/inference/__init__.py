"""Inference, the room promotion and `search.predict` share: loading a promoted model and its
probabilities with flip TTA (`loading`), promotion's prediction jobs over the val and test
splits, one Ray task per model when a cluster is up (`jobs`), and the Kaggle-format submission
files `search.predict` writes (`submission`).
"""
