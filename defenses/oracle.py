"""``oracle``: rejects exactly the poisons — an upper bound no real defense can beat.

It reads ``batch.is_poison``, which real defenses must never do.
"""


from typing import Any

from streamsim import Batch, Defense, Verdicts


class OracleDefense(Defense):
    """Reject exactly the poisoned samples (upper bound; cheats by reading provenance)."""

    accepts = ("images", "vectors")

    def screen(self, batch: Batch) -> Verdicts:
        return Verdicts(accept=~batch.is_poison, score=(~batch.is_poison).float())

    def checkpoint_state(self) -> dict[str, Any]:
        return {}

    def restore_state(self, state: dict[str, Any]) -> None:
        pass
