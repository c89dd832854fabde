"""Child seeds: every component gets its own, derived from the run seed and its name.

Deriving by name (not by order) keeps the clean stream identical whether or not attackers run,
so the no-attack baseline sees exactly the same clean batches.

>>> child_seed(0, "learner") == child_seed(0, "learner") != child_seed(1, "learner")
True
"""

import hashlib


def child_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")
