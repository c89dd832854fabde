"""Read a TensorFlow 2 checkpoint without TensorFlow and without unpickling anything.

A TF2 checkpoint (or a SavedModel's ``variables/``) is a LevelDB-style table, the ``.index``,
mapping each variable's name to a ``BundleEntryProto`` (dtype, shape, offset and size in the data
file); the data file holds the raw little-endian buffers. This module parses both with the standard
library and numpy. The shapes need the ``.index`` alone, which is how docs/studies/paper.md establishes which
network the reference code built (its saved classifier's data file is not in the mirror):

    python tools/tf_checkpoint.py REFERENCE_REPO/src/weights/shadow_classifier/shadow_classifier/variables/variables.index
"""

from __future__ import annotations

import argparse
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}  # TF DataType enum values used here


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of one table block (prefix-compressed keys, restart array at the end)."""
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    pos, key, out = 0, b"", []
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        size, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        out.append((key, block[pos:pos + size]))
        pos += size
    return out


def _block(table: bytes, handle: bytes) -> bytes:
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if table[offset + size] != 0:  # the trailer's compression byte: TF writes bundle indexes uncompressed
        raise ValueError("compressed table blocks are not supported")
    return table[offset:offset + size]


def _fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message's (field number, value) pairs: varints, fixed32 and length-delimited only."""
    pos, out = 0, []
    while pos < len(message):
        tag, pos = _varint(message, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(message, pos)
        elif wire == 2:
            size, pos = _varint(message, pos)
            value, pos = message[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = struct.unpack_from("<I", message, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, value))
    return out


def _entries(index: bytes) -> Iterator[tuple[str, dict[int, int | bytes], list[int]]]:
    """Each variable of a checkpoint index: its name (suffix dropped), BundleEntryProto fields, shape."""
    footer = index[-48:]
    if footer[-8:] != bytes.fromhex("57fb808b247547db"):
        raise ValueError("not a TF checkpoint index (bad table magic)")
    _, pos = _varint(footer, 0)  # metaindex handle: offset, size
    _, pos = _varint(footer, pos)
    index_block = _block(index, footer[pos:])
    for _, handle in _block_entries(index_block):
        for key, value in _block_entries(_block(index, handle)):
            name = key.decode()
            if not name.endswith(SUFFIX):
                continue  # the object graph, not a variable
            entry = dict(_fields(value))
            dims = [dict(_fields(d)).get(1, 0) for n, d in _fields(entry.get(2, b"")) if n == 2]
            yield name.removesuffix(SUFFIX), entry, dims


def shapes(index: bytes) -> dict[str, list[int]]:
    """Every variable's shape, from the ``.index`` file alone (no data file needed)."""
    return {name: dims for name, _, dims in _entries(index)}


def read_checkpoint(index: bytes, data: bytes) -> dict[str, np.ndarray]:
    """Every tensor of a single-shard TF2 checkpoint, by variable name (``.ATTRIBUTES`` suffix dropped)."""
    tensors: dict[str, np.ndarray] = {}
    for name, entry, dims in _entries(index):
        offset, size = entry.get(4, 0), entry[5]
        raw = data[offset:offset + size]
        if 6 in entry and _masked_crc32c(raw) != entry[6]:
            raise ValueError(f"{name}: checksum mismatch in the data file")
        tensors[name] = np.frombuffer(raw, DTYPES[entry[1]]).reshape(dims).copy()
    return tensors


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _make_crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()


def _masked_crc32c(data: bytes) -> int:
    """The masked crc32c TensorFlow stores in a bundle entry (rotate 15, add a constant)."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("index", type=Path, help="a checkpoint's .index file")
    p.add_argument("--all", action="store_true", help="also list optimizer slots and metrics")
    args = p.parse_args()
    for name, dims in sorted(shapes(args.index.read_bytes()).items()):
        if args.all or not ("OPTIMIZER_SLOT" in name or name.startswith(("keras_api/", "optimizer/"))):
            print(f"{name:45} {dims}")


if __name__ == "__main__":
    main()
