#!/usr/bin/env bash
# The recipe of the shipped emotion model: every hyperparameter is written here, and the run is ours (fer-train).
#
#   Scripts/train_shipped_model.sh            train, or resume the committed run where it stopped
#   FER2013=/path/to/fer2013 Scripts/train_shipped_model.sh
#   Scripts/train_shipped_model.sh --publish  ship the best model so far (interim), with its evaluation and card
#
# Trains on FER2013 Training (train/), selects on PublicTest (val/). A run takes about 4 hours on 2 cores
# (~130 images/s, 225 s an epoch), so it spans sessions: Ctrl-C (or SIGTERM) saves an exact checkpoint in
# Scripts/training/, commit that folder, and the next call resumes bit for bit. When the run is complete the
# best model goes to Sources/EmotionModel/Resources/ and is evaluated (with and without test-time augmentation).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DATA=${FER2013:-data}
RUN=Scripts/training
MODEL=$RUN/fer-vgg.safetensors
CHECKPOINT=$RUN/fer-vgg.checkpoint.safetensors
EPOCHS=60

if [ ! -d "$DATA/fer2013/train" ] && [ ! -d "$DATA/train" ]; then
    echo "unpacking ../shared/datasets/fer2013.tar.gz into $DATA/ (git-ignored)"
    mkdir -p "$DATA"
    tar -xzf ../shared/datasets/fer2013.tar.gz -C "$DATA"
fi
swift build -c release --product fer-train
swift build -c release --product fer-eval

# The best model so far becomes the default: weights, training log, fer-eval reports without and with test-time
# augmentation, and the model card generated from them (Sources/EmotionModel/Resources/).
publish() {
    local resources=Sources/EmotionModel/Resources
    cp "$RUN/fer-vgg.log.csv" "$resources/fer-vgg.log.csv"
    # The weights as fer-train selected them (best PublicTest accuracy), then the same file with TTA.
    cp "$MODEL" "$resources/fer-vgg.safetensors"
    .build/release/fer-eval --model "$resources/fer-vgg.safetensors" --data "$DATA" --split val \
        --log "$RUN/fer-vgg.log.csv" --report "$resources/report"
    .build/release/fer-eval --model "$resources/fer-vgg.safetensors" --data "$DATA" --split val --tta \
        --log "$RUN/fer-vgg.log.csv" --report "$resources/report-tta"
    python3 Scripts/model_card.py --total-epochs "$EPOCHS"
}
if [ "${1:-}" = "--publish" ]; then
    publish
    exit 0
fi

mkdir -p "$RUN"
if [ -f "$CHECKPOINT" ]; then
    # Options come from the checkpoint; only the epoch count may be extended.
    .build/release/fer-train --data "$DATA" -o "$MODEL" --resume --epochs "$EPOCHS"
else
    .build/release/fer-train --data "$DATA" -o "$MODEL" \
        --arch vgg --epochs "$EPOCHS" --batch-size 64 \
        --optimizer adamw --lr 1e-3 --min-lr 1e-5 --schedule cosine --warmup-epochs 2 --weight-decay 0.05 \
        --label-smoothing 0.1 --class-weighting sqrt --augment 1 --input-blur 0 --seed 1
fi

# Reached only when the run finished all epochs (an interrupted run exits non-zero above).
publish
