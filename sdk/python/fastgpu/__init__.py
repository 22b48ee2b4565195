"""FastGPU Python SDK (distribution ``fastgpu-sdk``): a client for the FastGPU REST API, standard library only.

    import fastgpu
    with fastgpu.Client() as client:
        task = client.create_task("train", compute="gpu", memory=1024, runtime=24, command="python3 train.py")
        task.submit()
        print(task.result(timeout=3600).log_tail)

See docs/sdk.md.
"""
from ._version import __version__
from .client import Client, JobPage, Jobs, Task, job_body, new_idempotency_key
from .config import ClientConfig
from .errors import (
    AlreadyExists,
    APIError,
    ClientClosed,
    Conflict,
    ConnectionFailed,
    DeadlineExceeded,
    FailedPrecondition,
    FastGPUError,
    InternalError,
    InvalidRequest,
    JobFailed,
    NotFound,
    NotSupported,
    PayloadTooLarge,
    PermissionDenied,
    QuotaExceeded,
    QuotaUnschedulable,
    TLSError,
    Unauthenticated,
    Unavailable,
    Unschedulable,
    WaitTimeout,
)
from .models import Gpu, Job, JobEvent, JobState, Node, TaskResult

__all__ = [
    "__version__",
    "Client", "ClientConfig", "Task", "TaskResult", "Jobs", "JobPage", "job_body", "new_idempotency_key",
    "Job", "JobEvent", "JobState", "Gpu", "Node",
    "FastGPUError", "APIError", "InvalidRequest", "PayloadTooLarge", "NotSupported", "Unauthenticated",
    "PermissionDenied", "NotFound", "Conflict", "AlreadyExists", "FailedPrecondition", "Unschedulable",
    "QuotaExceeded", "QuotaUnschedulable", "DeadlineExceeded", "Unavailable", "ConnectionFailed", "TLSError",
    "InternalError", "ClientClosed", "WaitTimeout", "JobFailed",
]
