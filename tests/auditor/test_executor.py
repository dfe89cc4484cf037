"""Tests for auditor.executor: ordered results, worker thread limits, named failures; local and Ray.

Jobs are builtins (``round``, ``torch.get_num_threads``) because spawned workers
and Ray workers must import the job function by name.
"""

import os
import time

import pytest
import torch

from auditor.executor import JobError, get_executor

JOBS = [{"number": x / 7, "ndigits": 2} for x in range(12)]
EXPECTED = [round(x / 7, 2) for x in range(12)]


def test_serial_runs_in_order_and_names_failures():
    executor = get_executor("serial")
    assert executor.map(round, JOBS) == EXPECTED
    with pytest.raises(JobError, match=r"job 1 \(round\(number='x'"):
        executor.map(round, [{"number": 1.0}, {"number": "x"}])


@pytest.mark.slow  # spawns worker processes
def test_local_processes_keep_order_and_limit_threads():
    executor = get_executor("local", max_workers=2, threads_per_worker=1)
    assert executor.map(round, JOBS) == EXPECTED
    assert executor.map(torch.get_num_threads, [{}] * 2) == [1, 1]


@pytest.mark.parametrize("kind", ["serial", "local"])
def test_on_result_sees_every_job_as_it_finishes(kind):
    seen = {}
    results = get_executor(kind, max_workers=2).map(
        round, JOBS, on_result=lambda index, result: seen.__setitem__(index, result)
    )
    assert results == EXPECTED and seen == dict(enumerate(EXPECTED))


def test_local_failure_names_the_job():
    executor = get_executor("local", max_workers=2)
    with pytest.raises(JobError, match=r"job 2 \(round\(number='bad'.*TypeError"):
        executor.map(round, [{"number": 1.5}, {"number": 2.5}, {"number": "bad"}])


def test_default_workers_respect_threads():
    assert get_executor("local", threads_per_worker=1).max_workers == os.cpu_count()
    assert get_executor("local", threads_per_worker=os.cpu_count()).max_workers == 1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown executor kind 'dask'"):
        get_executor("dask")
    with pytest.raises(ValueError, match="threads_per_worker"):
        get_executor("local", threads_per_worker=0)


@pytest.mark.slow  # starts a local Ray instance
def test_ray_local_instance_runs_jobs():
    import ray

    start = time.perf_counter()
    try:
        executor = get_executor("ray", address="local", max_workers=2, threads_per_worker=1)
        assert executor.map(round, JOBS) == EXPECTED
        assert ray.cluster_resources()["CPU"] == 2
        assert executor.map(torch.get_num_threads, [{}] * 2) == [1, 1]
        with pytest.raises(JobError, match=r"job 1 \(round\(number='bad'"):
            executor.map(round, [{"number": 1.5}, {"number": "bad"}])
    finally:
        ray.shutdown()
    assert time.perf_counter() - start < 30


def test_as_executor_accepts_names_and_objects():
    from auditor.executor import SerialExecutor, as_executor

    assert isinstance(as_executor("serial"), SerialExecutor)
    executor = get_executor("local", max_workers=1)
    assert as_executor(executor) is executor
    with pytest.raises(ValueError, match="expected an executor kind"):
        as_executor(3)


def test_an_unreachable_ray_address_is_a_clear_error_not_a_hang():
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"Ray cluster at 127.0.0.1:1 cannot be reached"):
        get_executor("ray", address="127.0.0.1:1").map(round, JOBS)
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        get_executor("ray", address="nowhere").map(round, JOBS)
    assert time.perf_counter() - start < 10


@pytest.mark.slow
def test_ray_cluster_started_apart_runs_jobs_through_its_address():
    """A Ray head started as its own process (``ray start --head``), joined by address from
    another process with the cluster's token (Ray 2.60's ``ray start`` turns token
    authentication on; Ray reads ``RAY_AUTH_MODE`` when it is imported)."""
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import tempfile

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a limit
    head = [*ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2"]
    head += ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    driver = (
        "import ray\n"
        "from auditor.executor import get_executor\n"
        f"ex = get_executor('ray', address='127.0.0.1:{port}')\n"
        f"print(ex.map(round, {JOBS!r}), ray.cluster_resources()['CPU'])\n"
    )
    subprocess.run(head, check=True, capture_output=True, timeout=120)
    try:
        out = subprocess.run(
            [sys.executable, "-c", driver],
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ | {"RAY_AUTH_MODE": "token"},  # the token: ~/.ray/auth_token
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().splitlines()[-1] == f"{EXPECTED} 2.0"
    finally:
        subprocess.run([*ray_cli, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
