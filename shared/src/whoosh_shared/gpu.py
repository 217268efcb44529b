"""GPU readings through NVIDIA's NVML (the `nvidia-ml-py` package, imported as `pynvml`).

Per GPU: utilization, memory used/total, temperature (`nvmlDeviceGetTemperatureV`, the
call that replaces the deprecated `nvmlDeviceGetTemperature`), power draw and enforced
power limit, converted to base units (ratio 0..1, bytes, degrees Celsius, watts).

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

from whoosh_shared.heartbeat import MAX_GPUS, GpuReading

log = logging.getLogger(__name__)

MILLI = 1000.0


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
        memory = _optional(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
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
            temperature_celsius=None if temperature is None else float(temperature),
            power_watts=None if power_mw is None else power_mw / MILLI,
            power_limit_watts=None if limit_mw is None else limit_mw / MILLI,
        )


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
