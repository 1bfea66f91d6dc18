"""Imports facenet-pytorch's MTCNN alone, for the scripts that compare our MTCNN with it.

facenet_pytorch/__init__.py also imports the face-embedding network (and requests, to download its weights), and
its detect_face imports torchvision for batched_nms. PyPI's torchvision for Linux is a CUDA build whose operators
do not load beside a CPU torch; when it cannot run, the caller's stand-in batched_nms is installed in its place.
"""
import importlib.util
import sys
import types


def import_facenet_mtcnn(batched_nms_stand_in):
    """(models.mtcnn module, models.utils.detect_face module, how batched_nms runs)."""
    import torch
    try:
        import torchvision
        from torchvision.ops.boxes import batched_nms
        batched_nms(torch.zeros((1, 4)), torch.ones(1), torch.zeros(1, dtype=torch.int64), 0.5)
        nms = f'torchvision {torchvision.__version__}'
    except Exception as error:  # noqa: BLE001 - ImportError, or the CUDA build's operator missing
        nms = f'stand-in batched_nms (torchvision: {type(error).__name__}: {str(error).splitlines()[0][:80]})'
        for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
            del sys.modules[name]
        vision = types.ModuleType('torchvision')
        vision.ops = types.ModuleType('torchvision.ops')
        vision.ops.boxes = types.ModuleType('torchvision.ops.boxes')
        vision.ops.boxes.batched_nms = batched_nms_stand_in
        vision.transforms = types.ModuleType('torchvision.transforms')
        vision.transforms.functional = types.ModuleType('torchvision.transforms.functional')
        for module in (vision, vision.ops, vision.ops.boxes, vision.transforms, vision.transforms.functional):
            sys.modules[module.__name__] = module
    try:
        import PIL  # noqa: F401
    except ImportError:
        pil = types.ModuleType('PIL')
        pil.Image = types.ModuleType('PIL.Image')
        pil.Image.Image = type('Image', (), {})
        sys.modules['PIL'], sys.modules['PIL.Image'] = pil, pil.Image
    # Register the package without running its __init__, then import only models/mtcnn.py and its helpers.
    spec = importlib.util.find_spec('facenet_pytorch')
    if spec is None:
        raise ImportError('facenet_pytorch is not installed')
    package = types.ModuleType('facenet_pytorch')
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules['facenet_pytorch'] = package
    from facenet_pytorch.models import mtcnn
    from facenet_pytorch.models.utils import detect_face
    return mtcnn, detect_face, nms
