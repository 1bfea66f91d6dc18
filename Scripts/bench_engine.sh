#!/usr/bin/env bash
# Our engine against PyTorch (CPU) and ONNX Runtime on the emotion CNN, side by side in one run, same threads.
# Prints training images/s and single-face inference latency with their ratios (goals of issues 3 and 5:
# training >= 0.7x PyTorch, inference <= PyTorch, per face <= 3 ms on one core), after proving that the
# reference runs the same network (logits of a trained model file agree within 1e-4).
#
#   Scripts/bench_engine.sh                      vgg, threads 1 and 2, 10 s of training steps, 500 inference calls
#   Scripts/bench_engine.sh --quick              3 s and 100 calls (a smoke run)
#   Scripts/bench_engine.sh --threads "1" --seconds 20 --iterations 2000 --arch mini --model FILE --no-build
#
# Setup is idempotent: builds `fer-bench` (release) and a venv (.venv-bench, or $FER_BENCH_VENV) with PyTorch
# (a CPU wheel when pip's find-links has one, else PyPI's torch without its CUDA packages, if that imports),
# onnxruntime, onnx, numpy and threadpoolctl. Without a working torch the reference is ONNX Runtime alone.
# Raw JSON lines go to .build/bench/engine-<time>.jsonl.
#
# Numbers are only clean on a quiet machine: the script lists what else is using the CPU before it starts and
# marks the table CONTENDED when other processes used the CPU in the second before it started (Scripts/cpu_busy.py).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ARCH=vgg
THREADS="1 2"
SECONDS_TRAIN=10
ITERATIONS=500
BATCH_SIZE=64
MODEL=Sources/EmotionModel/Resources/fer-vgg.safetensors
BUILD=1
VENV=${FER_BENCH_VENV:-.venv-bench}
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=$2; shift ;;
        --threads) THREADS=$2; shift ;;
        --seconds) SECONDS_TRAIN=$2; shift ;;
        --iterations) ITERATIONS=$2; shift ;;
        --batch-size) BATCH_SIZE=$2; shift ;;
        --model) MODEL=$2; shift ;;
        --quick) SECONDS_TRAIN=3; ITERATIONS=100 ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (try --help)" >&2; exit 64 ;;
    esac
    shift
done

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- 1. What else is running (numbers taken beside other work are contended) -----------------------------------
BUSY=$(python3 Scripts/cpu_busy.py --exclude $$)
if [ -n "$BUSY" ]; then
    say "other processes are using the CPU; the numbers below will be contended:"
    printf '%s\n' "$BUSY" >&2
fi

# --- 2. Build ---------------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    say "building fer-bench (release)"
    swift build -c release --product fer-bench >&2
fi
BENCH=$(swift build -c release --show-bin-path)/fer-bench
[ -x "$BENCH" ] || die "$BENCH not built (run without --no-build)"

# --- 3. Reference venv (idempotent) -----------------------------------------------------------------------------
PY="$VENV/bin/python"
# The reference side runs without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE: set for old OpenBLAS builds, they slow
# a current numpy's kernels. Our side keeps the environment as it is.
REF_ENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
if [ -n "${OPENBLAS_CORETYPE:-}${OPENBLAS_L2_SIZE:-}" ]; then
    say "reference side runs with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset (ours keeps them)"
fi
have() { [ -x "$PY" ] && "${REF_ENV[@]}" "$PY" -c "import $1" >/dev/null 2>&1; }
if ! have onnxruntime || ! have onnx || ! have numpy || ! have threadpoolctl; then
    say "setting up $VENV (onnxruntime, onnx, numpy, threadpoolctl)"
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade onnxruntime onnx numpy threadpoolctl >&2
fi
if ! have torch; then
    # A CPU build of torch in pip's find-links (e.g. /opt/wheels) avoids PyPI's CUDA build and its nvidia-* deps.
    WHEEL=""
    for dir in ${FER_TORCH_WHEELS:-} $("$PY" -m pip config get global.find-links 2>/dev/null || true) /opt/wheels; do
        [ -d "$dir" ] || continue
        WHEEL=$(ls "$dir"/torch-*+cpu-cp3*-manylinux*_x86_64.whl 2>/dev/null | sort -V | tail -1 || true)
        [ -n "$WHEEL" ] && break
    done
    if [ -n "$WHEEL" ]; then
        say "installing $WHEEL"
        "$PY" -m pip install -q "$WHEEL" >&2 || true
    else
        say "no CPU torch wheel found; trying PyPI's torch without its CUDA packages"
        "$PY" -m pip install -q --no-deps torch >&2 && \
            "$PY" -m pip install -q filelock typing-extensions sympy networkx jinja2 fsspec >&2 || true
    fi
    if ! have torch; then
        say "torch does not import on this machine; the reference is ONNX Runtime alone"
        "$PY" -m pip uninstall -q -y torch >&2 || true
    fi
fi
REF=("${REF_ENV[@]}" "$PY" Scripts/bench_engine_reference.py)

# --- 4. Measurements, ours and the reference alternating --------------------------------------------------------
OUT_DIR=.build/bench
mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/engine-$(date +%Y%m%d-%H%M%S).jsonl"
: > "$RESULTS"
record() { "$@" | tee -a "$RESULTS" >&2; }

"${REF[@]}" info | tee -a "$RESULTS" >&2
STATUS=0
if [ -f "$MODEL" ]; then
    say "same network: logits of $MODEL"
    "$BENCH" logits --model "$MODEL" --input-seed 7 --count 4 --input-out "$OUT_DIR/logits-input.f32" > "$OUT_DIR/logits-ours.json"
    cat "$OUT_DIR/logits-ours.json" >> "$RESULTS"
    "${REF[@]}" logits --ours "$OUT_DIR/logits-ours.json" | tee -a "$RESULTS" >&2 || STATUS=1
    MODEL_ARCH=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["arch"])' "$OUT_DIR/logits-ours.json")
else
    say "no model file at $MODEL: logits not checked"
    MODEL_ARCH=""
fi
# Inference runs on the trained file when it has the benchmarked architecture, else on random weights (same cost).
INFER_MODEL=()
[ "$MODEL_ARCH" = "$ARCH" ] && INFER_MODEL=(--model "$MODEL")

for threads in $THREADS; do
    say "training, $threads thread(s), ${SECONDS_TRAIN}s each"
    record "$BENCH" train --arch "$ARCH" --threads "$threads" --batch-size "$BATCH_SIZE" --seconds "$SECONDS_TRAIN"
    record "${REF[@]}" train --arch "$ARCH" --threads "$threads" --batch-size "$BATCH_SIZE" --seconds "$SECONDS_TRAIN"
    say "inference, $threads thread(s), $ITERATIONS calls each"
    record "$BENCH" infer --arch "$ARCH" --threads "$threads" --batch 1 --iterations "$ITERATIONS" "${INFER_MODEL[@]}"
    record "${REF[@]}" infer --arch "$ARCH" --threads "$threads" --batch 1 --iterations "$ITERATIONS" "${INFER_MODEL[@]}"
done

# --- 5. The table ---------------------------------------------------------------------------------------------
"$PY" Scripts/bench_engine_reference.py report "$RESULTS" --busy-before "$(printf "%s" "$BUSY" | grep -c . || true)"
echo
echo "raw results: $RESULTS"
[ "$STATUS" = 0 ] || die "the reference's logits differ from ours: not the same network"
