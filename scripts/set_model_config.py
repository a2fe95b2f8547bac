#!/usr/bin/env python3
"""Copies a model bundle (*.agcl) with some of its inference settings changed, weights untouched:

    scripts/set_model_config.py IN.agcl OUT.agcl coarse.attention_probability=0.05 margin_mm=6

Keys are dotted paths into the bundle's "config" (Documentation/model-format.md); values are
JSON (numbers, lists, strings). Only settings that do not change a network's shape make sense
here (attention, margin, overlap, threshold, patch spacing, windows): the loader refuses a
bundle whose weights do not fit its config. Used to choose such settings on validation data
without retraining. Layout: magic, version, reserved, header length, JSON header, zero padding
to 64 bytes, data section (tensor offsets are relative to the data section, so a longer header
needs nothing else)."""
import json
import os
import struct
import sys

MAGIC = b"AGCLMDL\0"


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 1
    source, target, settings = argv[1], argv[2], argv[3:]
    with open(source, "rb") as f:
        blob = f.read()
    if blob[:8] != MAGIC:
        print(f"set_model_config: '{source}' is not an AGCL model file", file=sys.stderr)
        return 1
    version, reserved, length = struct.unpack("<IIQ", blob[8:24])
    header = json.loads(blob[24:24 + length].decode("utf-8"))
    data_start = (24 + length + 63) // 64 * 64
    for setting in settings:
        key, _, value = setting.partition("=")
        if not value:
            print(f"set_model_config: '{setting}': expected key=value", file=sys.stderr)
            return 1
        node = header["config"]
        path = key.split(".")
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(value)
    text = json.dumps(header).encode("utf-8")
    start = (24 + len(text) + 63) // 64 * 64
    partial = target + ".partial"
    with open(partial, "wb") as f:
        f.write(MAGIC + struct.pack("<IIQ", version, reserved, len(text)) + text)
        f.write(b"\0" * (start - 24 - len(text)))
        f.write(blob[data_start:])
    os.replace(partial, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
