"""Typed views of the API's objects. Every object keeps the server's full JSON in ``raw``."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .errors import FastGPUError


class JobState(str, enum.Enum):
    """A job's state. Compares equal to its name: ``job.state == "RUNNING"``."""

    QUEUED = "QUEUED"
    SCHEDULED = "SCHEDULED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    PREEMPTED = "PREEMPTED"
    LOST = "LOST"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.LOST)


def _state(v: Any) -> JobState:
    try:
        return JobState(str(v))
    except ValueError:
        raise FastGPUError(f"the server answered an unknown job state {v!r}: upgrade fastgpu-sdk") from None


def _opt_int(v: Any) -> Optional[int]:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _ms(v: Any) -> Optional[int]:
    return v if isinstance(v, int) and v > 0 else None


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    state: JobState
    project: str
    user: str
    command: List[str]
    gpus: str
    gpus_milli: int
    gpu_type: str
    memory_mib: int
    runtime_limit_s: int
    priority: int
    env: Dict[str, str]
    node: str
    assigned_gpus: List[str]
    exit_code: Optional[int]
    signal: Optional[int]
    reason: str
    attempt: int
    created_at_ms: Optional[int]
    started_at_ms: Optional[int]
    finished_at_ms: Optional[int]
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Dict[str, Any]) -> "Job":
        return cls(
            id=str(j.get("id", "")),
            name=str(j.get("name", "")),
            state=_state(j.get("state", "")),
            project=str(j.get("project", "")),
            user=str(j.get("user", "")),
            command=list(j.get("command") or []),
            gpus=str(j.get("gpus", "")),
            gpus_milli=int(j.get("gpus_milli") or 0),
            gpu_type=str(j.get("gpu_type", "")),
            memory_mib=int(j.get("memory_mib") or 0),
            runtime_limit_s=int(j.get("runtime_limit_s") or 0),
            priority=int(j.get("priority") or 0),
            env=dict(j.get("env") or {}),
            node=str(j.get("node", "")),
            assigned_gpus=list(j.get("assigned_gpus") or []),
            exit_code=_opt_int(j.get("exit_code")),
            signal=_opt_int(j.get("signal")),
            reason=str(j.get("reason", "")),
            attempt=int(j.get("attempt") or 0),
            created_at_ms=_ms(j.get("created_at_ms")),
            started_at_ms=_ms(j.get("started_at_ms")),
            finished_at_ms=_ms(j.get("finished_at_ms")),
            raw=j,
        )

    @property
    def gpu_usage(self) -> List[Dict[str, Any]]:
        """Per GPU of the current (or last) run: uuid, node, samples, avg_util_pct, peak_util_pct,
        peak_memory_mib, energy_j (docs/monitoring.md). Empty before the job has run."""
        return list(self.raw.get("gpu_usage") or [])

    @property
    def terminal(self) -> bool:
        """True once the job has ended (SUCCEEDED, FAILED, CANCELLED or LOST)."""
        return self.state.terminal

    @property
    def succeeded(self) -> bool:
        return self.state == JobState.SUCCEEDED

    @property
    def created_at(self) -> str:
        return str(self.raw.get("created_at") or "")

    @property
    def started_at(self) -> Optional[str]:
        return self.raw.get("started_at") or None

    @property
    def finished_at(self) -> Optional[str]:
        return self.raw.get("finished_at") or None

    @property
    def queued_seconds(self) -> Optional[float]:
        """Seconds from submit to start (None before it starts)."""
        if self.created_at_ms is None or self.started_at_ms is None:
            return None
        return (self.started_at_ms - self.created_at_ms) / 1000.0

    @property
    def run_seconds(self) -> Optional[float]:
        """Seconds from start to end (None unless it started and ended)."""
        if self.started_at_ms is None or self.finished_at_ms is None:
            return None
        return (self.finished_at_ms - self.started_at_ms) / 1000.0

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]


@dataclass(frozen=True)
class JobEvent:
    seq: int
    job_id: str
    at: str
    at_ms: int
    from_state: str
    to_state: str
    reason: str
    actor: str
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Dict[str, Any]) -> "JobEvent":
        return cls(
            seq=int(j.get("seq") or 0),
            job_id=str(j.get("job_id", "")),
            at=str(j.get("at", "")),
            at_ms=int(j.get("at_ms") or 0),
            from_state=str(j.get("from", "")),
            to_state=str(j.get("to", "")),
            reason=str(j.get("reason", "")),
            actor=str(j.get("actor", "")),
            raw=j,
        )


@dataclass(frozen=True)
class Gpu:
    uuid: str
    index: int
    name: str
    type: str
    node: str
    memory_total_mib: int
    memory_used_mib: int
    utilization_pct: int
    temperature_c: int
    power_mw: int
    simulated: bool
    healthy: bool
    allocated_milli: int
    jobs: List[str]
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Dict[str, Any]) -> "Gpu":
        return cls(
            uuid=str(j.get("uuid", "")),
            index=int(j.get("index") or 0),
            name=str(j.get("name", "")),
            type=str(j.get("type", "")),
            node=str(j.get("node", "")),
            memory_total_mib=int(j.get("memory_total_mib") or 0),
            memory_used_mib=int(j.get("memory_used_mib") or 0),
            utilization_pct=int(j.get("utilization_pct") or 0),
            temperature_c=int(j.get("temperature_c") or 0),
            power_mw=int(j.get("power_mw") or 0),
            simulated=bool(j.get("simulated", False)),
            healthy=bool(j.get("healthy", False)),
            allocated_milli=int(j.get("allocated_milli") or 0),
            jobs=list(j.get("jobs") or []),
            raw=j,
        )


@dataclass(frozen=True)
class Node:
    name: str
    state: str
    healthy: bool
    simulated: bool
    gpu_count: int
    labels: Dict[str, str]
    last_heartbeat: str
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, j: Dict[str, Any]) -> "Node":
        return cls(
            name=str(j.get("name", "")),
            state=str(j.get("state", "")),
            healthy=bool(j.get("healthy", False)),
            simulated=bool(j.get("simulated", False)),
            gpu_count=int(j.get("gpu_count") or 0),
            labels=dict(j.get("labels") or {}),
            last_heartbeat=str(j.get("last_heartbeat", "")),
            raw=j,
        )


@dataclass(frozen=True)
class TaskResult:
    """What ``Task.result()`` returns: how the job ended, with timings and the end of its output."""

    job_id: str
    state: JobState
    exit_code: Optional[int]
    signal: Optional[int]
    reason: str
    queued_seconds: Optional[float]
    run_seconds: Optional[float]
    log_tail: str
    job: Job = field(repr=False, compare=False)

    @property
    def succeeded(self) -> bool:
        return self.state == JobState.SUCCEEDED
