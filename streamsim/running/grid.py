"""A sweep's grid: its cells (one dict of parameter values each) and their stable ids.

A leaf module: the sweep, its jobs and the leaderboard all name cells the same way without
importing each other.

>>> cells = list(grid_cells({"defense.name": ["none", "knn"], "seed": [0]}))
>>> cells
[{'defense.name': 'none', 'seed': 0}, {'defense.name': 'knn', 'seed': 0}]
>>> len(cell_id(cells[0])), cell_id(cells[0]) == cell_id(dict(reversed(cells[0].items())))
(12, True)
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any


def grid_cells(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of the grid's values, in the grid's key order."""
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, combo, strict=True))


def cell_id(params: dict[str, Any]) -> str:
    """Twelve hex digits that name a cell whatever the order of its keys."""
    text = json.dumps(params, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
