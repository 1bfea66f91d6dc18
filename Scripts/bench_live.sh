#!/usr/bin/env bash
# Sustained real-time check of fer-annotate on live RTSP streams from a loopback server.
#
#   Scripts/bench_live.sh                    720p30 and 1080p30, 2 minutes each, analysis only (--no-video)
#   Scripts/bench_live.sh --seconds 30       shorter
#   Scripts/bench_live.sh --video            also write the annotated video (fragmented MP4, preset veryfast)
#   Scripts/bench_live.sh --sizes 1280x720   one size only
#
# Serves WolfgangLanger_Pexels.mp4, scaled and re-encoded at 30 fps (keyframe every second, no B-frames,
# like a camera), with Scripts/rtsp_test_server.py (GStreamer, real-time pace), and prints per stream:
# frames read and analysed, analysed fps, dropped and late frames, latency from frame arrival to its
# CSV row (p50/p95/max), and the source lag (how far the reader fell behind the stream's own clock;
# a growing lag would be a backlog). Goals (issue 8): 720p30 with every frame analysed and p95 under
# 100 ms; 1080p30 with no backlog growth.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_RUN=120
SIZES="1280x720 1920x1080"
FPS=30
VIDEO=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --sizes) SIZES=$2; shift 2 ;;
        --fps) FPS=$2; shift 2 ;;
        --video) VIDEO=1; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (try --help)" >&2; exit 64 ;;
    esac
done

BINARY=${FER_ANNOTATE_BINARY:-.build/release/fer-annotate}
SAMPLE=Samples/thirdparty/media/WolfgangLanger_Pexels.mp4
[ -x "$BINARY" ] || { echo "error: no $BINARY: run swift build -c release --product fer-annotate" >&2; exit 1; }
[ -f "$SAMPLE" ] || { echo "error: no $SAMPLE: run Scripts/setup.sh" >&2; exit 1; }
/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
    || { echo "error: GStreamer's RTSP server for Python is missing: run Scripts/setup.sh" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-live.XXXXXX")
CACHE=${FER_BENCH_CACHE:-${TMPDIR:-/tmp}/fer-bench-live-cache}
mkdir -p "$CACHE"
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "fer-annotate live benchmark: ${SECONDS_PER_RUN}s per stream at ${FPS} fps, $(nproc) cores," \
     "$([ "$VIDEO" -eq 1 ] && echo "annotated video written" || echo "analysis only (--no-video)")"
RESULTS=()
for SIZE in $SIZES; do
    # Each session of the server lasts the run plus a margin; the re-encoded copy is cached between runs.
    LENGTH=$((SECONDS_PER_RUN + 30))
    COPY="$CACHE/wolfgang-${SIZE}-${FPS}-${LENGTH}s.mp4"
    [ -f "$COPY" ] || echo "preparing a ${SIZE} ${FPS} fps copy (${LENGTH} s; once, cached in $CACHE)..."
    /usr/bin/python3 Scripts/rtsp_test_server.py --input "$SAMPLE" --size "$SIZE" --fps "$FPS" \
        --seconds "$LENGTH" --cache "$COPY" > "$WORK/server.out" 2> "$WORK/server.err" &
    SERVER=$!
    for _ in $(seq 1 1200); do grep -q READY "$WORK/server.out" 2>/dev/null && break; sleep 0.5; done
    URL=$(awk '/READY/ {print $2}' "$WORK/server.out")
    [ -n "$URL" ] || { cat "$WORK/server.err" >&2; echo "error: the RTSP server did not start" >&2; exit 1; }

    OUTPUT=(--no-video)
    [ "$VIDEO" -eq 1 ] && OUTPUT=(-o "$WORK/out-$SIZE.mp4")
    echo "streaming $SIZE from $URL for ${SECONDS_PER_RUN}s..."
    "$BINARY" "$URL" "${OUTPUT[@]}" --csv "$WORK/out-$SIZE.csv" --json "$WORK/out-$SIZE.json" \
        --duration "$SECONDS_PER_RUN" --overwrite --quiet 2> "$WORK/err-$SIZE.txt" \
        || { cat "$WORK/err-$SIZE.txt" >&2; exit 1; }
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    RESULTS+=("$SIZE:$WORK/out-$SIZE.json")
done

python3 - "$FPS" "${RESULTS[@]}" <<'PY'
import json, sys
fps = float(sys.argv[1])
print()
print(f"{'stream':<12}{'read':>7}{'analysed':>10}{'share':>7}{'fps':>7}{'dropped':>9}{'late':>6}"
      f"{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'lag max s':>11}")
for item in sys.argv[2:]:
    size, path = item.split(":", 1)
    live = json.load(open(path))["live"]
    latency = live["latency_ms"]
    read, analysed = live["frames_read"], live["frames_analyzed"]
    share = analysed / read if read else 0
    print(f"{size + 'p' + str(int(fps)):<12}{read:>7}{analysed:>10}{share:>7.1%}{live['analyzed_fps']:>7.1f}"
          f"{live['frames_dropped']:>9}{live['frames_late']:>6}{latency['p50'] or 0:>8.0f}{latency['p95'] or 0:>8.0f}"
          f"{latency['max'] or 0:>8.0f}{live['source_lag']['max_s']:>11.2f}")
print()
print("share: analysed / read frames; lag: how far arrivals fell behind the stream clock (a backlog grows it).")
PY
