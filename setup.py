"""Packaging that pyproject.toml cannot say: the top-level ``scenarios/`` folder ships inside the wheel
as ``streamsim/scenario/builtin`` (package data, beside the code that reads scenarios), so
``streamsim run quickstart`` works from an installed wheel. The repository keeps one copy, at the top,
where users look for it."""

from setuptools import find_packages, setup

BUILTIN = "streamsim.scenario.builtin"

setup(
    packages=[*find_packages(include=["streamsim*", "defenses*", "attacks*"]), BUILTIN],
    package_dir={BUILTIN: "scenarios"},
    package_data={BUILTIN: ["*.toml"]},
)
