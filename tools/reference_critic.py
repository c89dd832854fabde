"""Convert the attack paper's trained De-Pois critic (a TensorFlow checkpoint) into streamsim's Critic.

Oschart et al. (github:Oschart/Attack-On-DePois) ship ``src/weights/critic/
discriminator_CWGANGP_10000.{index,data-00000-of-00001}``: the conditional WGAN-GP critic trained
10,000 steps at lr 5e-5 on 60,000 augmented MNIST digits. TensorFlow is not needed (nor used): a
TF2 checkpoint is a LevelDB-style table (the ``.index``) mapping each variable's name to a
``BundleEntryProto`` (dtype, shape, offset and size in the data file), and the data file holds the
raw little-endian buffers. This module parses both with the standard library and numpy — nothing
is unpickled — and maps the five Keras variables onto :class:`defenses.depois.networks.Critic`
(Keras kernels are ``in × out``; torch's ``Linear`` weights are ``out × in``).

    python tools/reference_critic.py CHECKPOINT_DIR OUT.safetensors   # CHECKPOINT_DIR holds the two files
    python tools/reference_critic.py CHECKPOINT_DIR OUT.safetensors --check   # also print scores of a few digits

``OUT.safetensors`` is then usable as ``defense.params.critic_weights`` (De-Pois skips training and
uses it). Never commit the converted weights: they are the reference authors' artifact.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np
import torch

INDEX, DATA = "discriminator_CWGANGP_10000.index", "discriminator_CWGANGP_10000.data-00000-of-00001"
SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}  # TF DataType enum values used here
#: Keras variable (functional model ``Model([img, label], validity)``) → streamsim Critic parameter.
KERAS_TO_CRITIC = {
    "layer_with_weights-0/embeddings": "embed.weight",
    "layer_with_weights-1/layer_with_weights-0/kernel": "body.0.weight",
    "layer_with_weights-1/layer_with_weights-0/bias": "body.0.bias",
    "layer_with_weights-1/layer_with_weights-1/kernel": "body.2.weight",
    "layer_with_weights-1/layer_with_weights-1/bias": "body.2.bias",
    "layer_with_weights-1/layer_with_weights-2/kernel": "body.5.weight",
    "layer_with_weights-1/layer_with_weights-2/bias": "body.5.bias",
    "layer_with_weights-1/layer_with_weights-3/kernel": "body.8.weight",
    "layer_with_weights-1/layer_with_weights-3/bias": "body.8.bias",
}


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


def read_checkpoint(index: bytes, data: bytes) -> dict[str, np.ndarray]:
    """Every tensor of a single-shard TF2 checkpoint, by variable name (``.ATTRIBUTES`` suffix dropped)."""
    footer = index[-48:]
    if footer[-8:] != bytes.fromhex("57fb808b247547db"):
        raise ValueError("not a TF checkpoint index (bad table magic)")
    _, pos = _varint(footer, 0)  # metaindex handle: offset, size
    _, pos = _varint(footer, pos)
    index_block = _block(index, footer[pos:])
    tensors: dict[str, np.ndarray] = {}
    for _, handle in _block_entries(index_block):
        for key, value in _block_entries(_block(index, handle)):
            name = key.decode()
            if not name.endswith(SUFFIX):
                continue  # the object graph, not a variable
            entry = dict(_fields(value))
            dims = [dict(_fields(d)).get(1, 0) for n, d in _fields(entry.get(2, b"")) if n == 2]
            offset, size = entry.get(4, 0), entry[5]
            raw = data[offset:offset + size]
            if 6 in entry and _masked_crc32c(raw) != entry[6]:
                raise ValueError(f"{name}: checksum mismatch in the data file")
            tensors[name.removesuffix(SUFFIX)] = np.frombuffer(raw, DTYPES[entry[1]]).reshape(dims).copy()
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


def critic_state(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The reference critic's variables as a :class:`~defenses.depois.networks.Critic` state dict."""
    missing = sorted(set(KERAS_TO_CRITIC) - set(tensors))
    if missing:
        raise ValueError(f"checkpoint lacks {', '.join(missing)}")
    state = {}
    for keras, ours in KERAS_TO_CRITIC.items():
        t = torch.from_numpy(tensors[keras].astype(np.float32))
        state[ours] = t.T.contiguous() if keras.endswith("kernel") else t
    return state


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint_dir", type=Path)
    p.add_argument("out", type=Path, help="where to write the critic (safetensors); never commit it")
    p.add_argument("--check", action="store_true", help="print the critic's scores of a few mnist-5k digits")
    args = p.parse_args()
    tensors = read_checkpoint((args.checkpoint_dir / INDEX).read_bytes(), (args.checkpoint_dir / DATA).read_bytes())
    for name, t in sorted(tensors.items()):
        print(f"{name:55} {tuple(t.shape)}")
    from safetensors.torch import save_file

    from defenses.depois.networks import Critic

    critic = Critic()
    critic.load_state_dict(critic_state(tensors), strict=True)
    save_file(critic.state_dict(), str(args.out))
    print(f"written to {args.out} (crc32c of every tensor checked)")
    if args.check:
        from streamsim.data.datasets import mnist_5k
        from streamsim.data.splits import to_tensor

        raw = mnist_5k()
        idx = np.arange(0, 5000, 500)
        x, y = to_tensor(raw.x[idx]), torch.from_numpy(raw.y[idx])
        with torch.no_grad():
            critic.eval()
            upright, transposed = critic(x, y), critic(x.transpose(-1, -2), y)
        print("label      ", y.tolist())
        print("upright    ", [round(float(v), 3) for v in upright])
        print("transposed ", [round(float(v), 3) for v in transposed])
        print("label AUC (true vs a random other label, all 5,000 digits):", label_auc(critic, raw))


def label_auc(critic: torch.nn.Module, raw: object) -> dict[str, float]:
    """How well the critic tells a digit's true label from a random other one, upright and transposed.

    The probability that ``score(x, true) > score(x, wrong)``; 0.5 is blind to the label.
    """
    from streamsim.data.splits import to_tensor

    x, y = to_tensor(raw.x), torch.from_numpy(raw.y)
    wrong = (y + torch.randint(1, 10, y.shape, generator=torch.Generator().manual_seed(0))) % 10
    out = {}
    with torch.no_grad():
        for layout, images in (("upright", x), ("transposed", x.transpose(-1, -2))):
            true, other = critic(images, y), critic(images, wrong)
            out[layout] = round(float((true > other).float().mean()), 3)
    return out


if __name__ == "__main__":
    main()
