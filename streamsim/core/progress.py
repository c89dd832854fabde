"""How long-running work reports progress without the core knowing about terminals.

Components receive a :class:`ProgressFactory` in their setup context and call it to open a task.
The CLI passes one backed by rich; tests and library users get :data:`silent`.
"""

from __future__ import annotations

from typing import Protocol


class ProgressTask(Protocol):
    def advance(self, n: int = 1, **fields: float) -> None:
        """Mark ``n`` more steps done; ``fields`` are the current losses or other numbers to show."""

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, description: str, total: int) -> ProgressTask: ...


class _SilentTask:
    def advance(self, n: int = 1, **fields: float) -> None:
        pass

    def close(self) -> None:
        pass


def silent(description: str, total: int) -> ProgressTask:
    """A progress factory that shows nothing."""
    return _SilentTask()
