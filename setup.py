"""Packaging that pyproject.toml cannot say: the top-level ``scenarios/`` folder ships inside the wheel
as ``streamsim/scenarios`` (package data), so ``streamsim run quickstart`` works from an installed wheel.
The repository keeps one copy, at the top, where users look for it."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["streamsim*", "defenses*", "attacks*"]), "streamsim.scenarios"],
    package_dir={"streamsim.scenarios": "scenarios"},
    package_data={"streamsim.scenarios": ["*.toml"]},
)
