"""The Prometheus metrics the monitor serves on /metrics: names, labels, buckets.

One prefix (`whoosh_`), base units (seconds, bytes, ratios 0..1, watts, Celsius),
`_total` on counters, and no label that grows with traffic (no task ids). GPU gauges
carry the labels NVIDIA's DCGM exporter uses (`gpu`, `UUID`, `modelName`, `Hostname`)
so dashboards written for DCGM map one to one (DCGM_FI_DEV_GPU_UTIL ->
whoosh_gpu_utilization_ratio, DCGM_FI_DEV_FB_USED -> whoosh_gpu_memory_used_bytes, ...),
in base units where DCGM uses percent and MiB. Grafana dashboards, the Prometheus rules
in deploy/ and the tests read the names from here.
"""

from __future__ import annotations

PREFIX = "whoosh"

# -- tasks and queue (from the coordinator's projection) -------------------------------
TASKS = "whoosh_tasks"  # gauge {status}
QUEUE_DEPTH = "whoosh_queue_depth"  # gauge

# -- per task, from the event stream (counters/histograms since the monitor started) ----
TASK_DURATION = "whoosh_task_duration_seconds"  # histogram {agent, model}
TIME_TO_FIRST_TOKEN = "whoosh_time_to_first_token_seconds"  # histogram {agent, model}
INPUT_TOKENS = "whoosh_input_tokens_total"  # counter {agent, model}
OUTPUT_TOKENS = "whoosh_output_tokens_total"  # counter {agent, model}
TASKS_FINISHED = "whoosh_tasks_finished_total"  # counter {agent, status}
TASK_RETRIES = "whoosh_task_retries_total"  # counter {agent}: attempts failed and re-queued

# -- per agent (from the coordinator's projection) -------------------------------------
AGENT_HEALTHY = "whoosh_agent_healthy"  # gauge {agent, type} 0/1
AGENT_ENABLED = "whoosh_agent_enabled"  # gauge {agent, type} 0/1
AGENT_REACHABLE = "whoosh_agent_reachable"  # gauge {agent, type} 0/1 (last inventory probe)
AGENT_IN_FLIGHT = "whoosh_agent_in_flight_tasks"  # gauge {agent, type}
AGENT_MAX_CONCURRENT = "whoosh_agent_max_concurrent_tasks"  # gauge {agent, type}
AGENT_COMPLETED = "whoosh_agent_tasks_completed_total"  # counter {agent, type} (whole store)
AGENT_FAILED = "whoosh_agent_attempts_failed_total"  # counter {agent, type} (whole store)
AGENT_DECODE_TPS = "whoosh_agent_decode_tokens_per_second"  # gauge {agent, model}
AGENT_PREFILL_TPS = "whoosh_agent_prefill_tokens_per_second"  # gauge {agent, model}
AGENT_RESPONSE_TIME = "whoosh_agent_response_time_seconds"  # gauge {agent}: recent mean
AGENT_FAILURE_RATIO = "whoosh_agent_failure_ratio"  # gauge {agent}: recent attempts failed
AGENT_TARGET_RESPONSE_TIME = "whoosh_agent_target_response_time_seconds"  # gauge {agent}
AGENT_TARGET_MIN_TPS = "whoosh_agent_target_min_tokens_per_second"  # gauge {agent}

# -- executors and their hosts (from heartbeats) ----------------------------------------
EXECUTORS = "whoosh_executors"  # gauge {type}: live executors serving the type
EXECUTOR_RUNNING = "whoosh_executor_running_tasks"  # gauge {executor, host}
HOST_CPU = "whoosh_host_cpu_usage_ratio"  # gauge {host}
HOST_MEMORY_USED = "whoosh_host_memory_used_bytes"  # gauge {host}
HOST_MEMORY_TOTAL = "whoosh_host_memory_total_bytes"  # gauge {host}
SSH_POOL_IN_USE = "whoosh_ssh_pool_channels_in_use"  # gauge {target}
SSH_POOL_CAPACITY = "whoosh_ssh_pool_channels_capacity"  # gauge {target}

# -- GPUs (from heartbeats; DCGM label names) -------------------------------------------
GPU_LABELS = ("gpu", "UUID", "modelName", "Hostname")
GPU_UTILIZATION = "whoosh_gpu_utilization_ratio"  # DCGM_FI_DEV_GPU_UTIL / 100
GPU_MEMORY_USED = "whoosh_gpu_memory_used_bytes"  # DCGM_FI_DEV_FB_USED * 2**20
GPU_MEMORY_TOTAL = "whoosh_gpu_memory_total_bytes"  # DCGM_FI_DEV_FB_TOTAL * 2**20
GPU_MEMORY_RESERVED = "whoosh_gpu_memory_reserved_bytes"  # DCGM_FI_DEV_FB_RESERVED * 2**20
GPU_TEMPERATURE = "whoosh_gpu_temperature_celsius"  # DCGM_FI_DEV_GPU_TEMP
GPU_POWER = "whoosh_gpu_power_usage_watts"  # DCGM_FI_DEV_POWER_USAGE
GPU_POWER_LIMIT = "whoosh_gpu_power_limit_watts"  # DCGM_FI_DEV_POWER_MGMT_LIMIT

# -- alerts and the monitor itself ------------------------------------------------------
ALERTS_FIRING = "whoosh_alerts_firing"  # gauge {alertname, severity}
BUDGET_USED_RATIO = "whoosh_budget_used_ratio"  # gauge {scope}: the larger of tokens, USD
HEARTBEATS = "whoosh_monitor_heartbeats_total"  # counter
HEARTBEATS_REJECTED = "whoosh_monitor_heartbeats_rejected_total"  # counter {reason}
WEBHOOK_DELIVERIES = "whoosh_monitor_webhook_deliveries_total"  # counter {outcome}

# LLM work runs from well under a second to many minutes.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
