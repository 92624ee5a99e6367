"""devices.get_num_gpus and the util helpers (without Spark; Spark sizing is in test_spark)."""

import os
import stat

import pytest

from hops import devices, util


@pytest.mark.parametrize("value, count", [("0,1", 2), ("", 0), ("-1", 0), ("3", 1), ("0,-1,2", 1)])
def test_gpus_from_cuda_visible_devices(monkeypatch, value, count):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert devices.get_num_gpus() == count


def test_gpus_from_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert devices.get_num_gpus() == 0  # no nvidia-smi: no GPU, no error
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-1)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-2)'\n"
    )
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    assert devices.get_num_gpus() == 2


def test_grid_params_is_the_cartesian_product():
    grid = util.grid_params({"lr": [0.1, 0.01], "layers": [1, 2, 3]})
    assert len(grid["lr"]) == len(grid["layers"]) == 6
    assert set(zip(grid["lr"], grid["layers"], strict=True)) == {
        (lr, n) for lr in (0.1, 0.01) for n in (1, 2, 3)
    }


@pytest.mark.parametrize("bad", [{}, {"lr": []}, {"lr": 0.1}, [1, 2]])
def test_grid_params_bad_input(bad):
    with pytest.raises(ValueError):
        util.grid_params(bad)


def test_sizing_without_spark(monkeypatch):
    assert util.num_executors() == (os.cpu_count() or 1)
    monkeypatch.setenv("HOPS_WORKERS", "3")
    assert util.num_executors() == 3
    assert util.num_param_servers() == 0
    monkeypatch.setenv("NUM_TF_PS", "2")
    assert util.num_param_servers() == 2


def test_hops_reexports_core_modules():
    import hops.hdfs
    import hops_jupyter.core.hdfs

    assert hops.hdfs is hops_jupyter.core.hdfs
    assert devices is __import__("hops_jupyter.core.devices", fromlist=["x"])
