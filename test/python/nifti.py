"""A small reader of gzipped NIfTI-1 files with numpy alone (no ITK): an independent way to read
what agcl writes, for the tests and scripts/resolution_ceiling.py."""
import gzip
import struct

import numpy as np

DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8, 512: np.uint16,
          768: np.uint32}


def read_nifti(path):
    """(array indexed [x, y, z], spacing (x, y, z) in mm) of a gzipped NIfTI-1 file."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    assert struct.unpack("<i", data[0:4])[0] == 348
    dim = struct.unpack("<8h", data[40:56])
    datatype = struct.unpack("<h", data[70:72])[0]
    pixdim = struct.unpack("<8f", data[76:108])
    offset = int(struct.unpack("<f", data[108:112])[0])
    slope, inter = struct.unpack("<2f", data[112:120])
    shape = dim[1:1 + dim[0]]
    array = np.frombuffer(data, dtype=DTYPES[datatype], count=int(np.prod(shape)), offset=offset)
    array = array.reshape(shape, order="F")
    if slope not in (0.0, 1.0) or inter != 0.0:
        array = array * slope + inter
    return array, np.array(pixdim[1:4], dtype=float)
