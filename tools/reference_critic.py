"""Convert the attack paper's trained De-Pois critic (a TensorFlow checkpoint) into streamsim's Critic.

Oschart et al. (github:Oschart/Attack-On-DePois) ship ``src/weights/critic/
discriminator_CWGANGP_10000.{index,data-00000-of-00001}``: the conditional WGAN-GP critic trained
10,000 steps at lr 5e-5 on 60,000 augmented MNIST digits. TensorFlow is not needed (nor used):
:mod:`tf_checkpoint` (beside this file) reads the checkpoint — nothing is unpickled — and this
maps the five Keras variables onto :class:`defenses.depois.networks.Critic` (Keras kernels are
``in × out``; torch's ``Linear`` weights are ``out × in``).

    git clone https://github.com/Oschart/Attack-On-DePois && git -C Attack-On-DePois checkout 12f7f8ea6a8b9fbcbf0de703b532a1ba0ad55011
    python tools/reference_critic.py Attack-On-DePois/src/weights/critic OUT.safetensors   # CHECKPOINT_DIR holds the two files
    python tools/reference_critic.py CHECKPOINT_DIR OUT.safetensors --check   # also print scores of a few digits

``OUT.safetensors`` is then usable as ``defense.params.critic_weights`` (De-Pois skips training and
uses it). Never commit the converted weights: they are the reference authors' artifact.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch
from tf_checkpoint import read_checkpoint

INDEX, DATA = "discriminator_CWGANGP_10000.index", "discriminator_CWGANGP_10000.data-00000-of-00001"
#: The reference repository's commit these files were read from (its last, of 2022-02-04), and their sha256:
#: the committed results that use the reference critic come from exactly these bytes.
PINNED_COMMIT = "12f7f8ea6a8b9fbcbf0de703b532a1ba0ad55011"
SHA256 = {
    INDEX: "9b228df72f5fdffd7bb8c39851e7a271c219a86cd785453c7b2b44cdb8da2def",
    DATA: "f05e1bf97dbc07c63cc21f21fcd70bd2264ebeb9b9850b63c6816b312d7adea4",
}
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


def verified(path: Path) -> bytes:
    """The bytes of one of the two checkpoint files, refused unless they are the pinned ones."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[path.name]:
        raise SystemExit(f"{path}: sha256 {digest} is not the pinned {SHA256[path.name]} "
                         f"(check out commit {PINNED_COMMIT} of Oschart/Attack-On-DePois)")
    return data


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
    tensors = read_checkpoint(verified(args.checkpoint_dir / INDEX), verified(args.checkpoint_dir / DATA))
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
