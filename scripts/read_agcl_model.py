#!/usr/bin/env python3
"""Reads an AGCL model file (*.agcl, format version 1) with numpy: config and weights."""
import json
import struct
import sys

import numpy as np

DTYPES = {"float32": "<f4", "float64": "<f8", "float16": "<f2", "int64": "<i8", "int32": "<i4",
          "int16": "<i2", "int8": "i1", "uint8": "u1", "bool": "?", "bfloat16": "<u2"}  # bfloat16: raw bits


def split_agcl_file(data, path):
    """(header dict, start of the data section) of a model file's bytes; ValueError naming `path`."""
    magic, version, _, header_size = struct.unpack_from("<8sIIQ", data, 0)
    if magic != b"AGCLMDL\0" or version != 1:
        raise ValueError(f"{path}: not an AGCL model file of version 1")
    return json.loads(data[24:24 + header_size]), (24 + header_size + 63) // 64 * 64


def read_agcl_model(path):
    data = open(path, "rb").read()
    header, start = split_agcl_file(data, path)
    weights = {t["name"]: np.frombuffer(data, DTYPES[t["dtype"]], t["nbytes"] // np.dtype(DTYPES[t["dtype"]]).itemsize,
                                        start + t["offset"]).reshape(t["shape"]) for t in header["tensors"]}
    return header["config"], weights


if __name__ == "__main__":
    config, weights = read_agcl_model(sys.argv[1])
    print(json.dumps(config, indent=1))
    for name, w in weights.items():
        print(name, w.dtype, w.shape)
