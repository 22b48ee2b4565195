"""The idiomatic API over the REST surface: client.jobs, events, logs, pagination, GPUs, nodes, projects,
secrets, users, tokens, usage, bills, audit."""
from __future__ import annotations

import datetime
import itertools
import threading
from pathlib import Path

import pytest

import fastgpu
from conftest import Server, wait_for


def test_submit_get_wait_events(client: fastgpu.Client) -> None:
    job = client.jobs.submit(["sh", "-c", "echo $FASTGPU_JOB_ID"], name="hello", gpus=2, runtime="10m")
    assert job.state == "QUEUED" and job.id.startswith("j-")
    assert client.jobs.get(job.id).name == "hello"
    done = client.jobs.wait(job, timeout=60)
    assert done.state == fastgpu.JobState.SUCCEEDED and done.terminal and done.exit_code == 0
    assert len(done.assigned_gpus) == 2
    assert client.jobs.read_log(job) == job.id + "\n"
    events = client.jobs.events(job.id)
    assert [e.to_state for e in events] == ["QUEUED", "SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED"]
    assert events[0].reason == "submitted" and events[0].actor == "user:admin"


def test_wait_until_running_then_cancel(client: fastgpu.Client) -> None:
    job = client.jobs.submit("sleep 120", name="long")
    running = client.jobs.wait(job, timeout=60, until="running")
    assert running.state == "RUNNING"
    with pytest.raises(fastgpu.WaitTimeout):
        client.jobs.wait(job, timeout=0)
    cancelled = client.jobs.cancel(job)
    assert client.jobs.wait(cancelled, timeout=60).state == "CANCELLED"
    with pytest.raises(fastgpu.InvalidRequest):
        client.jobs.wait(job, until="forever")


def test_idempotency_key_makes_one_job(client: fastgpu.Client) -> None:
    key = fastgpu.new_idempotency_key()
    a = client.jobs.submit("true", name="idem", idempotency_key=key)
    b = client.jobs.submit("true", name="idem", idempotency_key=key)
    assert a.id == b.id
    c = client.jobs.submit("true", name="idem")
    assert c.id != a.id


def test_estimate_creates_nothing(client: fastgpu.Client) -> None:
    before = [j.id for j in client.jobs.list(limit=1)]
    est = client.jobs.estimate("true", gpus=2, runtime="2h")
    assert est["dry_run"] is True and est["estimate_micro"] == est["price_per_hour_micro"] * 2
    assert [j.id for j in client.jobs.list(limit=1)] == before


def test_pagination_is_an_iterator(client: fastgpu.Client, new_project) -> None:
    project = new_project()
    ids = [client.jobs.submit("true", project=project, name=f"page{i}").id for i in range(7)]
    newest_first = list(reversed(ids))
    assert [j.id for j in client.jobs.list(project=project, page_size=2)] == newest_first
    assert [j.id for j in client.jobs.list(project=project, page_size=1000)] == newest_first
    assert [j.id for j in client.jobs.list(project=project, page_size=3, limit=4)] == newest_first[:4]
    assert list(client.jobs.list(project=project, limit=0)) == []
    first = client.jobs.page(project=project, page_size=3)
    assert [j.id for j in first.jobs] == newest_first[:3] and first.next_cursor
    second = client.jobs.page(project=project, page_size=3, cursor=first.next_cursor)
    assert [j.id for j in second.jobs] == newest_first[3:6]
    # Lazy: taking two jobs asks for one page only.
    assert [j.id for j in itertools.islice(client.jobs.list(project=project, page_size=2), 2)] == newest_first[:2]
    for jid in ids:
        client.jobs.wait(jid, timeout=60)
    assert {j.id for j in client.jobs.list(project=project, state="SUCCEEDED", page_size=2)} == set(ids)
    assert list(client.jobs.list(project=project, state=["QUEUED", "RUNNING"])) == []


def test_follow_logs_as_they_are_written(client: fastgpu.Client, shared_dir: Path) -> None:
    go = shared_dir / "go"
    job = client.jobs.submit(
        f"echo first; while [ ! -e {go} ]; do sleep 0.02; done; printf 'second\\nthird'", runtime="5m")
    lines = []
    for line in client.jobs.logs(job, follow=True):
        lines.append(line)
        if line == "first":
            # The first line arrives while the job is still running, waiting for us.
            assert not client.jobs.get(job).terminal
            go.touch()
    assert lines == ["first", "second", "third"]
    assert client.jobs.get(job).state == "SUCCEEDED"  # follow ends once the job has ended
    assert list(client.jobs.logs(job, offset=6)) == ["second", "third"]
    assert b"".join(client.jobs.log_chunks(job)) == b"first\nsecond\nthird"


def test_logs_tail_since_and_timestamps(client: fastgpu.Client, shared_dir: Path) -> None:
    go = shared_dir / "go-times"
    job = client.jobs.submit(
        f"printf 'one\\ntwo\\n'; while [ ! -e {go} ]; do sleep 0.02; done; printf 'three\\nfour'", runtime="5m")
    # Both lines are there with their times (recorded by the node a few ms after the write).
    assert wait_for(lambda: [line[:1] not in ("", "-") for line in client.jobs.logs(job, timestamps=True)] == [True] * 2)
    stamped = list(client.jobs.logs(job, timestamps=True))
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two"]
    first = datetime.datetime.strptime(stamped[0].split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    # The rest is written after a time later than the first lines' (their times have millisecond precision).
    cut = first + datetime.timedelta(milliseconds=5)
    assert wait_for(lambda: datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) > cut)
    go.touch()
    client.jobs.wait(job, timeout=60)
    assert list(client.jobs.logs(job, tail=2)) == ["three", "four"]
    assert list(client.jobs.logs(job, tail=0)) == []
    assert client.jobs.log_tail(job, lines=1) == "four"
    assert list(client.jobs.logs(job, since=cut)) == ["three", "four"]
    assert list(client.jobs.logs(job, since="1h")) == ["one", "two", "three", "four"]
    later = list(client.jobs.logs(job, since=cut.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", timestamps=True))
    assert [line.split(" ", 1)[1] for line in later] == ["three", "four"]
    assert all(line.split(" ", 1)[0] >= stamped[0].split(" ", 1)[0] for line in later)
    # Follow with a tail: the last line, then the end.
    assert list(client.jobs.logs(job, follow=True, tail=1, timestamps=True))[0].endswith(" four")
    with pytest.raises(fastgpu.InvalidRequest):
        list(client.jobs.logs(job, tail=-1))
    with pytest.raises(fastgpu.InvalidRequest) as bad:
        list(client.jobs.logs(job, since="yesterday"))
    assert "since" in str(bad.value)


def test_logs_decode_utf8_split_across_reads(client: fastgpu.Client) -> None:
    job = client.jobs.submit(["printf", "gr\\303\\274\\303\\237e \\342\\234\\223\\nbad \\377 byte\\n"])
    client.jobs.wait(job, timeout=60)
    assert list(client.jobs.logs(job)) == ["grüße ✓", "bad \ufffd byte"]
    # Read from inside a multi-byte character: replaced, never an exception.
    assert list(client.jobs.logs(job, offset=3))[0] == "\ufffdße ✓"


def test_closing_the_client_ends_a_follow(server: Server) -> None:
    c = server.client()
    job = c.jobs.submit("echo tick; sleep 120", runtime="5m")
    it = c.jobs.logs(job, follow=True)
    assert next(it) == "tick"
    # From another thread, while the follow is blocked reading a silent job.
    seen = []

    def follow() -> None:
        try:
            for line in it:
                seen.append(line)
        except fastgpu.ClientClosed:
            seen.append("closed")

    reader = threading.Thread(target=follow)
    reader.start()
    assert not wait_for(lambda: bool(seen), timeout=0.3)  # nothing more to read: it blocks
    c.close()
    reader.join(timeout=20)
    assert not reader.is_alive() and seen == ["closed"]
    with server.client() as admin:
        admin.jobs.cancel(job)


def test_gpus_and_nodes(client: fastgpu.Client) -> None:
    gpus = client.gpus.list()
    assert len(gpus) == 4
    assert all(g.simulated and g.type == "A100-80GB" and g.memory_total_mib == 81920 for g in gpus)
    assert sorted(g.index for g in gpus) == [0, 1, 2, 3]
    nodes = client.nodes.list()
    assert len(nodes) == 1 and nodes[0].gpu_count == 4 and nodes[0].healthy
    assert client.nodes.get(nodes[0].name)["name"] == nodes[0].name


def test_projects_members_secrets(client: fastgpu.Client, new_project, new_user) -> None:
    project = new_project()
    assert project in [p["name"] for p in client.projects.list()]
    assert client.projects.get(project)["name"] == project
    client.projects.update(project, description="team ml")
    assert client.projects.get(project)["description"] == "team ml"
    new_user(project, "viewer")
    roles = {m["user"]: m["role"] for m in client.projects.members(project)}
    assert "viewer" in roles.values()

    client.secrets.set(project, "WANDB_KEY", "s3cret")
    listed = client.secrets.list(project)
    assert [s["name"] for s in listed] == ["WANDB_KEY"]
    assert "s3cret" not in str(listed)  # values never come back
    job = client.jobs.submit(["sh", "-c", "echo ${#WANDB_KEY}"], project=project, secrets=["WANDB_KEY"])
    client.jobs.wait(job, timeout=60)
    assert client.jobs.read_log(job) == "6\n"
    client.secrets.delete(project, "WANDB_KEY")
    assert client.secrets.list(project) == []


def test_usage_bills_prices_credits(client: fastgpu.Client) -> None:
    job = client.jobs.submit("sleep 1", name="metered")
    client.jobs.wait(job, timeout=60)
    assert wait_for(lambda: client.usage()["total_micro"] > 0)
    usage = client.usage(project="default")
    assert usage["month"] and any(r["gpu_type"] == "A100-80GB" for r in usage["rows"])
    bill = client.bill("default")
    assert bill["project"] == "default"
    csv = client.bill("default", csv=True)
    assert isinstance(csv, str) and "," in csv.splitlines()[0]
    assert any(p["gpu_type"] for p in client.prices())
    assert "balance_micro" in client.credits("default")


def test_tokens_users_audit(client: fastgpu.Client, server: Server, new_user) -> None:
    token = new_user()
    with server.client(token) as other:
        me = other.whoami()
        assert not me["admin"]
        tokens = other.tokens.list()
        assert len(tokens) == 1
        other.tokens.revoke(tokens[0]["id"])
        with pytest.raises(fastgpu.Unauthenticated):
            other.whoami()
    assert client.users.get(me["user"])["name"] == me["user"]
    rows = list(client.audit.list(page_size=5, limit=12))
    assert len(rows) == 12 and [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert len({r["seq"] for r in rows}) == 12
    assert client.audit.verify()["ok"] is True


def test_openapi_lists_every_route_the_sdk_calls(client: fastgpu.Client) -> None:
    paths = client.openapi()["paths"]
    for p in ["/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/cancel", "/v1/jobs/{id}/events", "/v1/jobs/{id}/logs",
              "/v1/jobs/{id}/wait", "/v1/gpus", "/v1/nodes", "/v1/nodes/{name}", "/v1/projects",
              "/v1/projects/{project}", "/v1/projects/{project}/members", "/v1/projects/{project}/members/{user}",
              "/v1/projects/{project}/secrets", "/v1/projects/{project}/secrets/{name}", "/v1/users",
              "/v1/tokens", "/v1/tokens/{id}", "/v1/usage", "/v1/projects/{project}/bill", "/v1/prices",
              "/v1/projects/{project}/credits", "/v1/audit", "/v1/audit/verify", "/v1/whoami"]:
        assert p in paths, p
