#!/usr/bin/env python3
"""Reference values for the MTCNN tests, from the original facenet-pytorch 2.6.0 on PyTorch (CPU).

Writes Tests/FaceDetectionTests/Fixtures/mtcnn_reference.json with:
  - `images`: size and checksums of the RGB bytes each sample decodes to (FFmpeg's decoder, as the Swift
    side uses): the byte sum and sum(byte[i] * (i % 251 + 1)), so a test can tell a decoder difference from a
    detector difference;
  - `proposal`: facenet-pytorch's pyramid scales for single_face.jpg and P-Net's raw outputs on one level
    (its input made by facenet-pytorch's own `imresample`, area interpolation): sums over every output,
    the 8 highest face probabilities and every 97th cell;
  - `refine` / `output`: R-Net and O-Net raw outputs for a fixed synthetic batch (`pattern`, rebuilt bit
    for bit in Swift) and for fixed crops of the sample images resampled by `imresample` to 24 / 48;
  - `detections`: what `MTCNN(keep_all=True).detect(image, landmarks=True)` returns for each sample image
    with the default options (minimum face 20 px, thresholds 0.6 / 0.7 / 0.7, factor 0.709).

Not a project dependency. Run it in a virtual environment with torch (CPU) and facenet-pytorch:

    python3 -m venv /tmp/mtcnnref && /tmp/mtcnnref/bin/pip install torch numpy
    /tmp/mtcnnref/bin/pip install --no-deps facenet-pytorch==2.6.0
    /tmp/mtcnnref/bin/python Scripts/mtcnn_reference.py

facenet-pytorch's detect_face imports torchvision only for `batched_nms` and PIL only for type checks and
face extraction (an empty stand-in covers a missing PIL), and only models/mtcnn.py is imported, not the
package's __init__ (which loads the face-embedding network and requests). PyPI's torchvision wheels for Linux are CUDA builds whose extension does not load beside a
CPU torch, so where torchvision cannot be imported a stand-in module provides `batched_nms` with the CPU
kernel's exact rule (stable sort by descending score, drop boxes whose IoU with a kept one is > threshold,
areas without +1; one image here, so the per-image offset changes nothing). Everything else is
facenet-pytorch's own code.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
MEDIA = os.path.join(ROOT, 'Samples', 'thirdparty', 'media')
FIXTURES = os.path.join(ROOT, 'Tests', 'FaceDetectionTests', 'Fixtures')
IMAGES = ['single_face.jpg', 'multi_face.jpg', 'free-mountain-vector-01.jpg']


def nms_like_torchvision(boxes, scores, iou_threshold):
    order = torch.sort(scores, stable=True, descending=True)[1].tolist()
    b = boxes.tolist()
    areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).tolist()
    suppressed = [False] * len(order)
    keep = []
    for position, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        for j in order[position + 1:]:
            if suppressed[j]:
                continue
            w = max(0.0, min(b[i][2], b[j][2]) - max(b[i][0], b[j][0]))
            h = max(0.0, min(b[i][3], b[j][3]) - max(b[i][1], b[j][1]))
            inter = np.float32(w) * np.float32(h)
            if inter / (np.float32(areas[i]) + np.float32(areas[j]) - inter) > iou_threshold:
                suppressed[j] = True
    return torch.tensor(keep, dtype=torch.long)


def batched_nms(boxes, scores, idxs, iou_threshold):
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    assert int(idxs.max()) == 0, 'the stand-in handles one image'
    return nms_like_torchvision(boxes, scores, iou_threshold)


def import_facenet():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from facenet_mtcnn import import_facenet_mtcnn
    mtcnn, detect_face, nms = import_facenet_mtcnn(batched_nms)
    print('batched_nms:', nms)
    return mtcnn, detect_face


def decode(name):
    """RGB bytes [H, W, 3] as the Swift side's decodeImage makes them (MediaIO's FrameConverter): swscale with
    bilinear + accurate_rnd, the stream's range and matrix on the way in (BT.601 for JPEG's bt470bg tag;
    untagged: BT.709 from 720 lines up), full range out with the same matrix."""
    path = os.path.join(MEDIA, name)
    probe = subprocess.run(['ffprobe', '-v', 'error', '-select_streams', 'v:0', '-show_entries',
                            'stream=width,height,pix_fmt,color_range,color_space', '-of', 'json', path],
                           capture_output=True, text=True, check=True)
    stream = json.loads(probe.stdout)['streams'][0]
    width, height = stream['width'], stream['height']
    full = stream.get('pix_fmt', '').startswith('yuvj') or stream.get('color_range') == 'pc'
    matrix = {'bt470bg': 'bt601', 'smpte170m': 'bt601', 'bt709': 'bt709', 'smpte240m': 'smpte240m',
              'fcc': 'fcc', 'bt2020nc': 'bt2020', 'bt2020c': 'bt2020'}.get(
        stream.get('color_space'), 'bt709' if height >= 720 else 'bt601')
    scale = (f'scale=in_range={"full" if full else "limited"}:out_range=full:in_color_matrix={matrix}:'
             f'out_color_matrix={matrix}:flags=bilinear+accurate_rnd')
    raw = subprocess.run(['ffmpeg', '-v', 'error', '-i', path, '-frames:v', '1', '-vf', scale, '-f', 'rawvideo',
                          '-pix_fmt', 'rgb24', '-'], capture_output=True, check=True).stdout
    assert len(raw) == width * height * 3, (name, len(raw))
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


def image_tensor(pixels):
    """As detect_face builds it: NHWC bytes permuted to NCHW (channels-last strides), float32."""
    return torch.as_tensor(pixels.copy()).unsqueeze(0).permute(0, 3, 1, 2).type(torch.float32)


def pattern_batch(count, size):
    """[count, 3, size, size]: levels = (y*y*3 + x*7 + c*50 + x*y + n*31) % 256, value (levels - 127.5) * 0.0078125."""
    n, c, y, x = np.meshgrid(np.arange(count), np.arange(3), np.arange(size), np.arange(size), indexing='ij')
    levels = ((y * y * 3 + x * 7 + c * 50 + x * y + n * 31) % 256).astype(np.float32)
    return torch.from_numpy((levels - np.float32(127.5)) * np.float32(0.0078125))


def floats(tensor):
    return [float(v) for v in tensor.reshape(-1).tolist()]


def proposal_reference(detect_face, pnet, pixels, level):
    imgs = image_tensor(pixels)
    h, w = imgs.shape[2:4]
    # detect_face's pyramid, verbatim.
    m = 12.0 / 20
    minl = min(h, w) * m
    scale_i, scales = m, []
    while minl >= 12:
        scales.append(scale_i)
        scale_i = scale_i * 0.709
        minl = minl * 0.709
    scale = scales[level]
    im_data = detect_face.imresample(imgs, (int(h * scale + 1), int(w * scale + 1)))
    im_data = (im_data - 127.5) * 0.0078125
    with torch.no_grad():
        reg, probs = pnet(im_data)
    face = probs[0, 1].double()
    regression = reg[0].double()
    height, width = face.shape
    flat = face.reshape(-1)
    top = torch.sort(flat, descending=True, stable=True)[1][:8].tolist()
    sampled = list(range(0, flat.numel(), 97))
    cell = lambda i: {'y': i // width, 'x': i % width, 'probability': float(flat[i]),
                      'regression': floats(regression[:, i // width, i % width])}
    return {
        'image': 'single_face.jpg',
        'scales': scales,
        'level': level,
        'inputShape': list(im_data.shape),
        'inputSum': float(im_data.double().sum()),
        'outputHeight': height,
        'outputWidth': width,
        'faceProbabilitySum': float(face.sum()),
        'backgroundProbabilitySum': float(probs[0, 0].double().sum()),
        'regressionSum': float(regression.sum()),
        'regressionAbsoluteSum': float(regression.abs().sum()),
        'top': [cell(i) for i in top],
        'sampled': [cell(i) for i in sampled],
    }


# Crops (x, y, width, height) in source pixels, 0-based: faces, parts of faces, background, a thin strip.
CROPS = [
    ('single_face.jpg', (185, 150, 210, 245)),
    ('single_face.jpg', (200, 190, 180, 180)),
    ('single_face.jpg', (0, 0, 100, 60)),
    ('single_face.jpg', (300, 400, 17, 30)),
    ('multi_face.jpg', (40, 60, 120, 120)),
    ('multi_face.jpg', (10, 10, 7, 9)),
]


def network_reference(detect_face, network, size, decoded):
    document = {'pattern': {'count': 3, 'outputs': []}, 'crops': []}
    with torch.no_grad():
        outputs = network(pattern_batch(3, size))
        for n in range(3):
            document['pattern']['outputs'].append([floats(o[n]) for o in outputs])
        for name, (x, y, w, h) in CROPS:
            imgs = image_tensor(decoded[name])
            crop = imgs[:, :, y:y + h, x:x + w]
            im_data = (detect_face.imresample(crop, (size, size)) - 127.5) * 0.0078125
            document['crops'].append({'image': name, 'region': [x, y, w, h],
                                      'inputSum': float(im_data.double().sum()),
                                      'outputs': [floats(o[0]) for o in network(im_data)]})
    return document


def main():
    mtcnn_module, detect_face = import_facenet()
    torch.set_num_threads(1)
    mtcnn = mtcnn_module.MTCNN(keep_all=True)
    decoded = {name: decode(name) for name in IMAGES}
    document = {
        'generator': 'Scripts/mtcnn_reference.py (facenet-pytorch 2.6.0, torch %s CPU)' % torch.__version__.split('+')[0],
        'patternInput': 'levels = (y*y*3 + x*7 + c*50 + x*y + n*31) % 256 at NCHW (n, c, y, x); '
                        'value = (float32(levels) - 127.5) * 0.0078125',
        'outputOrder': 'R-Net: regression [4], probabilities [2]; O-Net: regression [4], landmarks [10], probabilities [2]',
        'images': {},
        'detections': {},
    }
    for name, pixels in decoded.items():
        flat = pixels.reshape(-1).astype(np.int64)
        document['images'][name] = {'width': pixels.shape[1], 'height': pixels.shape[0],
                                    'byteSum': int(flat.sum()),
                                    'weightedByteSum': int((flat * (np.arange(flat.size) % 251 + 1)).sum())}
    document['proposal'] = proposal_reference(detect_face, mtcnn.pnet, decoded['single_face.jpg'], level=4)
    document['refine'] = network_reference(detect_face, mtcnn.rnet, 24, decoded)
    document['output'] = network_reference(detect_face, mtcnn.onet, 48, decoded)
    for name, pixels in decoded.items():
        boxes, probs, points = mtcnn.detect(pixels, landmarks=True)
        found = []
        if boxes is not None:
            for box, prob, point in zip(boxes, probs, points):
                found.append({'box': [float(v) for v in box], 'score': float(prob),
                              'landmarks': [[float(v) for v in p] for p in point]})
        document['detections'][name] = found
    os.makedirs(FIXTURES, exist_ok=True)
    path = os.path.join(FIXTURES, 'mtcnn_reference.json')
    with open(path, 'w') as out:
        json.dump(document, out, indent=1)
        out.write('\n')
    print(f'wrote {path} ({os.path.getsize(path)} bytes)')
    for name, found in document['detections'].items():
        print(f'{name}: {len(found)} faces, scores {[round(f["score"], 4) for f in found]}')


if __name__ == '__main__':
    main()
