"""A stand-in for the `pynvml` module: the calls the collector makes, with NVML's units
(percent, bytes, degrees, milliwatts) and its error codes, GPUs described by the test."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_TEMPERATURE_GPU = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_MEMORY_V2 = 0x02000028  # pynvml.nvmlMemory_v2: sizeof(struct) | 2 << 24
# On a real H200 (driver 580.159.04) the v2 call with another struct version answered 13
# (Function Not Found), not 25: the fake answers 25, the collector treats both alike.
MESSAGES = {
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH: "Argument Version Mismatch",
}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return MESSAGES.get(self.value, f"NVML error {self.value}")


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-1b2c3d4e-0000-1111-2222-333344445555"
    util_percent: int = 87
    memory_used: int = 30 * 2**30  # by processes: what v2 reports as used
    memory_reserved: int = 615 * 2**20  # by the driver: v1 counts it as used
    memory_total: int = 80 * 2**30
    temperature: int = 64
    power_mw: int = 412_345
    limit_mw: int = 700_000
    unsupported: set[str] = field(default_factory=set)  # calls answering NOT_SUPPORTED
    lost: bool = False


class FakeNvml:
    """`driver_v2`: the driver has nvmlDeviceGetMemoryInfo_v2 (else pynvml raises Function
    Not Found, as with drivers before 510); `bindings_v2`: the pynvml module has
    `nvmlMemory_v2` and the `version` parameter (older nvidia-ml-py has neither)."""

    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVMLError = NVMLError

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        init_error: int | None = None,
        *,
        driver_v2: bool = True,
        bindings_v2: bool = True,
    ) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        self.init_error = init_error
        self.driver_v2 = driver_v2
        if bindings_v2:
            self.nvmlMemory_v2 = NVML_MEMORY_V2
        self.calls: list[str] = []
        self.initialized = 0
        self.shut_down = 0

    def _gpu(self, handle: int, call: str) -> FakeGpu:
        self.calls.append(call)
        gpu = self.gpus[handle]
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if call in gpu.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def nvmlInit(self) -> None:
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self.shut_down += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._gpu(handle, "name").name

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._gpu(handle, "uuid").uuid

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=self._gpu(handle, "utilization").util_percent, memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: int, **version: int) -> Any:
        if version and not hasattr(self, "nvmlMemory_v2"):
            raise TypeError("nvmlDeviceGetMemoryInfo() got an unexpected keyword 'version'")
        if version:
            return self._memory_v2(handle, version["version"])
        gpu = self._gpu(handle, "memory")
        used = gpu.memory_used + gpu.memory_reserved  # v1: the driver's reserve counts as used
        return SimpleNamespace(used=used, total=gpu.memory_total, free=gpu.memory_total - used)

    def _memory_v2(self, handle: int, version: int) -> Any:
        self.calls.append("memory_v2")
        if not self.driver_v2:
            raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
        if version != NVML_MEMORY_V2:
            raise NVMLError(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        gpu = self._gpu(handle, "memory")
        free = gpu.memory_total - gpu.memory_used - gpu.memory_reserved
        return SimpleNamespace(
            version=version,
            total=gpu.memory_total,
            reserved=gpu.memory_reserved,
            free=free,
            used=gpu.memory_used,
        )

    def nvmlDeviceGetTemperatureV(self, handle: int, sensor: int) -> int:
        assert sensor == NVML_TEMPERATURE_GPU
        return self._gpu(handle, "temperatureV").temperature

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        raise AssertionError("the deprecated temperature call was used")

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._gpu(handle, "power").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return self._gpu(handle, "power_limit").limit_mw
