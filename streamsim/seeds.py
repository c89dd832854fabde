"""Seeds, the one home for them: child seeds by name, seeded blocks of torch's global RNG, generators.

Every component gets its own child seed, derived from the run seed and its name.

Deriving by name (not by order) keeps the clean stream identical whether or not attackers run,
so the no-attack baseline sees exactly the same clean batches.

>>> child_seed(0, "learner") == child_seed(0, "learner") != child_seed(1, "learner")
True
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def child_seed(seed: int, name: str) -> int:
    """A 32-bit seed for the component ``name`` of a run seeded with ``seed``."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under torch's global RNG seeded with ``seed``, then give the caller's RNG back.

    For what draws from the global RNG and takes no generator — layer initialisation, dropout —
    so that it repeats with the seed and leaves the rest of the run's randomness untouched.

    >>> import torch
    >>> with seeded(3):
    ...     a = torch.nn.Linear(2, 2).weight
    >>> with seeded(3):
    ...     b = torch.nn.Linear(2, 2).weight
    >>> torch.equal(a, b)
    True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def torch_generator(seed: int) -> torch.Generator:
    """A torch generator seeded with ``seed`` (for ``randperm``, ``randn`` and the like)."""
    return torch.Generator().manual_seed(seed)


def shuffled_batches(n: int, batch_size: int, epochs: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index mini-batches over ``n`` samples for ``epochs`` epochs, reshuffled by ``generator`` each epoch.

    >>> [b.tolist() for b in shuffled_batches(3, 2, 1, torch_generator(0))]
    [[2, 0], [1]]
    """
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]
