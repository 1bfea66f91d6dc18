#!/usr/bin/env python3
"""Converts facenet-pytorch's MTCNN weights (pnet.pt, rnet.pt, onet.pt) to one safetensors file.

Standard library only: no torch. The .pt files in facenet-pytorch 2.6.0 are PyTorch state dicts in the
legacy format (torch.save before 1.6): a run of pickles (magic number, protocol version, system info, the
state dict whose tensors point at storages by persistent id, the list of storage keys) followed by each
storage's raw bytes, each preceded by its element count as a little-endian int64. The newer zip format
(archive/data.pkl plus one archive/data/<key> member per storage) is read as well.

Tensors keep their state-dict names under a per-network prefix: `pnet.conv1.weight`, `rnet.dense4.bias`,
`onet.prelu5.weight`, ... as float32 (F32), C-contiguous, with the shapes PyTorch gives them.

    python3 Scripts/convert_mtcnn_weights.py --pnet pnet.pt --rnet rnet.pt --onet onet.pt \\
        --output Samples/thirdparty/models/mtcnn.safetensors
"""
import argparse
import collections
import json
import os
import pickle
import struct
import sys
import zipfile

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# Storage class name -> (safetensors dtype, struct code, bytes per element). Only float32 is written out.
STORAGE_TYPES = {
    'FloatStorage': ('F32', 'f', 4),
    'DoubleStorage': ('F64', 'd', 8),
    'HalfStorage': ('F16', 'e', 2),
    'LongStorage': ('I64', 'q', 8),
    'IntStorage': ('I32', 'i', 4),
    'ByteStorage': ('U8', 'B', 1),
}


class ConversionError(Exception):
    pass


class StorageType:
    """Stands in for torch.FloatStorage and friends: only its name matters."""

    def __init__(self, name):
        if name not in STORAGE_TYPES:
            raise ConversionError(f'unsupported storage type torch.{name}')
        self.name = name


class Storage:
    """A storage's element type and count; its bytes arrive after the pickles (legacy) or from a zip member."""

    def __init__(self, storage_type, key, count):
        self.type = storage_type
        self.key = key
        self.count = count
        self.data = None


class TensorRecord:
    """What torch._utils._rebuild_tensor_v2 gets: a view into a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def values(self):
        """The elements in C order, as a flat tuple."""
        dtype, code, width = STORAGE_TYPES[self.storage.type.name]
        if self.storage.data is None:
            raise ConversionError(f'storage {self.storage.key} has no data')
        flat = struct.unpack(f'<{self.storage.count}{code}', self.storage.data)
        count = 1
        for extent in self.size:
            count *= extent
        contiguous = []
        running = 1
        for extent in reversed(self.size):
            contiguous.insert(0, running)
            running *= extent
        if tuple(contiguous) == self.stride or count <= 1:
            end = self.offset + count
            if end > len(flat):
                raise ConversionError(f'tensor view runs past storage {self.storage.key}')
            return flat[self.offset:end]
        # A strided view (never in these files, but cheap to support): gather element by element.
        out = []
        for index in range(count):
            position, rest = self.offset, index
            for extent, step in zip(reversed(self.size), reversed(self.stride)):
                position += (rest % extent) * step
                rest //= extent
            out.append(flat[position])
        return tuple(out)


def rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return TensorRecord(storage, offset, size, stride)


def rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    return data


class StateDictUnpickler(pickle.Unpickler):
    """Resolves only the globals a state dict needs; anything else is refused (no code runs)."""

    ALLOWED = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('torch._utils', '_rebuild_tensor_v2'): rebuild_tensor,
        ('torch._utils', '_rebuild_tensor'): lambda storage, offset, size, stride: TensorRecord(storage, offset, size, stride),
        ('torch._utils', '_rebuild_parameter'): rebuild_parameter,
    }

    def __init__(self, file, storages, zip_reader=None):
        super().__init__(file)
        self.storages = storages
        self.zip_reader = zip_reader

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == 'torch' and name.endswith('Storage'):
            return StorageType(name)
        raise ConversionError(f'unexpected global {module}.{name} in a state dict')

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != 'storage':
            raise ConversionError(f'unexpected persistent id {pid!r}')
        _, storage_type, key, _location, count = pid[:5]
        if isinstance(storage_type, StorageType):
            kind = storage_type
        else:
            raise ConversionError(f'storage {key} has unknown type {storage_type!r}')
        if key not in self.storages:
            storage = Storage(kind, key, count)
            if self.zip_reader is not None:
                storage.data = self.zip_reader(key)
                storage.count = len(storage.data) // STORAGE_TYPES[kind.name][2]
            self.storages[key] = storage
        return self.storages[key]


def load_legacy(path, handle):
    magic = pickle.load(handle)
    if magic != LEGACY_MAGIC:
        raise ConversionError(f'{path} is not a PyTorch file (bad magic number)')
    protocol = pickle.load(handle)
    if protocol != 1001:
        raise ConversionError(f'{path}: unsupported legacy protocol version {protocol}')
    system = pickle.load(handle)
    if not system.get('little_endian', True):
        raise ConversionError(f'{path} was written on a big-endian machine')
    storages = {}
    state = StateDictUnpickler(handle, storages).load()
    keys = pickle.load(handle)
    for key in keys:
        if key not in storages:
            raise ConversionError(f'{path}: storage {key} is listed but no tensor uses it')
        storage = storages[key]
        header = handle.read(8)
        if len(header) != 8:
            raise ConversionError(f'{path} is truncated (storage {key} header)')
        (count,) = struct.unpack('<q', header)
        if count != storage.count:
            raise ConversionError(f'{path}: storage {key} holds {count} elements, the pickle says {storage.count}')
        width = STORAGE_TYPES[storage.type.name][2]
        storage.data = handle.read(count * width)
        if len(storage.data) != count * width:
            raise ConversionError(f'{path} is truncated (storage {key} has {len(storage.data)} of {count * width} bytes)')
    return state


def load_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith('/data.pkl')]
        if len(pickles) != 1:
            raise ConversionError(f'{path}: expected one data.pkl in the archive, found {len(pickles)}')
        root = pickles[0][:-len('data.pkl')]
        with archive.open(pickles[0]) as handle:
            return StateDictUnpickler(handle, {}, lambda key: archive.read(f'{root}data/{key}')).load()


def load_state_dict(path):
    """The state dict in `path` as an ordered mapping of name -> TensorRecord."""
    if zipfile.is_zipfile(path):
        state = load_zip(path)
    else:
        with open(path, 'rb') as handle:
            try:
                state = load_legacy(path, handle)
            except (pickle.UnpicklingError, EOFError, struct.error) as error:
                raise ConversionError(f'{path} is not a readable PyTorch file: {error}') from None
    if not isinstance(state, dict):
        raise ConversionError(f'{path} holds a {type(state).__name__}, not a state dict')
    for name, value in state.items():
        if not isinstance(value, TensorRecord):
            raise ConversionError(f'{path}: entry {name} is not a tensor')
    return state


def write_safetensors(tensors, path, metadata):
    """tensors: ordered name -> (shape, float values). Writes atomically (temporary file, then rename)."""
    header = {'__metadata__': metadata}
    offset = 0
    for name, (shape, values) in tensors.items():
        header[name] = {'dtype': 'F32', 'shape': list(shape), 'data_offsets': [offset, offset + 4 * len(values)]}
        offset += 4 * len(values)
    encoded = json.dumps(header, separators=(',', ':')).encode('utf-8')
    encoded += b' ' * (-len(encoded) % 8)
    temporary = path + '.partial'
    with open(temporary, 'wb') as sink:
        sink.write(struct.pack('<Q', len(encoded)))
        sink.write(encoded)
        for shape, values in tensors.values():
            sink.write(struct.pack(f'<{len(values)}f', *values))
    os.replace(temporary, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pnet', required=True)
    parser.add_argument('--rnet', required=True)
    parser.add_argument('--onet', required=True)
    parser.add_argument('--output', required=True, help='the .safetensors file to write')
    arguments = parser.parse_args()

    tensors = collections.OrderedDict()
    try:
        for prefix, path in (('pnet', arguments.pnet), ('rnet', arguments.rnet), ('onet', arguments.onet)):
            for name, record in load_state_dict(path).items():
                if record.storage.type.name != 'FloatStorage':
                    raise ConversionError(f'{path}: {name} is {record.storage.type.name}, expected float32')
                tensors[f'{prefix}.{name}'] = (record.size, record.values())
    except (OSError, ConversionError) as error:
        sys.exit(f'error: {error}')
    os.makedirs(os.path.dirname(os.path.abspath(arguments.output)), exist_ok=True)
    write_safetensors(tensors, arguments.output,
                      {'source': 'facenet-pytorch 2.6.0 facenet_pytorch/data/{pnet,rnet,onet}.pt',
                       'format': 'MTCNN state dicts, names prefixed pnet./rnet./onet.'})
    count = sum(len(values) for _, values in tensors.values())
    print(f'    {arguments.output}: {len(tensors)} tensors, {count} floats')


if __name__ == '__main__':
    main()
