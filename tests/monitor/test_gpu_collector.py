"""GPU readings through NVML, against a fake NVML module (no GPU on the test machines)."""

from __future__ import annotations

import logging

import pytest
from monitor.fake_nvml import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_FUNCTION_NOT_FOUND,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    FakeGpu,
    FakeNvml,
    NVMLError,
)
from whoosh_shared.contract.heartbeat import GpuReading
from whoosh_shared.runtime.gpu import GpuCollector


def test_readings_are_converted_to_base_units() -> None:
    nvml = FakeNvml([FakeGpu(), FakeGpu(name=b"NVIDIA L4", uuid="GPU-2", util_percent=0)])
    readings, status = GpuCollector(nvml).read()
    assert status is None
    assert readings == [
        GpuReading(
            index=0,
            uuid="GPU-1b2c3d4e-0000-1111-2222-333344445555",
            name="NVIDIA H100 80GB HBM3",
            utilization_ratio=0.87,
            memory_used_bytes=30 * 2**30,
            memory_total_bytes=80 * 2**30,
            memory_reserved_bytes=615 * 2**20,
            temperature_celsius=64.0,
            power_watts=412.345,
            power_limit_watts=700.0,
        ),
        GpuReading(
            index=1,
            uuid="GPU-2",
            name="NVIDIA L4",  # older bindings answer bytes
            utilization_ratio=0.0,
            memory_used_bytes=30 * 2**30,
            memory_total_bytes=80 * 2**30,
            memory_reserved_bytes=615 * 2**20,
            temperature_celsius=64.0,
            power_watts=412.345,
            power_limit_watts=700.0,
        ),
    ]
    assert "temperatureV" in nvml.calls  # the non-deprecated call


def test_memory_v2_reports_used_without_the_drivers_reserve() -> None:
    """The H200 case: at idle v1 said 615 MiB used where nvidia-smi and DCGM say 0."""
    nvml = FakeNvml([FakeGpu(memory_used=0, memory_reserved=615 * 2**20)])
    collector = GpuCollector(nvml)
    (reading,), _ = collector.read()
    assert (reading.memory_used_bytes, reading.memory_reserved_bytes) == (0, 615 * 2**20)
    collector.read()
    assert nvml.calls.count("memory_v2") == 2 and "memory" in nvml.calls


@pytest.mark.parametrize(
    "fake",
    [
        pytest.param({"driver_v2": False}, id="driver-without-v2"),
        pytest.param({"bindings_v2": False}, id="bindings-without-v2"),
    ],
)
def test_memory_falls_back_to_v1_where_v2_is_not_offered(fake: dict[str, bool]) -> None:
    nvml = FakeNvml([FakeGpu(memory_used=2**30, memory_reserved=615 * 2**20)], **fake)
    collector = GpuCollector(nvml)
    for _ in range(3):
        (reading,), status = collector.read()
        assert status is None
        assert reading.memory_used_bytes == 2**30 + 615 * 2**20  # v1: reserve counted as used
        assert reading.memory_reserved_bytes is None  # unknown, not zero
    assert nvml.calls.count("memory_v2") == (1 if fake.get("driver_v2") is False else 0)


def test_a_version_mismatch_falls_back_to_v1() -> None:
    nvml = FakeNvml([FakeGpu(memory_used=2**30, memory_reserved=0)])
    nvml.nvmlMemory_v2 = 0x01000028  # bindings naming a struct version this driver refuses
    (reading,), status = GpuCollector(nvml).read()
    assert status is None and reading.memory_used_bytes == 2**30
    assert reading.memory_reserved_bytes is None


def test_nvml_is_initialised_once_and_shut_down_on_close() -> None:
    nvml = FakeNvml()
    collector = GpuCollector(nvml)
    collector.read()
    collector.read()
    assert nvml.initialized == 1
    collector.close()
    assert nvml.shut_down == 1


def test_a_reading_the_gpu_does_not_support_is_none_not_an_error() -> None:
    nvml = FakeNvml([FakeGpu(unsupported={"power", "power_limit", "temperatureV"})])
    (reading,), status = GpuCollector(nvml).read()
    assert status is None
    assert (reading.power_watts, reading.power_limit_watts, reading.temperature_celsius) == (
        None,
        None,
        None,
    )
    assert reading.utilization_ratio == 0.87


def test_a_lost_gpu_is_left_out_and_named() -> None:
    nvml = FakeNvml([FakeGpu(lost=True), FakeGpu(uuid="GPU-ok")])
    readings, status = GpuCollector(nvml).read()
    assert [r.uuid for r in readings] == ["GPU-ok"]
    assert status == "GPU 0: GPU is lost"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NVML_ERROR_LIBRARY_NOT_FOUND, "no GPU: NVML Shared Library Not Found"),
        (NVML_ERROR_DRIVER_NOT_LOADED, "no GPU: Driver Not Loaded"),
    ],
)
def test_a_host_without_a_driver_reports_no_gpu_once_and_quietly(
    error: int, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    nvml = FakeNvml(init_error=error)
    collector = GpuCollector(nvml)
    with caplog.at_level(logging.DEBUG, logger="whoosh_shared.runtime.gpu"):
        for _ in range(5):
            assert collector.read() == ([], reason)
    assert nvml.calls.count("nvmlInit") == 1  # not retried on every heartbeat
    assert len(caplog.records) == 1
    collector.close()  # nothing to shut down; no error


def test_no_bindings_installed_is_no_gpu_too() -> None:
    collector = GpuCollector(load=lambda: None)
    assert collector.read() == ([], "no GPU: the nvidia-ml-py package is not installed")


def test_a_host_whose_driver_lists_no_gpu() -> None:
    assert GpuCollector(FakeNvml([])).read() == ([], "no GPU: the driver reports none")


def test_the_real_bindings_on_this_machine_say_no_gpu_without_raising() -> None:
    readings, status = GpuCollector().read()
    assert readings or status  # a GPU machine reads them; this one says why not


def test_a_driver_answering_function_not_found_to_a_struct_version_falls_back() -> None:
    """What driver 580 on an H200 answered to a v2 call with a version-1 struct (13)."""
    nvml = FakeNvml([FakeGpu(memory_used=2**30, memory_reserved=0)])

    def refuse(handle: int, **version: int) -> object:
        if version:
            raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
        return FakeNvml.nvmlDeviceGetMemoryInfo(nvml, handle)

    nvml.nvmlDeviceGetMemoryInfo = refuse  # type: ignore[method-assign]
    (reading,), status = GpuCollector(nvml).read()
    assert status is None and reading.memory_used_bytes == 2**30
