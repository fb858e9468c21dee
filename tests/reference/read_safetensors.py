"""Reads a checkpoint's model.safetensors in Python and prints each tensor's shape and values.

With the `safetensors` package installed its own reader is used (safetensors.torch.load_file);
without it, PyTorch reads the file as the format's specification lays it out (an 8-byte
little-endian header length, a JSON header of dtype, shape and byte range per tensor, the data),
so the bytes the project writes are checked either way.

    python3 read_safetensors.py FILE  ->  {"reader": ..., "metadata": {...}, "tensors": {name: {"shape": [...], "values": [...]}}}
"""
import json
import struct
import sys

import torch


def read_with_torch(path):
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = raw[8 + length :]
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", entry["dtype"]
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32)
        tensors[name] = values.reshape(entry["shape"])
    return "pytorch (the format's layout)", metadata, tensors


def main(path):
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
        reader, tensors = "safetensors", load_file(path)
    except ImportError:
        reader, metadata, tensors = read_with_torch(path)
    out = {
        name: {"shape": list(t.shape), "values": t.flatten().tolist()}
        for name, t in tensors.items()
    }
    print(json.dumps({"reader": reader, "metadata": metadata, "tensors": out}))


if __name__ == "__main__":
    main(sys.argv[1])
