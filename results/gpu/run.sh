#!/usr/bin/env bash
# The GPU measurements behind results/gpu/*.jsonl (issue 15), in one call on a machine with
# JAX (CUDA) but neither TensorFlow nor Keras nor Hydra: run from the repository root with
# the wheels in .whl/ for Python 3.12: Keras 3 (keras, namex, optree) and what reads the
# key=value arguments (hydra-core, omegaconf, antlr4-python3-runtime, PyYAML, packaging);
# see the README's "GPU figures".
#   OUT=/some/folder bash results/gpu/run.sh
set -o pipefail
: "${OUT:?set OUT to the folder for the output}"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
# Grow GPU memory on demand (peaks are real, processes can share the card) and keep compiled
# steps on disk, so a later process of the same model and shape skips XLA's compile.
export XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_COMPILATION_CACHE_DIR=/tmp/jax-cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import jax, keras, hydra, omegaconf; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
} 2>&1 | tee "$OUT/device.txt" || exit 1
# Lists and mappings are quoted: unquoted, bash would glob [..] and expand {..,..}.
bench() { python3 -m models.bench_step backend=jax 'batches=[16]' precision=auto "$@"; }
# 1. images/s and peak memory per filters value at full size (the reference table).
bench size=256x1600 steps=20 'filters=[8,16,32,64]' | tee "$OUT/filters.jsonl"
# 2. packing: 1, 2 and 4 filters-8 trials on the one GPU, full size and a 256x512 crop.
for n in 2 4; do bench size=256x1600 steps=20 'filters=[8]' concurrent="$n"; done \
  | tee "$OUT/packing-256x1600.jsonl"
for n in 1 2 4; do bench size=256x512 steps=40 'filters=[8]' concurrent="$n"; done \
  | tee "$OUT/packing-256x512.jsonl"
# 3a. whether the small model's step has a cost that does not grow with the batch: batch 32.
python3 -m models.bench_step backend=jax 'batches=[32]' precision=auto size=256x1600 \
  steps=20 'filters=[8]' | tee "$OUT/batch32.jsonl"
# 3b. what mixed precision buys: filters 8 in float32.
bench size=256x1600 steps=20 'filters=[8]' precision=float32 | tee "$OUT/float32.jsonl"
# 4. the other three architectures at the paper's default widths (filters 8, expansion 6,
#    alpha 0.5), for the cost table.
for spec in "resunet filters:8" "invresunet expansion:6" "deeplabv3plus alpha:0.5"; do
  set -- $spec
  bench size=256x1600 steps=10 model="$1" "hparam={$2}"
done | tee "$OUT/architectures.jsonl"
