#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md: seed_resnet18 on one H100/H200 under KERAS_BACKEND=jax.
#
# The GPU machines have JAX but neither TensorFlow nor Keras, Hydra or OmegaConf, and fetch nothing,
# so the pure-Python wheels travel with the checkout (about 3.3 MB). MLflow stays behind: every
# command here runs with tracking.enabled=false and prints its results as JSON instead.
#
#   benchmarks/gpu.sh prepare   # here, with PyPI: fills .whl/ (git-ignored) for Python 3.12
#   benchmarks/gpu.sh run       # there, from the repository root, with .whl carried; results in $OUT
#   SLOW=10 PYTHON=/work/venv/bin/python benchmarks/gpu.sh smoke   # on a CPU: the same steps shrunk, no wheels
#
# Budget: about 6 minutes of GPU time after the machine starts; each step has its own time limit
# so that what finished comes back even if a later step runs long.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"  # the GPU image's python3 holds JAX

prepare() {
    rm -rf .whl && mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl keras==3.15.1 hydra-core==1.3.8 omegaconf==2.3.1 namex==0.1.0 optree==0.20.0
    python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3  # published as a source archive only
    ls -l .whl
}

run() {
    # Overrides appended to every command (later Hydra overrides win), and to the bench commands only.
    local shrink="${1:-}" shrink_bench="${2:-}" slow="${SLOW:-1}"  # SLOW multiplies the time limits
    if [[ -z "$shrink" ]]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    fi
    export PYTHONPATH="/tmp/site:$PWD/src" KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
    export SHRINK="$shrink"
    local -a extra
    read -ra extra <<< "$shrink $shrink_bench"
    local out="${OUT:-benchmarks/out}"
    mkdir -p "$out"
    {
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
        "$PYTHON" -c 'import sys, jax, keras; print("python", sys.version.split()[0], "jax", jax.__version__, "keras", keras.__version__, jax.devices())'
        "$PYTHON" -c 'from resnet_lab.runtime.machine import hardware; print("hardware ->", hardware())'
    } 2>&1 | tee "$out/device.txt"

    local -a bench=("$PYTHON" -c "from resnet_lab.cli import bench_main; bench_main()" model=seed_resnet18
                    trainer.precision=mixed_bf16 tracking.enabled=false bench.format=json)

    # 1. Batch 512, bf16, XLA, with the seed's subclassed model and a bare model.fit in the same process.
    timeout $((240 * slow)) "${bench[@]}" trainer.batch_size=512 bench.steps=50 bench.warmup_steps=3 bench.repeats=3 \
        'bench.baselines=[seed,raw_fit]' data.train_size=4096 "${extra[@]}" 2>"$out/bench-512.err" \
        | tee "$out/bench-512.json" || true
    # 2. Batch 1024 (the reference's best Keras-on-JAX figure).
    timeout $((120 * slow)) "${bench[@]}" trainer.batch_size=1024 bench.steps=30 bench.warmup_steps=3 bench.repeats=3 \
        data.train_size=4096 "${extra[@]}" 2>"$out/bench-1024.err" | tee "$out/bench-1024.json" || true
    # 3. End to end: train() over 50,000 in-memory 32x32x3 images, batch 512, three epochs with validation,
    #    with CIFAR's augmentation (pad-and-crop, flip) run on the device as layers of the model;
    #    train_images_per_s leaves out the first (compiling) epoch and validation.
    timeout $((180 * slow)) "$PYTHON" - >"$out/train-50k.json" 2>"$out/train-50k.err" <<'PY' || true
import json, os, sys
sys.path.insert(0, "tests")
from conftest import compose_config
from resnet_lab.train import train
cfg = compose_config("train", ["model=seed_resnet18", "data=synthetic", "data.train_size=50000",
                               "data.val_size=5000", "data.test_size=1000", "trainer.batch_size=512",
                               "trainer.epochs=3", "trainer.precision=mixed_bf16", "trainer.verbose=2",
                               "data.augment.crop_padding=4", "data.augment.flip=true",
                               "tracking.enabled=false", "optimizer=adam", "schedule=constant",
                               *os.environ["SHRINK"].split()])
print(json.dumps(train(cfg)))
PY
    cat "$out/train-50k.json"
}

case "${1:-run}" in
    prepare) prepare ;;
    run) run ;;
    smoke) run "trainer.batch_size=8 data.image_shape=[8,8,3] data.train_size=64 data.val_size=16 trainer.epochs=1" \
               "bench.steps=2 bench.warmup_steps=1 bench.repeats=1" ;;
    *) echo "usage: $0 prepare|run|smoke" >&2; exit 2 ;;
esac
