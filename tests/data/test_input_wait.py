"""data.input_wait times what a consumer waits for each element, and changes nothing else."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from data.input_wait import InputWait

PRODUCE_S = 0.04  # seconds to make one element in the slow pipelines


def _slow(count: int) -> tf.data.Dataset:
    def make(i):
        time.sleep(PRODUCE_S)
        return np.full((2, 3), i, np.uint8)

    numbers = tf.data.Dataset.range(count)
    return numbers.map(lambda i: tf.ensure_shape(tf.numpy_function(make, [i], tf.uint8), (2, 3)))


def test_a_consumer_of_a_slow_pipeline_waits_for_every_element() -> None:
    wait = InputWait()
    elements = iter(wait.wrap(_slow(10)))  # building the iterator is not waiting for input
    started = time.perf_counter()
    got = [x.numpy() for x in elements]
    elapsed = time.perf_counter() - started
    assert [int(x[0, 0]) for x in got] == list(range(10))  # the same elements, in order
    assert 10 * PRODUCE_S <= wait.seconds() <= elapsed  # nearly all of it was waiting
    assert wait.seconds() > 0.8 * elapsed


def test_a_prefetched_pipeline_that_keeps_up_costs_no_wait() -> None:
    wait = InputWait()
    elements = iter(wait.wrap(_slow(10).prefetch(10)))
    next(elements)  # the first element is waited for: nothing was ready yet
    first = wait.seconds()
    assert first >= PRODUCE_S
    time.sleep(12 * PRODUCE_S)  # the producer fills the buffer meanwhile: compute, not input
    assert sum(1 for _ in elements) == 9
    assert wait.seconds() - first < 2 * PRODUCE_S  # nine elements for under two's time


def test_the_wait_is_counted_inside_a_compiled_step_and_the_cardinality_kept() -> None:
    # Keras takes each batch inside its tf.function train step, as this step does.
    dataset = _slow(12).batch(3).apply(tf.data.experimental.assert_cardinality(4))
    wait = InputWait()
    wrapped = wait.wrap(dataset)
    assert int(wrapped.cardinality()) == 4
    assert wrapped.element_spec == dataset.element_spec
    elements = iter(wrapped)

    @tf.function
    def step(iterator):
        return tf.reduce_sum(tf.cast(next(iterator), tf.int32))

    sums = [int(step(elements)) for _ in range(4)]
    assert sums == [6 * 3, 6 * 12, 6 * 21, 6 * 30]
    assert wait.seconds() >= 12 * PRODUCE_S


def test_tuple_elements_pass_through_whole() -> None:
    images = np.arange(8, dtype=np.uint8).reshape(4, 2)
    masks = images[::-1].copy()
    dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(2)
    wait = InputWait()
    got = list(wait.wrap(dataset))
    assert len(got) == 2 and all(isinstance(e, tuple) and len(e) == 2 for e in got)
    np.testing.assert_array_equal(np.concatenate([e[0] for e in got]), images)
    np.testing.assert_array_equal(np.concatenate([e[1] for e in got]), masks)
    assert 0.0 <= wait.seconds() < 1.0
