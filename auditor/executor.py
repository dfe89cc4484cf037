"""One interface for running independent jobs in parallel (shadow models, reference models).

``get_executor("local")`` runs jobs in spawned worker processes on this machine;
``get_executor("ray", address=...)`` sends them to a Ray cluster (or a private local Ray
instance when ``address="local"``); ``get_executor("serial")`` runs them one after another in
this process (debugging, and callables that cannot be pickled). All three have
``map(fn, list_of_kwargs) -> list``: results in job order, progress on stderr, a failed job
re-raised as :class:`JobError` naming it, and an optional ``on_result(index, result)`` called
in this process as each job finishes (to save partial results of a long run). ``fn`` must be a
module-level (picklable) function for "local" and "ray". Each worker limits torch to
``threads_per_worker`` threads so that parallel jobs do not oversubscribe the cores.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

from tqdm import tqdm


class JobError(RuntimeError):
    """A job failed; the message names the job (index, function, keyword arguments)."""


def get_executor(
    kind: str = "local",
    *,
    max_workers: int | None = None,
    address: str | None = None,
    threads_per_worker: int = 1,
):
    """Build an executor by name.

    Parameters
    ----------
    kind : {"local", "ray", "serial"}
        Where jobs run.
    max_workers : int, optional
        Parallel jobs (local); default ``cpu_count // threads_per_worker`` (at least 1).
    address : str, optional
        Ray cluster address (``"HOST:6379"`` of a ``ray start --head``, ``"auto"``,
        ``"ray://host:10001"``, ...); ``None`` or ``"local"`` starts a private local instance
        with ``max_workers * threads_per_worker`` CPUs. Ray 2.60's ``ray start`` turns token
        authentication on: run with ``RAY_AUTH_MODE=token`` and the cluster's token
        (``~/.ray/auth_token`` or ``RAY_AUTH_TOKEN``). Jobs read their inputs (manifest,
        audio) from the paths they are given and write checkpoints there: the workers need
        the same filesystem as the driver.
    threads_per_worker : int
        torch threads in each job (``torch.set_num_threads``); also each Ray task's ``num_cpus``.
    """
    if threads_per_worker < 1:
        raise ValueError(f"threads_per_worker must be >= 1, got {threads_per_worker}")
    if max_workers is not None and max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if kind == "local":
        return LocalExecutor(max_workers=max_workers, threads_per_worker=threads_per_worker)
    if kind == "ray":
        return RayExecutor(
            address=address, max_workers=max_workers, threads_per_worker=threads_per_worker
        )
    if kind == "serial":
        return SerialExecutor(threads_per_worker=threads_per_worker)
    raise ValueError(f"unknown executor kind {kind!r}; expected one of {EXECUTOR_KINDS}")


EXECUTOR_KINDS = ("local", "ray", "serial")


def as_executor(executor):
    """An executor from a kind name (built with defaults) or an executor object (returned as is).

    Lets estimators take ``executor="local"`` or a configured ``get_executor(...)`` result.
    """
    if isinstance(executor, str):
        return get_executor(executor)
    if not callable(getattr(executor, "map", None)):
        raise ValueError(
            f"expected an executor kind {EXECUTOR_KINDS} or an executor, got {executor!r}"
        )
    return executor


def default_workers(threads_per_worker: int = 1) -> int:
    """Workers that fit this machine's cores at ``threads_per_worker`` threads each."""
    return max(1, (os.cpu_count() or 1) // threads_per_worker)


class _Executor:
    """``map`` over the completions that a subclass's ``_completions`` gives."""

    def map(
        self,
        fn: Callable,
        jobs: Sequence[Mapping],
        *,
        desc: str | None = None,
        on_result: Callable[[int, object], None] | None = None,
    ) -> list:
        """Call ``fn(**job)`` for each job; results in job order (module docstring)."""
        jobs = list(jobs)
        if not jobs:
            return []
        failure = _Failure()
        with self._completions(fn, jobs, failure) as completions:
            return _gather(fn, jobs, completions, desc=desc, on_result=on_result, failure=failure)

    def _completions(self, fn: Callable, jobs: list[Mapping], failure: _Failure):
        """Context manager yielding ``(index, get_result)`` pairs in completion order; it may
        set ``failure.stop`` to stop the other jobs once one fails."""
        raise NotImplementedError


class _Failure:
    """Whether a job failed, and how to stop the others then."""

    def __init__(self) -> None:
        self.failed = False
        self.stop: Callable[[], None] = lambda: None


class SerialExecutor(_Executor):
    """Runs jobs one by one in this process (torch threads set for the duration)."""

    def __init__(self, *, threads_per_worker: int = 1):
        self.threads_per_worker = threads_per_worker

    @contextmanager
    def _completions(self, fn: Callable, jobs: list[Mapping], failure: _Failure):
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads_per_worker)
        try:
            yield ((i, functools.partial(fn, **job)) for i, job in enumerate(jobs))
        finally:
            torch.set_num_threads(previous)


class LocalExecutor(_Executor):
    """Runs jobs in a pool of spawned processes on this machine."""

    def __init__(self, *, max_workers: int | None = None, threads_per_worker: int = 1):
        self.threads_per_worker = threads_per_worker
        self.max_workers = max_workers or default_workers(threads_per_worker)

    @contextmanager
    def _completions(self, fn: Callable, jobs: list[Mapping], failure: _Failure):
        pool = ProcessPoolExecutor(
            min(self.max_workers, len(jobs)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_limit_threads,
            initargs=(self.threads_per_worker,),
        )
        try:
            futures = {pool.submit(_call, fn, job): i for i, job in enumerate(jobs)}
            yield ((futures[f], f.result) for f in as_completed(futures))
        finally:
            # On failure, do not wait for the other running jobs: report at once.
            pool.shutdown(wait=not failure.failed, cancel_futures=True)


class RayExecutor(_Executor):
    """Runs jobs as Ray tasks with ``num_cpus=threads_per_worker`` each."""

    def __init__(
        self,
        *,
        address: str | None = None,
        max_workers: int | None = None,
        threads_per_worker: int = 1,
    ):
        self.address = address
        self.threads_per_worker = threads_per_worker
        self.max_workers = max_workers

    @contextmanager
    def _completions(self, fn: Callable, jobs: list[Mapping], failure: _Failure):
        import ray

        if not ray.is_initialized():
            if self.address in (None, "local"):
                workers = self.max_workers or default_workers(self.threads_per_worker)
                ray.init(
                    num_cpus=workers * self.threads_per_worker,
                    include_dashboard=False,
                    log_to_driver=False,
                )
            else:
                check_reachable(self.address)
                ray.init(address=self.address, log_to_driver=False)
        task = ray.remote(num_cpus=self.threads_per_worker)(_call_limited)
        refs = [task.remote(fn, job, self.threads_per_worker) for job in jobs]

        def cancel_all() -> None:
            for ref in refs:
                ray.cancel(ref)

        failure.stop = cancel_all
        yield _ray_completions(ray, refs)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """``ConnectionError`` naming ``address`` when nothing listens there (``ray.init`` would
    retry for minutes); ``"auto"`` (the address of a cluster this machine joined) is left to
    Ray."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Ray address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConnectionError(f"the Ray cluster at {address} cannot be reached: {e}") from e


def _ray_completions(ray, refs: list) -> Iterator[tuple[int, Callable[[], object]]]:
    """``(index, get_result)`` for each Ray task in completion order; a failed task's error
    is its cause (the exception the job raised), not Ray's wrapper."""
    index_of = {ref: i for i, ref in enumerate(refs)}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield index_of[done[0]], functools.partial(_ray_result, ray, done[0])


def _ray_result(ray, ref):
    try:
        return ray.get(ref)
    except Exception as error:
        raise (getattr(error, "cause", None) or error) from error


def _gather(
    fn: Callable,
    jobs: list[Mapping],
    completions: Iterable[tuple[int, Callable[[], object]]],
    *,
    desc: str | None,
    on_result: Callable[[int, object], None] | None,
    failure: _Failure,
) -> list:
    """Results in job order from ``(index, get_result)`` pairs in completion order: progress
    on stderr, ``on_result`` per finished job, a failure noted in ``failure`` (which stops the
    other jobs) and re-raised as :class:`JobError`."""
    results: list = [None] * len(jobs)
    with tqdm(total=len(jobs), desc=desc or fn.__name__, unit="job") as progress:
        for index, get_result in completions:
            try:
                results[index] = get_result()
            except Exception as error:
                failure.failed = True
                failure.stop()
                raise _job_error(index, fn, jobs[index], error) from error
            if on_result is not None:
                on_result(index, results[index])
            progress.update()
    return results


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _call(fn: Callable, job: Mapping):
    return fn(**job)


def _call_limited(fn: Callable, job: Mapping, threads: int):
    _limit_threads(threads)
    return fn(**job)


def _job_error(index: int, fn: Callable, job: Mapping, error: BaseException) -> JobError:
    summary = ", ".join(f"{k}={_short(v)}" for k, v in job.items())
    name = getattr(fn, "__qualname__", repr(fn))
    return JobError(f"job {index} ({name}({summary})) failed: {type(error).__name__}: {error}")


def _short(value) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<array {tuple(shape)}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
