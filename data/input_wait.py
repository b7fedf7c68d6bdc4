"""How long a dataset's consumer waited for its next element: the input-bound share of a trial.

Keras takes a tf.data element inside its compiled train step, where no Python timer can stand
around the iterator. So the timer is in the pipeline: `InputWait.wrap` zips the dataset with
a clock, a dataset whose every element is `tf.timestamp()` at the moment it is asked for. The
zip asks the clock first, then the dataset, and a last sequential map adds "now minus asked"
to a float64 total. That interval is exactly the consumer's wait: close to zero while the
prefetch buffer holds a ready batch, the whole production time of a batch when it does not.

The wrapped dataset must run its last two stages in the consumer's thread: tf.data's
`inject_prefetch` would put a buffer after the map and time the buffer instead, so it is
turned off here (the reader's pipelines end in their own prefetch). The clock's map and the
total's map are stateful, which keeps `map_parallelization` from running them ahead.

The total is read between steps (`seconds`), from a Keras callback: a step's wait is added
before the step computes, so a callback at a step's end sees it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InputWait"]


class InputWait:
    """A running total of the seconds consumers of the wrapped datasets waited for input."""

    def __init__(self) -> None:
        import tensorflow as tf

        self._total = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="input_wait_s")

    def wrap(self, dataset: Any) -> Any:
        """`dataset`, element for element (and its cardinality), timing every get-next."""
        import tensorflow as tf

        total = self._total
        clock = (
            tf.data.Dataset.from_tensors(tf.constant(0, tf.int8))
            .repeat()
            .map(lambda _: tf.timestamp())
        )

        def waited(asked: Any, element: Any) -> Any:
            added = total.assign_add(tf.timestamp() - asked)
            with tf.control_dependencies([added]):
                return tf.nest.map_structure(tf.identity, element)

        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        return tf.data.Dataset.zip(clock, dataset).map(waited).with_options(options)

    def seconds(self) -> float:
        """The seconds waited so far, over every dataset this timer wrapped."""
        return float(self._total.numpy())
