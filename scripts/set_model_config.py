#!/usr/bin/env python3
"""Copies a model bundle (*.agcl) with some of its inference settings changed, weights untouched:

    scripts/set_model_config.py IN.agcl OUT.agcl coarse.attention_probability=0.05 margin_mm=6
    scripts/set_model_config.py IN.agcl OUT.agcl organs.5.threshold=0.6   # the 6th organ's own threshold

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

from read_agcl_model import split_agcl_file

MAGIC = b"AGCLMDL\0"


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 1
    source, target, settings = argv[1], argv[2], argv[3:]
    with open(source, "rb") as f:
        blob = f.read()
    try:
        header, data_start = split_agcl_file(blob, source)
    except (ValueError, struct.error) as e:
        print(f"set_model_config: {e}", file=sys.stderr)
        return 1
    for setting in settings:
        key, _, value = setting.partition("=")
        if not value:
            print(f"set_model_config: '{setting}': expected key=value", file=sys.stderr)
            return 1
        node = header["config"]
        path = key.split(".")
        try:
            for part in path[:-1]:  # a number indexes a list: organs.5.threshold
                node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            last = int(path[-1]) if isinstance(node, list) else path[-1]
        except (ValueError, IndexError):
            print(f"set_model_config: '{key}': no such place in the config", file=sys.stderr)
            return 1
        try:
            node[last] = json.loads(value)
        except json.JSONDecodeError:
            print(f"set_model_config: '{setting}': the value is not JSON (e.g. 0.05, true, [8, 8, 8])", file=sys.stderr)
            return 1
    text = json.dumps(header).encode("utf-8")
    start = (24 + len(text) + 63) // 64 * 64
    partial = target + ".partial"
    with open(partial, "wb") as f:
        f.write(MAGIC + struct.pack("<IIQ", 1, 0, len(text)) + text)
        f.write(b"\0" * (start - 24 - len(text)))
        f.write(blob[data_start:])
    os.replace(partial, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
