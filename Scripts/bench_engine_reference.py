#!/usr/bin/env python3
"""Reference side of Scripts/bench_engine.sh: the emotion CNN of Sources/EmotionModel/Network/Architecture.swift
in PyTorch (CPU) and ONNX Runtime, measured the way `fer-bench` measures ours. One JSON line per measurement.

  bench_engine_reference.py train  --arch vgg --threads N --batch-size 64 --seconds S
  bench_engine_reference.py infer  --arch vgg --threads N --batch 1 --iterations I [--model FILE]
  bench_engine_reference.py logits --ours OURS.json        (the line `fer-bench logits` printed)
  bench_engine_reference.py info                           (torch/ORT versions, BLAS kernels per threadpoolctl)
  bench_engine_reference.py report RESULTS.jsonl           (the side-by-side table with ratios)

`logits` loads the same safetensors file (json + numpy, no safetensors package), runs the input that fer-bench
wrote through PyTorch (float32 and float64) and ONNX Runtime, and compares with our logits: the proof that
both sides time the same network.

Either engine may be missing (torch needs its CPU wheel); its measurements then print as {"skipped": reason}.
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np

TOLERANCE = 1e-4  # max |ours - reference| on logits, float32 against float32

# Mirrors ArchitectureConfig.named(_:) in Sources/EmotionModel/Network/Architecture.swift.
ARCHITECTURES = {
    "mini": dict(name="mini", widths=[16, 32, 64, 128], convolutionsPerStage=1, hidden=128, dropout=0.3,
                 inputSize=48, classes=7),
    "vgg": dict(name="vgg", widths=[32, 64, 128, 256], convolutionsPerStage=2, hidden=256, dropout=0.4,
                inputSize=48, classes=7),
}

try:
    import torch
    from torch import nn
    TORCH_ERROR = None
except Exception as error:  # noqa: BLE001 - any import failure means "no PyTorch here"
    torch = None
    TORCH_ERROR = f"{type(error).__name__}: {error}"

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import onnxruntime as ort
    ORT_ERROR = None
except Exception as error:  # noqa: BLE001
    ort = None
    ORT_ERROR = f"{type(error).__name__}: {error}"


def emit(**fields):
    print(json.dumps(fields, sort_keys=True), flush=True)


def load_average():
    try:
        with open("/proc/loadavg") as handle:
            return float(handle.read().split()[0])
    except OSError:
        return -1.0


def latency_summary(seconds):
    ordered = sorted(seconds)

    def quantile(q):
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
    return dict(p50_ms=quantile(0.5) * 1e3, p95_ms=quantile(0.95) * 1e3,
                mean_ms=sum(seconds) / len(seconds) * 1e3, min_ms=ordered[0] * 1e3)


# --- the model file ------------------------------------------------------------------------------------------

def read_safetensors(path):
    """(metadata, {name: float32 array}) from a safetensors file: 8-byte length, JSON header, raw tensors."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
        body = handle.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            continue
        start, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(entry["shape"]).copy()
    return metadata, tensors


def architecture_of(metadata):
    return json.loads(metadata["architecture"])


# --- PyTorch -------------------------------------------------------------------------------------------------

def torch_network(arch):
    """Same layers in the same order as ArchitectureConfig.makeNetwork, so state-dict names match ours."""
    layers, channels, side = [], 1, arch["inputSize"]
    for width in arch["widths"]:
        for _ in range(arch["convolutionsPerStage"]):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2))
        side //= 2
    layers += [nn.Flatten(), nn.Dropout(arch["dropout"]), nn.Linear(channels * side * side, arch["hidden"]), nn.ReLU(),
               nn.Dropout(arch["dropout"]), nn.Linear(arch["hidden"], arch["classes"])]
    return nn.Sequential(*layers)


def load_into(network, tensors):
    prefix = "network."
    state = {name[len(prefix):]: torch.from_numpy(value) for name, value in tensors.items() if name.startswith(prefix)}
    expected = set(network.state_dict()) - {k for k in network.state_dict() if k.endswith("num_batches_tracked")}
    missing = expected - set(state)
    if missing:
        raise SystemExit(f"model file lacks {sorted(missing)[:5]}")
    network.load_state_dict(state, strict=False)


def fused_for_inference(network):
    """Copy with every BatchNorm folded into its convolution (as EmotionClassifier does), in eval mode."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    layers = list(network.eval())
    fused, index = [], 0
    while index < len(layers):
        if isinstance(layers[index], nn.Conv2d) and index + 1 < len(layers) and isinstance(layers[index + 1], nn.BatchNorm2d):
            fused.append(fuse_conv_bn_eval(layers[index], layers[index + 1]))
            index += 2
        else:
            fused.append(layers[index])
            index += 1
    return nn.Sequential(*fused).eval()


def set_torch_threads(threads):
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def parameter_count(network):
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


# --- ONNX Runtime --------------------------------------------------------------------------------------------

def onnx_graph(arch, tensors):
    """The network as an ONNX graph built with onnx.helper (no exporter needed): Conv, BatchNormalization
    (ORT folds it), Relu, MaxPool, Flatten, Gemm."""
    nodes, initializers = [], []

    def constant(name, value):
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    current, index, channels = "input", 0, 1
    for width in arch["widths"]:
        for _ in range(arch["convolutionsPerStage"]):
            conv, norm = index, index + 1
            nodes.append(helper.make_node("Conv", [current, constant(f"w{conv}", tensors[f"network.{conv}.weight"])],
                                          [f"c{conv}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("BatchNormalization", [
                f"c{conv}", constant(f"g{norm}", tensors[f"network.{norm}.weight"]),
                constant(f"b{norm}", tensors[f"network.{norm}.bias"]),
                constant(f"m{norm}", tensors[f"network.{norm}.running_mean"]),
                constant(f"v{norm}", tensors[f"network.{norm}.running_var"])], [f"n{norm}"], epsilon=1e-5))
            nodes.append(helper.make_node("Relu", [f"n{norm}"], [f"r{index + 2}"]))
            current, index, channels = f"r{index + 2}", index + 3, width
        nodes.append(helper.make_node("MaxPool", [current], [f"p{index}"], kernel_shape=[2, 2], strides=[2, 2]))
        current, index = f"p{index}", index + 1
    nodes.append(helper.make_node("Flatten", [current], ["flat"], axis=1))
    hidden, output = index + 2, index + 5  # Flatten, Dropout, Linear, ReLU, Dropout, Linear
    nodes.append(helper.make_node("Gemm", ["flat", constant("fc1.w", tensors[f"network.{hidden}.weight"]),
                                           constant("fc1.b", tensors[f"network.{hidden}.bias"])], ["h"], transB=1))
    nodes.append(helper.make_node("Relu", ["h"], ["hr"]))
    nodes.append(helper.make_node("Gemm", ["hr", constant("fc2.w", tensors[f"network.{output}.weight"]),
                                           constant("fc2.b", tensors[f"network.{output}.bias"])], ["logits"], transB=1))
    side = arch["inputSize"]
    graph = helper.make_graph(nodes, "emotion", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, side, side])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", arch["classes"]])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model


def ort_session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def random_tensors(arch, seed):
    """Weights with the file's names and shapes when no model file is given (latency does not depend on them)."""
    torch.manual_seed(seed)
    return {f"network.{name}": value.detach().numpy().copy() for name, value in torch_network(arch).state_dict().items()
            if not name.endswith("num_batches_tracked")}


# --- commands ------------------------------------------------------------------------------------------------

def command_train(args):
    arch = ARCHITECTURES[args.arch]
    if torch is None:
        emit(engine="pytorch", measurement="train", arch=args.arch, threads=args.threads, skipped=TORCH_ERROR)
        return
    set_torch_threads(args.threads)
    torch.manual_seed(args.seed)
    load = load_average()
    network = torch_network(arch).train()
    # fer-train's AdamW: weight decay 0.05 on weights only, none on biases and batch norm.
    decay = [p for p in network.parameters() if p.dim() > 1]
    no_decay = [p for p in network.parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW([dict(params=decay, weight_decay=0.05), dict(params=no_decay, weight_decay=0.0)],
                                  lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_function = nn.CrossEntropyLoss(label_smoothing=0.1)
    side = arch["inputSize"]
    inputs = torch.randn(args.batch_size, 1, side, side)
    labels = torch.randint(0, arch["classes"], (args.batch_size,))

    def step():
        optimizer.zero_grad(set_to_none=False)
        loss = loss_function(network(inputs), labels)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup_steps):
        step()
    durations = []
    start, cpu_start = time.perf_counter(), time.process_time()
    while len(durations) < args.minimum_steps or time.perf_counter() - start < args.seconds:
        began = time.perf_counter()
        step()
        durations.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    emit(engine="pytorch", measurement="train", arch=args.arch, threads=args.threads, batch_size=args.batch_size,
         parameters=parameter_count(network), steps=len(durations), seconds=elapsed,
         images_per_second=len(durations) * args.batch_size / elapsed, step=latency_summary(durations),
         cpu_seconds_per_step=(time.process_time() - cpu_start) / len(durations), load_average=load,
         version=torch.__version__)


def time_calls(call, iterations, warmup):
    load = load_average()
    for _ in range(warmup):
        call()
    durations = []
    cpu_start = time.process_time()
    for _ in range(iterations):
        began = time.perf_counter()
        call()
        durations.append(time.perf_counter() - began)
    return latency_summary(durations), (time.process_time() - cpu_start) / iterations * 1e3, load


def command_infer(args):
    if args.model:
        metadata, tensors = read_safetensors(args.model)
        arch = architecture_of(metadata)
    else:
        arch = ARCHITECTURES[args.arch]
        tensors = random_tensors(arch, args.seed) if torch is not None else None
    side = arch["inputSize"]
    rng = np.random.default_rng(args.seed)
    batch_input = rng.standard_normal((args.batch, 1, side, side), dtype=np.float32)

    def report(engine, measurement, latency, cpu_ms, load, **extra):
        emit(engine=engine, measurement=measurement, arch=arch["name"], threads=args.threads, batch=args.batch,
             iterations=args.iterations, latency=latency, per_face_ms=latency["p50_ms"] / args.batch,
             cpu_ms_per_call=cpu_ms, load_average=load, **extra)

    if torch is None:
        emit(engine="pytorch", measurement="infer_network", arch=arch["name"], threads=args.threads, skipped=TORCH_ERROR)
    else:
        set_torch_threads(args.threads)
        network = torch_network(arch)
        load_into(network, tensors)
        network.eval()
        fused = fused_for_inference(network)
        x = torch.from_numpy(batch_input)
        with torch.inference_mode():
            for measurement, model in (("infer_network", network), ("infer_network_fused", fused)):
                latency, cpu_ms, load = time_calls(lambda: model(x), args.iterations, args.warmup)
                report("pytorch", measurement, latency, cpu_ms, load, version=torch.__version__)

    if ort is None or tensors is None:
        emit(engine="onnxruntime", measurement="infer_network", arch=arch["name"], threads=args.threads,
             skipped=ORT_ERROR or "needs a model file or PyTorch for weights")
    else:
        session = ort_session(onnx_graph(arch, tensors), args.threads)
        feed = {"input": batch_input}
        latency, cpu_ms, load = time_calls(lambda: session.run(None, feed), args.iterations, args.warmup)
        report("onnxruntime", "infer_network", latency, cpu_ms, load, version=ort.__version__)


def command_logits(args):
    with open(args.ours) as handle:
        ours = json.loads(handle.readline())
    metadata, tensors = read_safetensors(ours["model"])
    arch = architecture_of(metadata)
    shape = ours["input_shape"]
    x = np.fromfile(ours["input_file"], dtype="<f4").reshape(shape)
    folded, evaluated = np.array(ours["logits_folded"]), np.array(ours["logits_eval"])
    references = {}
    if torch is not None:
        network = torch_network(arch)
        load_into(network, tensors)
        network.eval()
        with torch.inference_mode():
            references["pytorch_float32"] = network(torch.from_numpy(x)).numpy()
            references["pytorch_float64"] = network.double()(torch.from_numpy(x).double()).numpy()
    if ort is not None:
        references["onnxruntime"] = ort_session(onnx_graph(arch, tensors), 1).run(None, {"input": x})[0]
    if not references:
        emit(engine="reference", measurement="logits", skipped=f"{TORCH_ERROR}; {ORT_ERROR}")
        sys.exit(1)
    differences = {}
    for name, logits in references.items():
        differences[f"ours_eval_vs_{name}"] = float(np.abs(evaluated - logits).max())
        differences[f"ours_folded_vs_{name}"] = float(np.abs(folded - logits).max())
    agree = all(value <= TOLERANCE for value in differences.values())
    emit(engine="reference", measurement="logits", model=ours["model"], arch=arch["name"], input_shape=shape,
         tolerance=TOLERANCE, max_abs_difference=differences, agree=agree,
         logits_magnitude=float(np.abs(next(iter(references.values()))).max()))
    sys.exit(0 if agree else 1)


def command_info(_args):
    """Which kernels the reference side runs (BLAS per threadpoolctl, oneDNN availability)."""
    info = dict(engine="reference", measurement="info", torch=torch.__version__ if torch else TORCH_ERROR,
                onnxruntime=ort.__version__ if ort else ORT_ERROR, numpy=np.__version__,
                openblas_env={k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ})
    if torch is not None:
        info["mkldnn"] = torch.backends.mkldnn.is_available()
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = [dict(api=p.get("internal_api"), arch=p.get("architecture"), lib=p.get("prefix"))
                               for p in threadpool_info()]
    except ImportError:
        pass
    emit(**info)


def command_report(args):
    """The side-by-side table with ratios, from the JSON lines of one bench_engine.sh run."""
    lines = []
    with open(args.results) as handle:
        for text in handle:
            text = text.strip()
            if text.startswith("{"):
                lines.append(json.loads(text))

    def find(engine, measurement, threads):
        for line in lines:
            if line.get("engine") == engine and line.get("measurement") == measurement and line.get("threads") == threads \
                    and "skipped" not in line:
                return line
        return None

    def ratio(a, b):
        return f"{a / b:.2f}" if a is not None and b else "n/a"

    threads_seen = sorted({line["threads"] for line in lines if "threads" in line})
    goals = []
    train_lines = [line for line in lines if line.get("measurement") == "train"]
    if train_lines:
        batch = next((line["batch_size"] for line in train_lines if "batch_size" in line), "?")
        print(f"\nTraining throughput ({train_lines[0]['arch']}, batch {batch}; forward + backward + AdamW step), images/s")
        print(f"  {'threads':>7}  {'ours':>9}  {'pytorch':>9}  {'ours/pytorch':>12}  {'cpu s/step ours':>15}  {'pytorch':>7}")
        for threads in threads_seen:
            ours, reference = find("ours", "train", threads), find("pytorch", "train", threads)
            if ours is None and reference is None:
                continue
            a = ours["images_per_second"] if ours else None
            b = reference["images_per_second"] if reference else None
            print(f"  {threads:>7}  {a or float('nan'):>9.1f}  {b or float('nan'):>9.1f}  {ratio(a, b):>12}  "
                  f"{ours['cpu_seconds_per_step'] if ours else float('nan'):>15.2f}  "
                  f"{reference['cpu_seconds_per_step'] if reference else float('nan'):>7.2f}")
            if a and b:
                goals.append((f"training ours/pytorch at {threads} thread(s) >= 0.70", a / b >= 0.7, f"{a / b:.3f}"))

    rows = [("ours", "infer_plan", "ours: network, BN folded (InferencePlan)"),
            ("ours", "infer_classifier", "ours: EmotionClassifier (pixels->probs)"),
            ("ours", "infer_network", "ours: Sequential.forward (training code)"),
            ("pytorch", "infer_network", "pytorch eager (eval)"),
            ("pytorch", "infer_network_fused", "pytorch, conv+bn fused"),
            ("onnxruntime", "infer_network", "onnxruntime (ORT_ENABLE_ALL)")]
    for threads in threads_seen:
        if find("ours", "infer_plan", threads) is None and find("pytorch", "infer_network", threads) is None:
            continue
        # Our inference path (what EmotionClassifier runs) on the same ready tensor as PyTorch's row.
        ours = find("ours", "infer_plan", threads)
        batch = ours["batch"] if ours else "?"
        print(f"\nInference latency, batch {batch}, {threads} thread(s), ms")
        print(f"  {'engine':<42} {'p50':>7} {'p95':>7} {'cpu/call':>9} {'ours-plan/this (p50)':>24}")
        for engine, measurement, label in rows:
            line = find(engine, measurement, threads)
            if line is None:
                skipped = next((l["skipped"] for l in lines if l.get("engine") == engine and "skipped" in l), None)
                if skipped:
                    print(f"  {label:<42} skipped: {skipped[:60]}")
                continue
            latency = line["latency"]
            print(f"  {label:<42} {latency['p50_ms']:>7.3f} {latency['p95_ms']:>7.3f} {line['cpu_ms_per_call']:>9.3f} "
                  f"{ratio(ours['latency']['p50_ms'] if ours else None, latency['p50_ms']):>24}")
        torch_line = find("pytorch", "infer_network", threads)
        if ours and torch_line:
            a, b = ours["latency"]["p50_ms"], torch_line["latency"]["p50_ms"]
            goals.append((f"inference ours <= pytorch eager at {threads} thread(s) (p50 ratio <= 1)", a <= b, f"{a / b:.3f}"))
        classifier = find("ours", "infer_classifier", threads)
        if classifier and threads == 1:
            goals.append(("per-face EmotionClassifier p50 <= 3 ms on one core", classifier["per_face_ms"] <= 3.0,
                          f"{classifier['per_face_ms']:.2f} ms"))

    check = next((line for line in lines if line.get("measurement") == "logits" and line.get("engine") == "reference"), None)
    if check is not None:
        if "skipped" in check:
            print(f"\nSame network: not checked ({check['skipped']})")
        else:
            worst = max(check["max_abs_difference"].values())
            print(f"\nSame network: logits of {check['model']} on a seeded input {check['input_shape']}, "
                  f"max |ours - reference| = {worst:.2e} (tolerance {check['tolerance']:.0e}; |logits| up to "
                  f"{check['logits_magnitude']:.2f})")
            for name, value in sorted(check["max_abs_difference"].items()):
                print(f"  {name:<36} {value:.2e}")
            goals.append(("logits agree with PyTorch/ONNX Runtime within 1e-4", check["agree"], f"{worst:.1e}"))

    if goals:
        print("\nGoals")
        for text, met, value in goals:
            print(f"  {'met ' if met else 'MISS'}  {text}: {value}")
    loads = [line["load_average"] for line in lines if isinstance(line.get("load_average"), (int, float))]
    if loads:
        print(f"\n1-minute load average during the measurements: {min(loads):.2f} to {max(loads):.2f} "
              f"on {os.cpu_count()} cores" + ("  -> CONTENDED: other work shared the cores; rerun on a quiet machine"
                                             if args.busy_before > 0 else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train")
    train.add_argument("--arch", choices=sorted(ARCHITECTURES), default="vgg")
    train.add_argument("--threads", type=int, default=os.cpu_count())
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--seconds", type=float, default=10)
    train.add_argument("--warmup-steps", type=int, default=2)
    train.add_argument("--minimum-steps", type=int, default=3)
    train.add_argument("--seed", type=int, default=1)
    train.set_defaults(run=command_train)

    infer = commands.add_parser("infer")
    infer.add_argument("--arch", choices=sorted(ARCHITECTURES), default="vgg")
    infer.add_argument("--threads", type=int, default=1)
    infer.add_argument("--batch", type=int, default=1)
    infer.add_argument("--iterations", type=int, default=500)
    infer.add_argument("--warmup", type=int, default=50)
    infer.add_argument("--model", help="model file (its architecture overrides --arch); default: random weights")
    infer.add_argument("--seed", type=int, default=1)
    infer.set_defaults(run=command_infer)

    logits = commands.add_parser("logits")
    logits.add_argument("--ours", required=True, help="file holding the JSON line of `fer-bench logits`")
    logits.set_defaults(run=command_logits)

    commands.add_parser("info").set_defaults(run=command_info)

    table = commands.add_parser("report")
    table.add_argument("results", help="JSON lines of one run (ours and the reference)")
    table.add_argument("--busy-before", type=int, default=0, help="processes that used the CPU just before the run began")
    table.set_defaults(run=command_report)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
