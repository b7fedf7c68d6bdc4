"""Keras architectures, blocks, losses and metrics. Knows neither Ray nor Arrow."""
