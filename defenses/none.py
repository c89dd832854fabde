"""``none``: accepts everything — the undefended stream."""

from streamsim import Batch, Defense, Verdicts


class NoDefense(Defense):
    """Accept every sample (no defense)."""

    def screen(self, batch: Batch) -> Verdicts:
        return Verdicts.accept_all(len(batch))
