#!/usr/bin/env bash
# Fuzzes the readers of files users pass in (libFuzzer, AddressSanitizer): the safetensors reader, our TFLite
# FlatBuffer reader and the model-file metadata parser, each seeded with real files, for SECONDS each (default 60).
# Prints executions and crashes per target; crashing inputs are kept in runs/fuzz/TARGET/ (git-ignored): each
# becomes a regression test with its input under Tests/ once fixed.
#
#   Scripts/fuzz.sh [SECONDS] [TARGET...]        TARGET: safetensors, tflite, model-metadata (default: all)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(safetensors tflite model-metadata)

# Debug (bounds-checked) code with libFuzzer's coverage and AddressSanitizer, in a build folder of its own. Our
# main() calls LLVMFuzzerRunDriver, so libFuzzer's own main is never linked in. lld, because gold fails on the
# sanitized objects' debug information.
swift build -c debug --scratch-path .build-fuzz --product fer-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld \
    -Xlinker -lstdc++ 2>&1 \
    | grep -vE "^warning: 'swift-distributed-tracing'|CMakeLists.txt|Cannot export local symbol" | tail -n 3
BINARY=.build-fuzz/debug/fer-fuzz

seed() {  # seed TARGET: fills runs/fuzz/TARGET/corpus with real files (small ones as they are)
    local corpus=runs/fuzz/$1/corpus
    mkdir -p "$corpus"
    case "$1" in
        safetensors)
            cp Tests/FaceDetectionTests/Fixtures/*.safetensors "$corpus/" 2>/dev/null || true
            python3 - "$corpus" <<'PY'
import json, struct, sys
# Small real-format files: a header with metadata and two tensors of each dtype the reader knows.
for index, dtype in enumerate(["F32", "U8", "F64", "I64"]):
    size = {"F32": 4, "U8": 1, "F64": 8, "I64": 8}[dtype]
    header = {"__metadata__": {"format": "seed"}, "a": {"dtype": dtype, "shape": [2, 3], "data_offsets": [0, 6 * size]},
              "b": {"dtype": dtype, "shape": [4], "data_offsets": [6 * size, 10 * size]}}
    text = json.dumps(header).encode()
    open(f"{sys.argv[1]}/seed{index}.safetensors", "wb").write(struct.pack("<Q", len(text)) + text + bytes(10 * size))
PY
            ;;
        tflite)
            cp Samples/thirdparty/models/face_detection_short_range.tflite "$corpus/" ;;
        model-metadata)
            python3 - "$corpus" <<'PY'
import json, struct, sys
path = "Sources/EmotionModel/Resources/fer-vgg.safetensors"
with open(path, "rb") as handle:
    length = struct.unpack("<Q", handle.read(8))[0]
    metadata = json.loads(handle.read(length))["__metadata__"]
open(f"{sys.argv[1]}/shipped.json", "w").write(json.dumps(metadata))
PY
            ;;
    esac
}

for target in "${TARGETS[@]}"; do
    seed "$target"
    mkdir -p "runs/fuzz/$target/crashes"
    log=runs/fuzz/$target/last.log
    set +e
    "$BINARY" "$target" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -max_len=1100000 -rss_limit_mb=2048 \
        -artifact_prefix="runs/fuzz/$target/crashes/" "runs/fuzz/$target/corpus" > "$log" 2>&1
    status=$?
    set -e
    executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    crashes=$(find "runs/fuzz/$target/crashes" -type f | wc -l)
    echo "$target: $executions executions in ${SECONDS_EACH} s, exit $status, $crashes crashing input(s) in runs/fuzz/$target/crashes"
done
