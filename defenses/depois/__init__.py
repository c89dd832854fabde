"""De-Pois (Chen et al., IEEE TIFS 2021) as the built-in defense ``depois``; see :mod:`.defense`."""

from defenses.depois.defense import DePois

__all__ = ["DePois"]
