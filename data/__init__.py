"""Data layer: sources -> verified Arrow shards -> tf.data. The only package that knows Arrow."""
