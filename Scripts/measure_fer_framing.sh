#!/usr/bin/env bash
# Measures how FER2013 frames a face relative to each detector's box, for DetectorFraming (FaceDetection):
# 30 PublicTest images per class, upscaled 4x (bicubic) and padded to 384x384 with grey so the detector
# sees some context, then fer-annotate on each; prints the median FER crop side / detector box's larger side
# and the vertical offset of the box centre from the image centre (in box heights), for each BlazeFace model
# and for MTCNN, and the spread around those medians (the jitter fer-train's augmentation must cover).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${FER2013:-data/fer2013}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$DATA/val" "$WORK" <<'PY'
import os, random, subprocess, sys
root, work = sys.argv[1], sys.argv[2]
random.seed(0)
index = 0
for name in sorted(os.listdir(root)):
    files = sorted(os.listdir(os.path.join(root, name)))
    for file in random.sample(files, min(30, len(files))):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", os.path.join(root, name, file), "-vf",
                        "scale=192:192:flags=bicubic,pad=384:384:96:96:color=gray", f"{work}/{index:03d}.png"], check=True)
        index += 1
PY
for model in short full back mtcnn; do
    if [ "$model" = mtcnn ]; then detector=(--detector mtcnn); else detector=(--detector blazeface --blazeface-model "$model"); fi
    for image in "$WORK"/*.png; do
        .build/release/fer-annotate "$image" --no-video --csv "${image%.png}.$model.csv" --overwrite -q \
            --det-threshold 0.5 --min-face 20 "${detector[@]}"
    done
    python3 - "$WORK" "$model" <<'PY'
import csv, glob, statistics, sys
work, model = sys.argv[1], sys.argv[2]
scales, offsets, sideways, total = [], [], [], 0
for path in sorted(glob.glob(f"{work}/*.{model}.csv")):
    total += 1
    faces = [row for row in csv.DictReader(open(path)) if row["face_id"]]
    if len(faces) != 1:
        continue
    x, y, w, h = (float(faces[0][key]) for key in ("x", "y", "w", "h"))
    scales.append(192 / max(w, h))
    offsets.append((y - 96 + h / 2 - 96) / h)
    sideways.append((x - 96 + w / 2 - 96) / w)
def spread(values, scale=1.0):
    deciles = statistics.quantiles(values, n=10)
    return f"{(deciles[0] * scale):+.3f}..{(deciles[-1] * scale):+.3f}"
median_scale = statistics.median(scales)
print(f"{model}: one face in {len(scales)}/{total}; crop side / box side median {median_scale:.3f}; "
      f"box centre below image centre by {statistics.median(offsets):.3f} box heights")
# The spread around those medians is the misalignment the classifier meets in video, to size the training
# jitter by: zoom as a fraction of the crop side, shifts as fractions of the crop side (10th..90th percentile).
print(f"    jitter (10th..90th percentile): zoom {spread([s / median_scale - 1 for s in scales])}, "
      f"vertical shift {spread([o - statistics.median(offsets) for o in offsets], 1 / median_scale)}, "
      f"horizontal shift {spread([o - statistics.median(sideways) for o in sideways], 1 / median_scale)} of the crop side")
PY
done
