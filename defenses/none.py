"""``none``: accepts everything — the undefended stream."""

from typing import Any

from streamsim import Batch, Defense, Verdicts


class NoDefense(Defense):
    """Accept every sample (no defense)."""

    accepts = ("images", "vectors")

    def screen(self, batch: Batch) -> Verdicts:
        return Verdicts.accept_all(len(batch))

    def checkpoint_state(self) -> dict[str, Any]:
        return {}

    def restore_state(self, state: dict[str, Any]) -> None:
        pass
