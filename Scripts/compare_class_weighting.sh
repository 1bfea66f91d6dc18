#!/usr/bin/env bash
# Chooses the class weighting of the shipped recipe by validation results: one short run per weighting (none, sqrt,
# balanced), the recipe's other options unchanged but on the small `mini` network, each evaluated by fer-eval on
# PublicTest (val). Prints accuracy, macro F1 and per-class recall side by side and writes
# Sources/EmotionModel/Resources/class-weighting.json, which Scripts/model_card.py turns into the card's table.
#
#   Scripts/compare_class_weighting.sh              10 epochs per weighting (about 25 minutes on 2 cores)
#   EPOCHS=4 Scripts/compare_class_weighting.sh     shorter
#
# Runs live in runs/weighting/<weighting>/ (git-ignored); an interrupted run resumes from its checkpoint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DATA=${FER2013:-data}
EPOCHS=${EPOCHS:-10}
OUT=runs/weighting
if [ ! -d "$DATA/fer2013/train" ] && [ ! -d "$DATA/train" ]; then
    echo "unpacking ../shared/datasets/fer2013.tar.gz into $DATA/ (git-ignored)"
    mkdir -p "$DATA"
    tar -xzf ../shared/datasets/fer2013.tar.gz -C "$DATA"
fi
swift build -c release --product fer-train --product fer-eval
BIN=$(swift build -c release --show-bin-path)

for weighting in none sqrt balanced; do
    run=$OUT/$weighting
    mkdir -p "$run"
    model=$run/mini.safetensors
    if [ -f "$run/mini.checkpoint.safetensors" ]; then
        "$BIN/fer-train" --data "$DATA" -o "$model" --resume --epochs "$EPOCHS"
    else
        # The shipped recipe (Scripts/train_shipped_model.sh) with the small network and the weighting under test.
        "$BIN/fer-train" --data "$DATA" -o "$model" \
            --arch mini --epochs "$EPOCHS" --batch-size 64 \
            --optimizer adamw --lr 1e-3 --min-lr 1e-5 --schedule cosine --warmup-epochs 2 --weight-decay 0.05 \
            --label-smoothing 0.1 --class-weighting "$weighting" --augment 1 --input-blur auto --seed 1
    fi
    "$BIN/fer-eval" --model "$model" --data "$DATA" --split val --report "$run/report" > "$run/eval.txt"
done

python3 - "$OUT" "$EPOCHS" <<'PY'
import json, sys
out, epochs = sys.argv[1], int(sys.argv[2])
runs = []
for weighting in ["none", "sqrt", "balanced"]:
    metrics = json.load(open(f"{out}/{weighting}/report/metrics.json"))
    runs.append({
        "weighting": weighting,
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "recall": {row["name"]: row["recall"] for row in metrics["per_class"]},
        "f1": {row["name"]: row["f1"] for row in metrics["per_class"]},
    })
summary = {"arch": "mini", "epochs": epochs, "split": "val (PublicTest)", "data": "restored", "runs": runs,
           "chosen_by": "macro_f1"}
summary["best"] = max(runs, key=lambda run: run["macro_f1"])["weighting"]
with open("Sources/EmotionModel/Resources/class-weighting.json", "w") as handle:
    json.dump(summary, handle, indent=1)
    handle.write("\n")
classes = list(runs[0]["recall"])
print(f"{'weighting':<10} {'accuracy':>8} {'macro F1':>8}  " + " ".join(f"{name[:7]:>7}" for name in classes))
for run in runs:
    print(f"{run['weighting']:<10} {run['accuracy']:8.3f} {run['macro_f1']:8.3f}  "
          + " ".join(f"{run['recall'][name]:7.3f}" for name in classes))
print(f"(per-class columns: recall; best macro F1: {summary['best']})")
PY
