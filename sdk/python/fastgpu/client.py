"""The FastGPU client: ``fastgpu.Client()`` and its resources (jobs, GPUs, nodes, projects, secrets, ...)."""
from __future__ import annotations

import codecs
import datetime
import http.client
import math
import secrets as _secrets
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

from . import config as _config
from . import units
from ._http import Transport
from .errors import (
    ClientClosed,
    ConnectionFailed,
    FastGPUError,
    InvalidRequest,
    JobFailed,
    NotSupported,
    WaitTimeout,
)
from .models import Gpu, Job, JobEvent, JobState, Node, TaskResult

Command = Union[str, Sequence[str]]
JobRef = Union[str, Job]
_MAX_WAIT_PER_CALL_S = 300  # the server's cap on one /wait call
_LOG_IDLE_TIMEOUT_S = 60.0  # a silent job sends nothing for a long time: reconnect, do not fail


def _since_param(since: Union[str, datetime.datetime, None]) -> Optional[str]:
    """``since`` of a log read as the server takes it: RFC 3339, or a duration back from its now."""
    if since is None:
        return None
    if isinstance(since, datetime.datetime):
        if since.tzinfo is None:
            since = since.replace(tzinfo=datetime.timezone.utc)
        return since.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond // 1000:03d}Z"
    if isinstance(since, str) and since.strip():
        return since.strip()
    raise InvalidRequest("since must be a datetime or a string such as '10m', '2h' or '2026-12-08T10:00:00Z'")


class _Unstamped:
    """Counts the log's own bytes in output stamped with times ("<time> " before each line), to resume a cut
    stream at the right offset."""

    def __init__(self) -> None:
        self._line_start = True
        self._in_prefix = False

    def count(self, data: bytes) -> int:
        n, i, size = 0, 0, len(data)
        while i < size:
            if self._in_prefix:  # up to and including the space after the time
                j = data.find(b" ", i)
                if j < 0:
                    return n
                self._in_prefix = False
                i = j + 1
            elif self._line_start:  # the first byte of a time
                self._line_start = False
                self._in_prefix = True
                i += 1
            else:
                j = data.find(b"\n", i)
                if j < 0:
                    return n + size - i
                n += j + 1 - i
                i = j + 1
                self._line_start = True
        return n


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _job_id(ref: JobRef) -> str:
    if isinstance(ref, Job):
        return ref.id
    if not isinstance(ref, str) or not ref:
        raise InvalidRequest(f"a job id such as 'j-42' is needed, not {ref!r}")
    return ref


def _time_field(v: Union[str, int, datetime.datetime]) -> Union[str, int]:
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            raise InvalidRequest("a datetime for begin_at/deadline_at needs a time zone (e.g. datetime.timezone.utc)")
        return v.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return v


def _states(state: Union[None, str, JobState, Iterable[Union[str, JobState]]]) -> Optional[str]:
    if state is None:
        return None
    if isinstance(state, str):  # also JobState
        return str(state)
    return ",".join(str(s) for s in state)


def job_body(
    command: Command,
    *,
    name: Optional[str] = None,
    gpus: Optional[units.GpuSpec] = None,
    gpu_type: Optional[str] = None,
    memory: Optional[units.MemorySpec] = None,
    runtime: Optional[units.RuntimeSpec] = None,
    env: Optional[Mapping[str, str]] = None,
    project: Optional[str] = None,
    priority: Optional[int] = None,
    workdir: Optional[str] = None,
    max_retries: Optional[int] = None,
    secrets: Optional[Sequence[str]] = None,
    processes: Optional[str] = None,
    after: Optional[Sequence[JobRef]] = None,
    after_ok: Optional[Sequence[JobRef]] = None,
    preemptible: Optional[bool] = None,
    checkpoint_signal: Optional[str] = None,
    checkpoint_grace: Optional[units.RuntimeSpec] = None,
    begin_at: Optional[Union[str, int, datetime.datetime]] = None,
    deadline_at: Optional[Union[str, int, datetime.datetime]] = None,
    image: Optional[str] = None,
) -> Dict[str, Any]:
    """The JSON body of ``POST /v1/jobs`` (the JobSpec of the OpenAPI document), checked and in API units."""
    body: Dict[str, Any] = {}
    if isinstance(command, str):
        if not command.strip():
            raise InvalidRequest("command is empty: give the program to run, e.g. command='python3 train.py'")
        body["command"] = command  # run with sh -c
    else:
        argv = list(command)
        if not argv or not all(isinstance(a, str) for a in argv) or not argv[0]:
            raise InvalidRequest("command must be a shell string or a non-empty list of strings (argv)")
        body["command"] = argv
    if name is not None:
        body["name"] = name
    if gpus is not None:
        body["gpus"] = units.gpus_value(gpus)
    if gpu_type:
        body["gpu_type"] = gpu_type
    if memory is not None:
        body["memory_mib"] = units.memory_mib(memory)
    if runtime is not None:
        body["runtime_limit_s"] = units.runtime_seconds(runtime)
    if env:
        bad = [k for k, v in env.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise InvalidRequest(f"env values must be strings (check {bad[0]!r}); use str(value)")
        body["env"] = dict(env)
    if project:
        body["project"] = project
    if priority is not None:
        body["priority"] = priority
    if workdir is not None:
        body["workdir"] = workdir
    if image:
        body["image"] = image  # an OCI image on the node, run with podman (docs/containers.md)
    if max_retries is not None:
        body["max_retries"] = max_retries
    if secrets:
        body["secrets"] = list(secrets)
    if processes is not None:
        body["processes"] = processes
    if after:
        body["after"] = [_job_id(a) for a in after]
    if after_ok:
        body["after_ok"] = [_job_id(a) for a in after_ok]
    if preemptible is not None:
        body["preemptible"] = preemptible
    if checkpoint_signal is not None:
        body["checkpoint_signal"] = checkpoint_signal
    if checkpoint_grace is not None:
        body["checkpoint_grace_s"] = (
            units.runtime_seconds(checkpoint_grace) if not isinstance(checkpoint_grace, (int, float)) else int(checkpoint_grace)
        )
    if begin_at is not None:
        body["begin_at"] = _time_field(begin_at)
    if deadline_at is not None:
        body["deadline_at"] = _time_field(deadline_at)
    return body


def new_idempotency_key() -> str:
    return "fgk-" + _secrets.token_hex(16)


@dataclass(frozen=True)
class JobPage:
    jobs: List[Job]
    next_cursor: Optional[str]


class _Resource:
    def __init__(self, client: "Client") -> None:
        self._client = client

    @property
    def _t(self) -> Transport:
        return self._client._transport


class Jobs(_Resource):
    """``client.jobs``: submit, list, get, cancel, wait for and read the logs of jobs."""

    def submit(
        self,
        command: Command,
        *,
        idempotency_key: Optional[str] = None,
        **spec: Any,
    ) -> Job:
        """Submits a job and returns it (QUEUED). ``command`` is a shell string (run with ``sh -c``) or an argv
        list; the keyword arguments are those of :func:`job_body` (gpus, gpu_type, memory, runtime, env, project,
        priority, workdir, image, max_retries, secrets, processes, after, after_ok, preemptible, ...).

        Sent with an ``Idempotency-Key`` (a new random one unless given), so it is retried safely: a retry that
        reaches the server twice still creates one job."""
        if "project" not in spec and self._client.project:
            spec["project"] = self._client.project
        body = job_body(command, **spec)
        key = idempotency_key or new_idempotency_key()
        data = self._t.json("POST", "/v1/jobs", body=body, headers={"Idempotency-Key": key}, idempotent=True)
        return Job.from_json(data)

    def estimate(self, command: Command, **spec: Any) -> Dict[str, Any]:
        """Prices a job without creating it (``dry_run``): GPU type, price per hour, runtime limit, estimate."""
        if "project" not in spec and self._client.project:
            spec["project"] = self._client.project
        body = job_body(command, **spec)
        return dict(self._t.json("POST", "/v1/jobs", query={"dry_run": True}, body=body, idempotent=True))

    def page(
        self,
        *,
        state: Union[None, str, JobState, Iterable[Union[str, JobState]]] = None,
        project: Optional[str] = None,
        page_size: int = 100,
        cursor: Optional[str] = None,
    ) -> JobPage:
        """One page of jobs, newest first; pass ``next_cursor`` back as ``cursor`` for the next one."""
        data = self._t.json(
            "GET",
            "/v1/jobs",
            query={"state": _states(state), "project": project or None, "limit": page_size, "cursor": cursor or None},
        )
        return JobPage([Job.from_json(j) for j in data.get("jobs", [])], data.get("next_cursor") or None)

    def list(
        self,
        *,
        state: Union[None, str, JobState, Iterable[Union[str, JobState]]] = None,
        project: Optional[str] = None,
        limit: Optional[int] = None,
        page_size: int = 100,
    ) -> Iterator[Job]:
        """Jobs visible to the caller, newest first, fetched page by page as the iterator advances.
        ``state``: one state or several (``["QUEUED", "RUNNING"]``); ``limit``: stop after that many."""
        if limit is not None and limit <= 0:
            return iter(())
        return self._iterate(state, project, limit, page_size)

    def _iterate(self, state: Any, project: Optional[str], limit: Optional[int], page_size: int) -> Iterator[Job]:
        cursor: Optional[str] = None
        n = 0
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - n))
            p = self.page(state=state, project=project, page_size=size, cursor=cursor)
            for j in p.jobs:
                yield j
                n += 1
                if limit is not None and n >= limit:
                    return
            if not p.next_cursor:
                return
            cursor = p.next_cursor

    def get(self, job: JobRef) -> Job:
        return Job.from_json(self._t.json("GET", f"/v1/jobs/{_q(_job_id(job))}"))

    def cancel(self, job: JobRef) -> Job:
        """Cancels a job (a running one gets SIGTERM, then SIGKILL after the grace period)."""
        return Job.from_json(self._t.json("POST", f"/v1/jobs/{_q(_job_id(job))}/cancel", body={}))

    def events(self, job: JobRef) -> List[JobEvent]:
        """The job's state changes in order (who, when, from, to, why)."""
        data = self._t.json("GET", f"/v1/jobs/{_q(_job_id(job))}/events")
        return [JobEvent.from_json(e) for e in data.get("events", [])]

    def wait(self, job: JobRef, timeout: Optional[float] = None, *, until: str = "end") -> Job:
        """Waits until the job has ended (``until='running'``: until it runs or has ended) and returns it.
        ``timeout`` in seconds (None: no limit); raises :class:`WaitTimeout` (with ``.job``) when it passes."""
        if until not in ("end", "running"):
            raise InvalidRequest("until must be 'end' or 'running'")
        jid = _job_id(job)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            remaining = _MAX_WAIT_PER_CALL_S if deadline is None else deadline - time.monotonic()
            secs = max(0, min(_MAX_WAIT_PER_CALL_S, int(math.ceil(remaining))))
            data = self._t.json(
                "GET", f"/v1/jobs/{_q(jid)}/wait", query={"timeout": f"{secs}s", "for": until}, timeout=secs + 30.0
            )
            current = Job.from_json(data)
            if current.terminal or (until == "running" and current.state == JobState.RUNNING):
                return current
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"job {jid} is still {current.state} after {timeout:g} s", job=current
                )

    def log_chunks(
        self,
        job: JobRef,
        *,
        follow: bool = False,
        offset: int = 0,
        rank: int = 0,
        tail: Optional[int] = None,
        since: Union[str, datetime.datetime, None] = None,
        timestamps: bool = False,
    ) -> Iterator[bytes]:
        """The job's output (stdout and stderr together) as bytes, as it arrives. With ``follow`` the iterator
        ends when the job has ended and all output was read; a cut stream is resumed where it stopped.

        ``tail``: only the last N lines (with ``follow``: then what follows). ``since``: only lines written at or
        after a time, a ``datetime`` (naive means UTC) or a string: RFC 3339 (``"2026-12-08T10:00:00Z"``) or a
        duration back from the server's now (``"10m"``, ``"2h"``, ``"1d"``). ``timestamps``: each line prefixed
        with the time it was written, RFC 3339 UTC with milliseconds and a space, or ``"- "`` where no time is
        known (output written before times were recorded)."""
        if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
            raise InvalidRequest("tail must be a number of lines (0 or more)")
        return self._log_chunks(_job_id(job), follow, offset, rank, tail, _since_param(since), timestamps)

    def _log_chunks(
        self,
        jid: str,
        follow: bool,
        offset: int,
        rank: int,
        tail: Optional[int] = None,
        since: Optional[str] = None,
        timestamps: bool = False,
    ) -> Iterator[bytes]:
        first = True
        unstamped = _Unstamped()
        while True:
            query: Dict[str, Any] = {"offset": offset, "follow": follow}
            if rank:
                query["rank"] = rank
            if first and tail is not None:
                query["tail"] = tail  # a resumed stream goes on from its offset
            if since is not None:
                query["since"] = since
            if timestamps:
                query["timestamps"] = True
            resp = self._t.open(
                "GET", f"/v1/jobs/{_q(jid)}/logs", query=query, timeout=_LOG_IDLE_TIMEOUT_S if follow else None
            )
            first = False
            start = resp.getheader("X-FastGPU-Log-Offset")
            if start is not None and start.isdigit():
                offset = int(start)  # where tail and since made the reply start
            before = offset
            try:
                for data in self._t.chunks(resp):
                    offset += unstamped.count(data) if timestamps else len(data)
                    yield data
                if self._t.closed:
                    raise ClientClosed("the FastGPU client is closed")
                return  # the server ended the stream: all output (with follow: the job has ended)
            except Exception as e:
                if self._t.closed:  # closed from another thread: the read fails in one of several ways
                    raise ClientClosed("the FastGPU client is closed") from None
                if not isinstance(e, (OSError, http.client.HTTPException)):
                    raise
                if not follow:
                    raise ConnectionFailed(f"reading the log of {jid} from {self._t.url} failed: {e or 'timed out'}") from None
                # A silent job or a cut connection: resume from the last byte received.
                if offset == before:
                    time.sleep(0.2)

    def logs(
        self,
        job: JobRef,
        *,
        follow: bool = False,
        offset: int = 0,
        rank: int = 0,
        tail: Optional[int] = None,
        since: Union[str, datetime.datetime, None] = None,
        timestamps: bool = False,
    ) -> Iterator[str]:
        """The job's output as lines of text (without the newline; invalid UTF-8 replaced). With
        ``follow=True`` it yields lines as the job prints them and ends when the job has ended. ``tail``,
        ``since`` and ``timestamps`` as for :meth:`log_chunks` (``client.jobs.logs(j, tail=100, since="10m",
        timestamps=True)``)."""
        return self._lines(
            self.log_chunks(job, follow=follow, offset=offset, rank=rank, tail=tail, since=since, timestamps=timestamps)
        )

    @staticmethod
    def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        buf = ""
        for chunk in chunks:
            buf += dec.decode(chunk)
            if "\n" in buf:
                *lines, buf = buf.split("\n")
                yield from lines
        buf += dec.decode(b"", final=True)
        if buf:
            yield buf

    def read_log(self, job: JobRef, *, offset: int = 0, rank: int = 0) -> str:
        """The job's output so far, as text."""
        return b"".join(self.log_chunks(job, offset=offset, rank=rank)).decode("utf-8", "replace")

    def log_tail(self, job: JobRef, *, lines: int = 50, rank: int = 0) -> str:
        """The last ``lines`` lines of the job's output so far (the server reads only the end of the log)."""
        n = max(0, lines)
        return "\n".join(deque(self.logs(job, rank=rank, tail=n), maxlen=n))

    def exec(
        self,
        job: JobRef,
        command: Command,
        *,
        stdin: Optional[bytes] = None,
        rank: int = 0,
        timeout: Optional[float] = None,
    ) -> "tuple[int, str]":
        """Runs ``command`` inside the running job, as ``fastgpu job exec`` does (the job's node, user, environment
        and working directory; docs/exec.md), and returns ``(exit_code, output)``: its stdout and stderr as text,
        in the order they arrived; ``128 + N`` when signal N ended it. A string runs with ``sh -c``. ``stdin``:
        bytes given to it as its standard input. ``timeout`` in seconds (None: no limit): the command is killed and
        :class:`WaitTimeout` raised when it passes. Raises :class:`FastGPUError` subclasses when the job is not
        running (409), not yours to change (403) and so on."""
        import base64

        jid = _job_id(job)
        if isinstance(command, str):
            if not command.strip():
                raise InvalidRequest("command is empty")
            argv = ["sh", "-c", command]
        else:
            argv = [str(a) for a in command]
            if not argv:
                raise InvalidRequest("command is empty")
        base = f"/v1/jobs/{_q(jid)}/exec"
        opened = self._t.json(
            "POST", base, body={"command": argv, "stdin": stdin is not None, "rank": rank}
        )
        path = f"{base}/{_q(opened['session'])}"
        if stdin is not None:
            offset = 0
            data = bytes(stdin)
            while True:
                chunk = data[offset : offset + (32 << 10)]
                body: Dict[str, Any] = {"offset": offset, "data": base64.b64encode(chunk).decode("ascii")}
                if offset + len(chunk) >= len(data):
                    body["eof"] = True
                have = int(self._t.json("POST", f"{path}/input", body=body).get("offset", offset))
                if have >= len(data):
                    break
                if have == offset:
                    time.sleep(0.05)  # the node has not taken earlier input yet
                offset = have
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        offsets = {"stdout": 0, "stderr": 0}
        out = bytearray()
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                self._t.json("DELETE", path)
                raise WaitTimeout(f"the command in job {jid} still runs after {timeout:g} s: it was killed")
            r = self._t.json(
                "GET",
                f"{path}/output",
                query={"stdout_offset": offsets["stdout"], "stderr_offset": offsets["stderr"], "timeout_ms": 10000},
                timeout=40.0,
            )
            for stream in ("stdout", "stderr"):
                if r.get(stream):
                    piece = base64.b64decode(r[stream])
                    start = int(r.get(stream + "_offset", offsets[stream]))
                    skip = max(0, offsets[stream] - start)
                    out += piece[skip:]
                    offsets[stream] = max(offsets[stream], start + len(piece))
            if r.get("ended"):
                text = out.decode("utf-8", "replace")
                if "exit_code" in r:
                    return int(r["exit_code"]), text
                if "signal" in r:
                    return 128 + int(r["signal"]), text
                raise FastGPUError(r.get("error") or "the exec session ended without an exit status")


class Gpus(_Resource):
    """``client.gpus``: the cluster's GPUs with memory, utilisation, temperature, power and their jobs."""

    def list(self) -> List[Gpu]:
        return [Gpu.from_json(g) for g in self._t.json("GET", "/v1/gpus").get("gpus", [])]


class Nodes(_Resource):
    """``client.nodes``: the nodes; cordon, drain and remove them (admin)."""

    def list(self) -> List[Node]:
        return [Node.from_json(n) for n in self._t.json("GET", "/v1/nodes").get("nodes", [])]

    def get(self, name: str) -> Dict[str, Any]:
        return dict(self._t.json("GET", f"/v1/nodes/{_q(name)}"))

    def cordon(self, name: str) -> Dict[str, Any]:
        return dict(self._t.json("POST", f"/v1/nodes/{_q(name)}/cordon", body={}) or {})

    def uncordon(self, name: str) -> Dict[str, Any]:
        return dict(self._t.json("POST", f"/v1/nodes/{_q(name)}/uncordon", body={}) or {})

    def drain(self, name: str) -> Dict[str, Any]:
        return dict(self._t.json("POST", f"/v1/nodes/{_q(name)}/drain", body={}) or {})

    def remove(self, name: str) -> None:
        self._t.request("DELETE", f"/v1/nodes/{_q(name)}")


class Projects(_Resource):
    """``client.projects``: projects, members and service accounts."""

    def list(self) -> List[Dict[str, Any]]:
        return list(self._t.json("GET", "/v1/projects").get("projects", []))

    def get(self, project: str) -> Dict[str, Any]:
        return dict(self._t.json("GET", f"/v1/projects/{_q(project)}"))

    def create(self, name: str, *, description: Optional[str] = None, owner: Optional[str] = None) -> Dict[str, Any]:
        body: Dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if owner is not None:
            body["owner"] = owner
        return dict(self._t.json("POST", "/v1/projects", body=body))

    def update(self, project: str, **fields: Any) -> Dict[str, Any]:
        """Changes description, quota, budget (and, admin only, run_as_user, allow_root); see docs/billing.md."""
        return dict(self._t.json("PATCH", f"/v1/projects/{_q(project)}", body=fields))

    def members(self, project: str) -> List[Dict[str, Any]]:
        return list(self._t.json("GET", f"/v1/projects/{_q(project)}/members").get("members", []))

    def set_member(self, project: str, user: str, role: str) -> Dict[str, Any]:
        """Adds ``user`` to the project or changes their role: 'owner', 'member' or 'viewer'."""
        return dict(self._t.json("PUT", f"/v1/projects/{_q(project)}/members/{_q(user)}", body={"role": role}))

    def remove_member(self, project: str, user: str) -> None:
        self._t.request("DELETE", f"/v1/projects/{_q(project)}/members/{_q(user)}")

    def service_accounts(self, project: str) -> List[Dict[str, Any]]:
        path = f"/v1/projects/{_q(project)}/service-accounts"
        return list(self._t.json("GET", path).get("service_accounts", []))

    def create_service_account(self, project: str, name: str, *, role: str = "member") -> Dict[str, Any]:
        """Returns ``client_id`` and ``client_secret`` (shown once) for ``POST /oauth/token``."""
        path = f"/v1/projects/{_q(project)}/service-accounts"
        return dict(self._t.json("POST", path, body={"name": name, "role": role}))

    def delete_service_account(self, project: str, account_id: str) -> None:
        self._t.request("DELETE", f"/v1/projects/{_q(project)}/service-accounts/{_q(account_id)}")


class Secrets(_Resource):
    """``client.secrets``: a project's encrypted secrets. Values go in, never out."""

    def list(self, project: str) -> List[Dict[str, Any]]:
        return list(self._t.json("GET", f"/v1/projects/{_q(project)}/secrets").get("secrets", []))

    def set(self, project: str, name: str, value: str) -> Dict[str, Any]:
        return dict(self._t.json("PUT", f"/v1/projects/{_q(project)}/secrets/{_q(name)}", body={"value": value}))

    def delete(self, project: str, name: str) -> None:
        self._t.request("DELETE", f"/v1/projects/{_q(project)}/secrets/{_q(name)}")


class Users(_Resource):
    """``client.users`` (admin): create, list, get and change users."""

    def list(self) -> List[Dict[str, Any]]:
        return list(self._t.json("GET", "/v1/users").get("users", []))

    def get(self, name: str) -> Dict[str, Any]:
        return dict(self._t.json("GET", f"/v1/users/{_q(name)}"))

    def create(self, name: str, *, display_name: Optional[str] = None, admin: bool = False) -> Dict[str, Any]:
        body: Dict[str, Any] = {"name": name, "admin": admin}
        if display_name is not None:
            body["display_name"] = display_name
        return dict(self._t.json("POST", "/v1/users", body=body))

    def update(self, name: str, **fields: Any) -> Dict[str, Any]:
        """Changes ``admin``, ``disabled`` or ``display_name``."""
        return dict(self._t.json("PATCH", f"/v1/users/{_q(name)}", body=fields))


class Tokens(_Resource):
    """``client.tokens``: API tokens (the secret is returned once, by ``create``)."""

    def create(
        self, name: str, *, user: Optional[str] = None, expires_in: Optional[Union[int, str]] = None
    ) -> Dict[str, Any]:
        body: Dict[str, Any] = {"name": name}
        if user is not None:
            body["user"] = user
        if expires_in is not None:
            body["expires_in"] = expires_in
        return dict(self._t.json("POST", "/v1/tokens", body=body))

    def list(self, *, user: Optional[str] = None, all: bool = False) -> List[Dict[str, Any]]:
        query = {"user": user, "all": True if all else None}
        return list(self._t.json("GET", "/v1/tokens", query=query).get("tokens", []))

    def revoke(self, token_id: str) -> None:
        self._t.request("DELETE", f"/v1/tokens/{_q(token_id)}")


class Audit(_Resource):
    """``client.audit`` (admin): the hash-chained audit log."""

    def list(self, *, after: int = 0, limit: Optional[int] = None, page_size: int = 100) -> Iterator[Dict[str, Any]]:
        """Audit rows in order from sequence number ``after`` + 1, fetched page by page."""
        return self._iterate(after, limit, page_size)

    def _iterate(self, after: int, limit: Optional[int], page_size: int) -> Iterator[Dict[str, Any]]:
        n = 0
        while True:
            size = page_size if limit is None else min(page_size, limit - n)
            if size <= 0:
                return
            rows = self._t.json("GET", "/v1/audit", query={"after": after, "limit": size}).get("records", [])
            for r in rows:
                yield r
                n += 1
                after = max(after, int(r.get("seq") or 0))
            if len(rows) < size:
                return

    def verify(self) -> Dict[str, Any]:
        return dict(self._t.json("GET", "/v1/audit/verify"))


class Client:
    """A connection to a FastGPU server.

    Without arguments it finds the server and token like the ``fastgpu`` CLI (see :mod:`fastgpu.config`):
    ``FASTGPU_SERVER``/``FASTGPU_URL``, ``FASTGPU_TOKEN``, ``FASTGPU_CA``, ``$FASTGPU_HOME`` (default
    ``~/.fastgpu``) with what ``fastgpu up`` and ``fastgpu login`` wrote there. A service account passes
    ``client_id=`` and ``client_secret=`` instead of a token (OAuth2 client credentials).

    Idempotent calls (GET, PUT, and job submits, which carry an ``Idempotency-Key``) are retried with
    exponential backoff on connection errors, HTTP 503, and HTTP 429 with ``Retry-After``; a refused
    connection (nothing was sent) is retried for every call. ``max_retries=0`` turns retries off.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        ca_file: Optional[str] = None,
        home: Optional[str] = None,
        project: Optional[str] = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
    ) -> None:
        cfg = _config.resolve(url=url, token=token, ca_file=ca_file, project=project, home=home,
                              client_id=client_id, client_secret=client_secret)
        self.config = cfg
        self.url = cfg.url
        self.project = cfg.project or None
        self._transport = Transport(
            cfg.url,
            cfg.token,
            ca_file=cfg.ca_file,
            url_from=cfg.url_from,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            client_id=cfg.client_id,
            client_secret=cfg.client_secret,
        )
        self.jobs = Jobs(self)
        self.gpus = Gpus(self)
        self.nodes = Nodes(self)
        self.projects = Projects(self)
        self.secrets = Secrets(self)
        self.users = Users(self)
        self.tokens = Tokens(self)
        self.audit = Audit(self)

    def __repr__(self) -> str:
        return f"fastgpu.Client(url={self.url!r})"

    # -- lifetime
    def close(self) -> None:
        """Closes the client: open log streams end, and later calls raise :class:`ClientClosed`."""
        self._transport.close()

    @property
    def closed(self) -> bool:
        return self._transport.closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- single queries
    def health(self) -> Dict[str, Any]:
        return dict(self._transport.json("GET", "/healthz"))

    def whoami(self) -> Dict[str, Any]:
        """The caller: user, admin flag, projects and roles. Raises :class:`Unauthenticated` without a valid token."""
        return dict(self._transport.json("GET", "/v1/whoami"))

    def openapi(self) -> Dict[str, Any]:
        return dict(self._transport.json("GET", "/v1/openapi.json"))

    def usage(self, *, project: Optional[str] = None, month: Optional[str] = None) -> Dict[str, Any]:
        """Spend by project and GPU type for a month (``YYYY-MM``; default this month)."""
        return dict(self._transport.json("GET", "/v1/usage", query={"project": project, "month": month}))

    def bill(self, project: str, *, month: Optional[str] = None, csv: bool = False) -> Union[Dict[str, Any], str]:
        """A project's invoice for a month (JSON, or the CSV text with ``csv=True``)."""
        path = f"/v1/projects/{_q(project)}/bill"
        query = {"month": month, "format": "csv" if csv else None}
        if csv:
            return self._transport.request("GET", path, query=query).body.decode("utf-8")
        return dict(self._transport.json("GET", path, query=query))

    def prices(self, *, all: bool = False) -> List[Dict[str, Any]]:
        """GPU prices in force (``all=True``: with their history)."""
        return list(self._transport.json("GET", "/v1/prices", query={"all": True if all else None}).get("prices", []))

    def credits(self, project: str) -> Dict[str, Any]:
        """A project's credit balance and grants."""
        return dict(self._transport.json("GET", f"/v1/projects/{_q(project)}/credits"))

    # -- the task API
    def create_task(
        self,
        name: str,
        compute: str = "gpu",
        memory: Optional[units.MemorySpec] = None,
        runtime: Optional[units.RuntimeSpec] = None,
        *,
        command: Optional[Command] = None,
        gpus: units.GpuSpec = 1,
        gpu_type: Optional[str] = None,
        image: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        sync: Any = None,
        **spec: Any,
    ) -> "Task":
        """A task to run on the cluster; nothing is sent until :meth:`Task.submit`.

        - ``memory``: GPU memory per GPU; a number is MiB (``1024`` = 1 GiB), or ``'16GiB'``, ``'512MiB'``.
        - ``runtime``: wall-clock limit; a number is hours (``24`` = a day), or ``'2h'``, ``'30m'``, ``'1h30m'``.
        - ``command``: what to run, a shell string or an argv list (required).
        - ``gpus``: whole GPUs (``2``) or a share of one (``0.25``); ``gpu_type``: e.g. ``'A100-80GB'``.
        - ``compute``: ``'gpu'``. FastGPU runs every job on GPUs; ``'cpu'`` is refused with
          :class:`NotSupported` (for work that needs no GPU, ask for a small share: ``gpus=0.01``).
        - ``image``: an OCI image on the node; the command runs in a container of it (podman; docs/containers.md).
        - ``sync`` (copying local files) is not offered by the server yet: giving it raises :class:`NotSupported`
          rather than running without it.
        - Any other keyword of :meth:`Jobs.submit` (``project``, ``priority``, ``workdir``, ``secrets``...).
        """
        if compute == "cpu":
            raise NotSupported(
                "compute='cpu' is not supported: every FastGPU job is placed on GPUs (at least a 0.001 share of "
                "one) and FastGPU has no CPU-only jobs; for work that needs no GPU, ask for a small share: "
                "compute='gpu', gpus=0.01",
                feature="CPU-only tasks",
            )
        if compute != "gpu":
            raise InvalidRequest(f"compute must be 'gpu' (got {compute!r})")
        if sync is not None and sync is not False:
            raise NotSupported(
                f"sync={sync!r}: copying local files to the node is not supported by the FastGPU server yet; "
                "put the files where the node can read them and give workdir=",
                feature="file sync",
            )
        if command is None:
            raise InvalidRequest(
                f"create_task({name!r}): no command given; FastGPU runs a program on the GPUs: pass "
                "command='python3 train.py' (a shell string) or command=['python3', 'train.py']"
            )
        if "project" not in spec and self.project:
            spec["project"] = self.project
        body = job_body(command, name=name, gpus=gpus, gpu_type=gpu_type, memory=memory, runtime=runtime, env=env,
                        image=image, **spec)
        return Task(self, name, body)


class Task:
    """A task made by :meth:`Client.create_task`: ``submit()``, ``get_status()``, ``result()``, ``cancel()``."""

    def __init__(self, client: Client, name: str, body: Dict[str, Any]) -> None:
        self._client = client
        self.name = name
        self.spec = body
        self._key = new_idempotency_key()
        self._job: Optional[Job] = None

    def __repr__(self) -> str:
        return f"fastgpu.Task(name={self.name!r}, id={self.id!r})"

    @property
    def id(self) -> Optional[str]:
        """The job id (``j-42``) once submitted."""
        return self._job.id if self._job else None

    @property
    def submitted(self) -> bool:
        return self._job is not None

    def submit(self) -> "Task":
        """Submits the task (once: submitting again returns the same job). Returns the task."""
        if self._job is None:
            c = self._client
            data = c._transport.json(
                "POST", "/v1/jobs", body=self.spec, headers={"Idempotency-Key": self._key}, idempotent=True
            )
            self._job = Job.from_json(data)
        return self

    def _jid(self) -> str:
        if self._job is None:
            raise FastGPUError(f"task {self.name!r} has not been submitted: call task.submit() first")
        return self._job.id

    @property
    def job(self) -> Job:
        """The job as last seen (see :meth:`refresh`)."""
        self._jid()
        assert self._job is not None
        return self._job

    def refresh(self) -> Job:
        self._job = self._client.jobs.get(self._jid())
        return self._job

    def get_status(self) -> JobState:
        """The job's state now: QUEUED, SCHEDULED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELLED, LOST."""
        return self.refresh().state

    def wait(self, timeout: Optional[float] = None) -> Job:
        self._job = self._client.jobs.wait(self._jid(), timeout)
        return self._job

    def result(self, timeout: Optional[float] = None, *, raise_on_failure: bool = False, log_lines: int = 50) -> TaskResult:
        """Waits for the job to end (``timeout`` seconds; None: no limit) and returns how it ended: state, exit
        code, timings and the last ``log_lines`` lines of output. Raises :class:`WaitTimeout` at the timeout,
        and :class:`JobFailed` for a job that did not succeed when ``raise_on_failure`` is true."""
        if self._job is None:
            self.submit()
        job = self.wait(timeout)
        res = TaskResult(
            job_id=job.id,
            state=job.state,
            exit_code=job.exit_code,
            signal=job.signal,
            reason=job.reason,
            queued_seconds=job.queued_seconds,
            run_seconds=job.run_seconds,
            log_tail=self._client.jobs.log_tail(job.id, lines=log_lines),
            job=job,
        )
        if raise_on_failure and not res.succeeded:
            raise JobFailed(f"task {self.name!r} (job {job.id}) ended {job.state}: {job.reason}", result=res)
        return res

    def cancel(self) -> Job:
        self._job = self._client.jobs.cancel(self._jid())
        return self._job

    def logs(
        self,
        *,
        follow: bool = False,
        tail: Optional[int] = None,
        since: Union[str, datetime.datetime, None] = None,
        timestamps: bool = False,
    ) -> Iterator[str]:
        return self._client.jobs.logs(self._jid(), follow=follow, tail=tail, since=since, timestamps=timestamps)

    def events(self) -> List[JobEvent]:
        return self._client.jobs.events(self._jid())
