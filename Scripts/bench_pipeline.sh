#!/usr/bin/env bash
# The whole pipeline against its limits and its peer, side by side in one run on the same file (issue 7):
#   1. ffmpeg -i IN -c:v libx264 -preset P -c:a copy OUT     the decode + encode limit, P = fer-annotate's default
#   2. fer-annotate IN -o OUT.mp4 --preset P                 ours, annotated video (and its CSV)
#      (and again with --detect-every 3: the tracker carries faces between detections)
#   3. fer-annotate IN --no-video --csv OUT.csv              ours, analysis only
#   4. fer 25.10.3 (PyPI) Video.analyze, defaults            the peer: Haar detector, TFLite model
# Each is timed as a whole process (wall, user+sys CPU, peak resident memory), N times in turn, and the medians
# are printed with fps (input frames / wall seconds) and the ratios behind issue 7's goals: ours with video
# >= 0.85x ffmpeg's fps, fer's wall time >= 10x ours, peak memory well under fer's.
#
#   Scripts/bench_pipeline.sh                               WolfgangLanger_Pexels.mp4, 3 repeats
#   Scripts/bench_pipeline.sh -n 5 --input clip.mp4 --no-build
#   Scripts/bench_pipeline.sh --no-fer                      skip the peer (no venv set up)
#   Scripts/bench_pipeline.sh --height 1080 --no-fer        a 1080p copy of the input (ffmpeg scale, made first):
#                                                           the 1080p memory goal (ours with video <= 400 MB)
#   Scripts/bench_pipeline.sh --fer-no-save-frames          fer without writing/zipping a JPEG per frame
#   Scripts/bench_pipeline.sh --keep                        keep the outputs (else removed at the end)
#
# Setup is idempotent: builds fer-annotate (release; --no-build uses the existing binary) and a venv
# (.venv-fer, or $FER_PEER_VENV) with fer per issue 7's notes; when fer cannot be installed or imported its
# column is skipped with the reason. Raw JSON lines go to .build/bench/pipeline-<time>.jsonl, each tool's
# output and log to .build/bench/pipeline-<time>/.
#
# Numbers are only clean on a quiet machine: the script lists the processes that used the CPU in the second
# before it starts (Scripts/cpu_busy.py) and marks the table CONTENDED when there were any.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
INPUT=Samples/thirdparty/media/WolfgangLanger_Pexels.mp4
REPEATS=3
BUILD=1
FER=1
FER_OPTS=()
KEEP=0
PRESET=""
HEIGHT=""
VENV=${FER_PEER_VENV:-.venv-fer}
while [ $# -gt 0 ]; do
    case "$1" in
        -i|--input) INPUT=$2; shift ;;
        -n|--repeat|--repeats) REPEATS=$2; shift ;;
        --preset) PRESET=$2; shift ;;
        --height) HEIGHT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --no-fer) FER=0 ;;
        --fer-no-save-frames) FER_OPTS=(--no-save-frames) ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (try --help)" >&2; exit 64 ;;
    esac
    shift
done

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
HELPER=Scripts/bench_pipeline_fer.py
command -v python3 >/dev/null || die "python3 is needed"
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || die "ffmpeg and ffprobe are needed"
[ -f "$INPUT" ] || die "no input $INPUT (Scripts/setup.sh fetches the sample media)"
[[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || die "--repeat needs a positive number"
[ -z "$HEIGHT" ] || [[ "$HEIGHT" =~ ^[1-9][0-9]*$ ]] || die "--height needs a number of lines"

# --- 1. What else is running (numbers taken beside other work are contended) -----------------------------------
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average (1, 5, 15 min): $LOAD_START on $(nproc) cores"
BUSY_JSON=$(python3 "$HELPER" busy --exclude $$)
if [ "$BUSY_JSON" != "[]" ]; then
    say "WARNING: other processes are using the CPU; the numbers below will be contended:"
    python3 -c 'import json,sys; [print(f"    {p[\"pid\"]:>7} {p[\"pcpu\"]:5.0f}%  {p[\"comm\"]}") for p in json.loads(sys.argv[1])]' "$BUSY_JSON" >&2
fi

# --- 2. Build ---------------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    say "building fer-annotate (release)"
    swift build -c release --product fer-annotate >&2 || die "build failed (rerun with --no-build to use the existing binary)"
fi
OURS=$(swift build -c release --show-bin-path 2>/dev/null || echo .build/release)/fer-annotate
[ -x "$OURS" ] || die "$OURS not built (run without --no-build)"
# Same x264 preset on both sides: fer-annotate's own default unless --preset says otherwise.
if [ -z "$PRESET" ]; then
    PRESET=$("$OURS" --help 2>&1 | tr '\n' ' ' | sed -n 's/.*--preset <name>[^(]*(default: \([a-z]*\)).*/\1/p')
    [ -n "$PRESET" ] || { PRESET=veryfast; say "could not read --preset's default from --help; using $PRESET"; }
fi

# --- 3. The peer's venv (idempotent; any failure only skips the fer column) -------------------------------------
FER_SKIP=""
PY="$VENV/bin/python"
fer_imports() { [ -x "$PY" ] && "$PY" -c 'from fer.fer import FER; from fer.classes import Video; import tensorflow, cv2, moviepy.editor' >/dev/null 2>&1; }
setup_fer() {
    # OpenCV's wheels need these shared libraries from Debian.
    local missing=()
    for package in libgl1 libglib2.0-0; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages ${missing[*]} (for OpenCV)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 || return 1
    fi
    [ -x "$PY" ] || python3 -m venv "$VENV" >&2 || return 1
    # fer's own requirements pull facenet-pytorch (MTCNN, unused here) and full tensorflow: install without them.
    # opencv-contrib-python: the headless build lacks the GUI calls fer makes; OpenCV 5 loses cv2.data's Haar path.
    "$PY" -m pip install -q --no-deps fer==25.10.3 >&2 &&
        "$PY" -m pip install -q tensorflow-cpu 'opencv-contrib-python<5' pandas tqdm requests matplotlib 'moviepy<2' \
            ffmpeg-python Pillow >&2
}
if [ "$FER" = 0 ]; then
    FER_SKIP="--no-fer given"
elif ! fer_imports; then
    say "setting up $VENV with fer 25.10.3 (tensorflow-cpu, opencv-contrib-python<5, moviepy<2, ...)"
    if ! setup_fer || ! fer_imports; then
        FER_SKIP="fer 25.10.3 could not be installed or imported in $VENV (see the messages above)"
    fi
fi
[ -z "$FER_SKIP" ] || say "skipping the fer column: $FER_SKIP"

# --- 4. Measurements, the tools in turn, N rounds -------------------------------------------------------------
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR=.build/bench
WORK="$OUT_DIR/pipeline-$STAMP"
RESULTS="$OUT_DIR/pipeline-$STAMP.jsonl"
mkdir -p "$WORK"
: > "$RESULTS"
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"/*/ "$WORK"/*.mp4 "$WORK"/*.csv' EXIT
if [ -n "$HEIGHT" ]; then
    # Made once, before any timing; every tool then reads the same scaled file.
    say "scaling $INPUT to $HEIGHT lines (x264 veryfast, audio copied)"
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$INPUT" -vf "scale=-2:$HEIGHT" -c:v libx264 -preset veryfast \
        -c:a copy "$WORK/input-${HEIGHT}p.mp4" || die "could not scale $INPUT"
    INPUT="$WORK/input-${HEIGHT}p.mp4"
fi
python3 - "$RESULTS" "$PRESET" "$REPEATS" "$LOAD_START" "$BUSY_JSON" "$INPUT" "$OURS" <<'PY'
import json, platform, sys
results, preset, repeats, load, busy, source, ours = sys.argv[1:]
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
           platform.machine())
with open(results, "a") as handle:
    handle.write(json.dumps(dict(kind="meta", preset=preset, repeats=int(repeats), cpu=cpu, input=source, ours=ours,
                                 load_start=[float(v) for v in load.split()], busy=json.loads(busy))) + "\n")
PY
python3 "$HELPER" probe "$INPUT" --label input >> "$RESULTS"
[ -z "$FER_SKIP" ] || python3 -c 'import json,sys; print(json.dumps(dict(kind="skip", label="fer", reason=sys.argv[1])))' "$FER_SKIP" >> "$RESULTS"

ABS_INPUT=$(realpath "$INPUT")
STATUS=0
measure() { # label, repeat, command...
    local label=$1 repeat=$2; shift 2
    python3 "$HELPER" measure --label "$label" --repeat "$repeat" --out "$RESULTS" --log "$WORK/$label.log" -- "$@" || STATUS=1
}
for round in $(seq 1 "$REPEATS"); do
    say "round $round of $REPEATS (preset $PRESET)"
    rm -rf "$WORK/fer"
    measure ffmpeg "$round" ffmpeg -nostdin -hide_banner -loglevel error -y -i "$INPUT" -c:v libx264 -preset "$PRESET" \
        -c:a copy "$WORK/ffmpeg.mp4"
    measure ours-video "$round" "$OURS" "$INPUT" -o "$WORK/ours.mp4" --preset "$PRESET" --overwrite -q
    measure ours-video-every3 "$round" "$OURS" "$INPUT" -o "$WORK/ours-every3.mp4" --preset "$PRESET" --detect-every 3 \
        --overwrite -q
    measure ours-no-video "$round" "$OURS" "$INPUT" --no-video --csv "$WORK/ours-no-video.csv" --overwrite -q
    if [ -z "$FER_SKIP" ]; then
        measure fer "$round" "$PY" "$HELPER" fer "$ABS_INPUT" "$WORK/fer" "${FER_OPTS[@]}"
    fi
done

# What each produced (from the last round): frames and audio of the videos, and what fer analysed.
python3 "$HELPER" probe "$WORK/ffmpeg.mp4" --label ffmpeg >> "$RESULTS"
python3 "$HELPER" probe "$WORK/ours.mp4" --label ours-video >> "$RESULTS"
python3 "$HELPER" probe "$WORK/ours-no-video.csv" --label ours-no-video >> "$RESULTS"
if [ -z "$FER_SKIP" ] && [ -f "$WORK/fer/fer-info.json" ]; then
    python3 - "$WORK/fer/fer-info.json" >> "$RESULTS" <<'PY'
import json, sys
print(json.dumps(dict(kind="fer-info", **json.load(open(sys.argv[1])))))
PY
    python3 "$HELPER" probe "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["output"])' "$WORK/fer/fer-info.json")" \
        --label fer >> "$RESULTS"
fi

# --- 5. The table ---------------------------------------------------------------------------------------------
python3 "$HELPER" report "$RESULTS"
echo
echo "raw results: $RESULTS; logs in $WORK/$([ "$KEEP" = 1 ] && echo ' (outputs kept)')"
[ "$STATUS" = 0 ] || die "some runs failed: see the logs in $WORK"
