"""GPU readings through NVIDIA's NVML (the `nvidia-ml-py` package, imported as `pynvml`).

Per GPU: utilization, memory used/total/reserved, temperature (`nvmlDeviceGetTemperatureV`, the
call that replaces the deprecated `nvmlDeviceGetTemperature`), power draw and enforced
power limit, converted to base units (ratio 0..1, bytes, degrees Celsius, watts).

Memory is read with NVML's version-2 call (`nvmlDeviceGetMemoryInfo_v2`) where the driver
and bindings offer it: its `used` excludes the memory the driver reserves for itself, so
it matches `nvidia-smi` and DCGM (version 1 counts the reserve as used: ~600 MiB "used" on
an idle H200). The reserve is reported on its own (DCGM's FB_RESERVED). Elsewhere the
version-1 call is used and the reserve is unknown (None).

A host without an NVIDIA driver (or without the bindings) is normal: `read()` then
returns no readings and one short status ("no GPU: ..."), logged once, never raised. A
reading a GPU does not support (NVML_ERROR_NOT_SUPPORTED) is left as None; a GPU that
fails as a whole (lost, needs a reset) is left out and named in the status.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from whoosh_shared.contract.heartbeat import MAX_GPUS, GpuReading

log = logging.getLogger(__name__)

MILLI = 1000.0
VERSION_MISMATCH = 25  # NVML_ERROR_ARGUMENT_VERSION_MISMATCH


def load_nvml() -> Any:
    """The pynvml module, or None when the bindings are not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


class GpuCollector:
    """Initializes NVML on first use (once); thread-safe, as heartbeats read it off-loop."""

    def __init__(self, nvml: Any | None = None, *, load: Callable[[], Any] = load_nvml) -> None:
        self._nvml = nvml
        self._load = load
        self._ready = False
        self._unavailable: str | None = None
        self._lock = threading.Lock()
        self._memory_v2: bool | None = None  # None: not tried yet

    @property
    def unavailable(self) -> str | None:
        """Why there are no readings on this host, once that is known."""
        return self._unavailable

    def read(self) -> tuple[list[GpuReading], str | None]:
        """(readings, status): status is None when every GPU was read."""
        with self._lock:
            if not self._ready and self._unavailable is None:
                self._init()
            if self._unavailable is not None:
                return [], self._unavailable
            return self._read_all()

    def close(self) -> None:
        with self._lock:
            if self._ready:
                try:
                    self._nvml.nvmlShutdown()
                except Exception as exc:  # shutting down: nothing to do about it
                    log.debug("nvmlShutdown failed: %s", exc)
                self._ready = False

    def _init(self) -> None:
        nvml = self._nvml if self._nvml is not None else self._load()
        if nvml is None:
            self._give_up("the nvidia-ml-py package is not installed")
            return
        self._nvml = nvml
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError (no library, no driver) or an OSError loading it
            self._give_up(_describe(exc))
            return
        self._ready = True

    def _give_up(self, reason: str) -> None:
        self._unavailable = f"no GPU: {reason}"
        log.info("GPU readings off: %s", reason)

    def _read_all(self) -> tuple[list[GpuReading], str | None]:
        nvml = self._nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:
            return [], f"GPUs not readable: {_describe(exc)}"
        readings: list[GpuReading] = []
        failed: list[str] = []
        for index in range(min(count, MAX_GPUS)):
            try:
                readings.append(self._read_one(index))
            except Exception as exc:  # this GPU as a whole: lost, needs a reset, ...
                failed.append(f"GPU {index}: {_describe(exc)}")
        if count == 0:
            return [], "no GPU: the driver reports none"
        return readings, "; ".join(failed)[:300] if failed else None

    def _read_one(self, index: int) -> GpuReading:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        utilization = _optional(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        memory = _optional(lambda: self._memory(handle))
        temperature = _optional(
            lambda: nvml.nvmlDeviceGetTemperatureV(handle, nvml.NVML_TEMPERATURE_GPU)
        )
        power_mw = _optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        limit_mw = _optional(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        return GpuReading(
            index=index,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            name=_text(nvml.nvmlDeviceGetName(handle)),
            utilization_ratio=None if utilization is None else min(1.0, utilization / 100.0),
            memory_used_bytes=None if memory is None else int(memory.used),
            memory_total_bytes=None if memory is None else int(memory.total),
            memory_reserved_bytes=_reserved(memory),
            temperature_celsius=None if temperature is None else float(temperature),
            power_watts=None if power_mw is None else power_mw / MILLI,
            power_limit_watts=None if limit_mw is None else limit_mw / MILLI,
        )

    def _memory(self, handle: Any) -> Any:
        """Version-2 memory info (used excludes the driver's reserve), else version 1.

        Which one works is a property of the driver and bindings, so it is learnt once:
        a driver without `_v2` is not asked (and does not fail) on every heartbeat."""
        nvml = self._nvml
        version = getattr(nvml, "nvmlMemory_v2", None)
        if version is not None and self._memory_v2 is not False:
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle, version=version)
                self._memory_v2 = True
                return memory
            except Exception as exc:
                if not _v2_unavailable(exc):
                    raise
                log.info("NVML memory info v2 unavailable (%s): using v1", _describe(exc))
                self._memory_v2 = False
        return nvml.nvmlDeviceGetMemoryInfo(handle)


def _v2_unavailable(exc: BaseException) -> bool:
    """The driver lacks the v2 call or struct version, or the bindings lack the parameter."""
    if isinstance(exc, TypeError | AttributeError):
        return True
    return _is_not_supported(exc) or getattr(exc, "value", None) == VERSION_MISMATCH


def _reserved(memory: Any) -> int | None:
    reserved = getattr(memory, "reserved", None)
    return None if reserved is None else int(reserved)


def _optional(read: Callable[[], Any]) -> Any:
    """One reading, or None where the GPU (or the driver) does not offer it."""
    try:
        return read()
    except Exception as exc:
        if _is_not_supported(exc) or isinstance(exc, AttributeError):
            return None
        raise


def _is_not_supported(exc: BaseException) -> bool:
    value = getattr(exc, "value", None)
    return value in (3, 13)  # NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]
