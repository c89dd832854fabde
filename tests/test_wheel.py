"""The wheel is what users install: build it, install it in a fresh venv, and run from outside the repository.

Offline and quick: the wheel is built without build isolation (the dev venv's setuptools), and the fresh
venv gets the dependencies as links to the dev venv's installed packages rather than a second download of
torch. Only streamsim itself comes from the wheel, so a scenario or module the wheel forgot fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What a wheel is built from: pyproject, setup.py, the README it names, the packages and the scenarios.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "streamsim", "defenses", "attacks", "scenarios")


def _build_wheel(tmp: Path) -> Path:
    # A copy, so the build's build/ and *.egg-info stay out of the checkout (and parallel runs don't share them).
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(src)], check=True, capture_output=True)
    (wheel,) = dist.glob("streamsim-*.whl")
    return wheel


def _fresh_venv(tmp: Path) -> tuple[Path, Path]:
    """A venv without streamsim whose site-packages links every other package of the running (dev) venv."""
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        name = entry.name.lower()
        # streamsim's own files (its editable finder, dist-info, packages) must come from the wheel alone
        if name.startswith(("streamsim", "__editable__", "defenses", "attacks", "__pycache__")):
            continue
        (site / entry.name).symlink_to(entry)
    return env_dir, python


def test_the_wheel_runs_built_in_scenarios_and_lists_them_from_outside_the_repository(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], check=True, capture_output=True,
                           text=True).stdout
    shipped = {Path(line.split()[0]).name for line in names.splitlines() if "streamsim/scenario/builtin/" in line}
    assert shipped == {p.name for p in (REPO / "scenarios").glob("*.toml")}, "every scenario ships, once"

    env_dir, python = _fresh_venv(tmp_path)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "STREAMSIM_CACHE")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=outside, env=env, capture_output=True, text=True, timeout=300)

    where = run(str(python), "-c", "import streamsim, streamsim.scenario.config as c; print(streamsim.__file__); print(c.SCENARIO_DIR)")
    module, scenarios = (Path(line) for line in where.stdout.split())
    assert module.is_relative_to(env_dir), f"streamsim was imported from {module}, not the wheel"
    assert scenarios == module.parent / "scenario" / "builtin"

    listed = run(str(env_dir / "bin" / "streamsim"), "list")
    assert listed.returncode == 0, listed.stderr
    for expected in ("quickstart", "tiny", "depois", "label-flip", "small-cnn", "mnist-5k"):
        assert expected in listed.stdout, f"`streamsim list` from the wheel lacks {expected}"

    ran = run(str(env_dir / "bin" / "streamsim"), "run", "tiny", "--out", "runs/tiny")
    assert ran.returncode == 0, ran.stderr
    assert (outside / "runs" / "tiny" / "summary.json").is_file(), sorted(p.name for p in (outside / "runs" / "tiny").iterdir())
