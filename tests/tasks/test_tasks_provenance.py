"""Run records name the machine: architecture, cores, the CPU's model name and the
instruction set of torch's CPU kernels."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest
import torch

from kgfuse.tasks.provenance import cpu_kernels, cpu_model, machine


def test_machine_names_the_cpu_its_cores_and_model():
    m = machine()
    assert m.startswith(f"{platform.machine()} CPU, {os.cpu_count()} cores")
    assert m == machine("cpu") == machine(torch.device("cpu"))
    assert cpu_kernels() == torch.backends.cpu.get_cpu_capability()
    details = "; ".join(x for x in (cpu_model(), f"kernels {cpu_kernels()}") if x)
    assert m.endswith(f" ({details})")


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="Linux only: reads /proc/cpuinfo")
def test_cpu_model_is_the_model_name_of_proc_cpuinfo():
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.split(":", 1)[0].strip() == "model name"]
    if not names:
        pytest.skip("this kernel's /proc/cpuinfo has no model name")
    assert cpu_model() == " ".join(names[0].split())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_machine_names_the_gpu_first_on_cuda():
    assert machine("cuda:0").startswith(f"{torch.cuda.get_device_name(0)} GPU; {platform.machine()} CPU")
