"""The ``device`` option: cpu is the default and changes nothing; cuda without a GPU is bad input.

These run on the CPU only. A GPU run is checked by hand (see docs/benchmarks.md);
it is not expected to equal the CPU numbers.
"""

from __future__ import annotations

import pytest
import tomli_w
import torch
from typer.testing import CliRunner

import streamsim
from streamsim.core.errors import ConfigError
from streamsim.presentation.cli import app
from streamsim.running import preflight

runner = CliRunner()
DEPOIS_MICRO = {"name": "depois", "params": {"augment": {"factor": 1.2, "cgan_steps": 3, "authenticator_steps": 3},
                                             "critic": {"steps": 3}}}
COMPARED = ("final_accuracy", "baseline_final_accuracy", "ca", "da", "clean_frr", "poisons", "accepted_poisons")


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_device_cpu_and_auto_without_a_gpu_give_the_default_numbers(tiny, no_gpu):
    tiny.update(duration=4.0, eval_every=2.0, defense=DEPOIS_MICRO)
    default = streamsim.run(tiny, out=None, cache=False)
    for device in ("cpu", "auto"):
        other = streamsim.run({**tiny, "device": device}, out=None, cache=False)
        assert [other.summary[k] for k in COMPARED] == [default.summary[k] for k in COMPARED], device
        assert other.timeline.equals(default.timeline), device


def test_cuda_without_a_gpu_is_one_config_error(tiny, no_gpu):
    with pytest.raises(ConfigError, match="device = 'cuda'"):
        streamsim.run({**tiny, "device": "cuda"}, out=None)
    with pytest.raises(ConfigError, match="device"):
        streamsim.run({**tiny, "device": "tpu"}, out=None)  # not one of the three: pydantic refuses it


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_cli_device_cuda_without_a_gpu_is_one_line_exit_2(tmp_path, tiny, no_gpu, command):
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(tiny))
    out = tmp_path / "out"
    args = [command, str(path), "--out", str(out), "--device", "cuda"] + (
        ["--no-live"] if command == "run" else ["--grid", "seed=1,2"])
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "device = 'cuda'" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_torch_device_resolution(no_gpu):
    assert preflight.torch_device("cpu") == "cpu"
    assert preflight.torch_device("auto") == "cpu"
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        preflight.torch_device("cuda")
