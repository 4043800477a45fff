"""A worker's CPU time slice: how long the kernel lets another task run before a worker that
has a request to answer gets the CPU back.

Linux's fair scheduler (EEVDF, kernel 6.6+) gives each task a slice, by default 0.7-0.75 ms
times (1 + log2 of the CPU count): 1.4 ms on 2 cores. A task keeps the CPU until its slice is used
unless the waking task asks for a shorter one, so a worker woken by a request while the
core runs a load generator, redis-server or the other worker waits up to that slice: on a
busy machine this is the 1% tail of the latency, not the request's own work
(docs/benchmarks.md, "p99 at 4 connections"). Since Linux 6.12 a task may ask for its own
slice with `sched_setattr(2)` (`sched_runtime` of a SCHED_OTHER task, 0.1 to 100 ms, no
privilege needed): a short one makes a waking worker preempt a task with a longer slice, and
makes a running worker give the core back sooner to a client or store it competes with. It
does not change the worker's share of the CPU (its weight, i.e. its nice value, is kept).

Each worker asks for `FEATURECTL_SERVE_SLICE_US` microseconds (default 100, the kernel's
least; 0 keeps the kernel's slice) for its event-loop thread, before it starts its own
threads (they inherit it). On other systems, older kernels (the value is accepted and
ignored) or a real-time policy set by the operator, nothing changes.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

from featurectl.server.environment import SLICE_ENV

DEFAULT_SLICE_US = 100
MIN_SLICE_US, MAX_SLICE_US = 100, 100_000  # the kernel clamps a requested slice to this range

_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}  # (sched_setattr, sched_getattr)
_FAIR_POLICIES = {getattr(os, name) for name in ("SCHED_OTHER", "SCHED_BATCH") if hasattr(os, name)}


class _SchedAttr(ctypes.Structure):
    """struct sched_attr, its first version (SCHED_ATTR_SIZE_VER0: 48 bytes)."""

    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32), ("sched_flags", ctypes.c_uint64),
                ("sched_nice", ctypes.c_int32), ("sched_priority", ctypes.c_uint32),
                ("sched_runtime", ctypes.c_uint64), ("sched_deadline", ctypes.c_uint64),
                ("sched_period", ctypes.c_uint64)]


def configured_slice_us() -> float:
    """FEATURECTL_SERVE_SLICE_US, or the default (`featurectl serve` checked it: check_slice_setting)."""
    value = os.environ.get(SLICE_ENV)
    return float(value) if value else DEFAULT_SLICE_US


def check_slice_setting() -> None:
    """Refuse a FEATURECTL_SERVE_SLICE_US that is neither 0 nor within the kernel's range."""
    from featurectl.core.errors import UsageError

    value = os.environ.get(SLICE_ENV)
    if not value:
        return
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number != 0 and not MIN_SLICE_US <= number <= MAX_SLICE_US:
        raise UsageError(f"environment variable {SLICE_ENV}={value!r} is not 0 or a number of microseconds "
                         f"from {MIN_SLICE_US} to {MAX_SLICE_US}",
                         hint=f"e.g. {SLICE_ENV}={DEFAULT_SLICE_US} (the default), or 0 to keep the kernel's slice")


def _syscalls() -> tuple[int, int] | None:
    if not sys.platform.startswith("linux"):
        return None
    return _SYSCALLS.get(platform.machine())


def thread_slice_ns(tid: int = 0) -> int | None:
    """The fair scheduler's slice of a thread (0: the calling one) in nanoseconds, as the kernel
    reports it (`sched_runtime` of sched_getattr; 0 on kernels before 6.6); None when it
    cannot be read here."""
    numbers = _syscalls()
    if numbers is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    attr = _SchedAttr()
    if libc.syscall(numbers[1], tid, ctypes.byref(attr), ctypes.sizeof(attr), 0) != 0:
        return None
    return int(attr.sched_runtime)


def request_slice(microseconds: float) -> bool:
    """Ask for a fair-scheduler slice of `microseconds` for the calling thread (the threads it
    starts afterwards inherit it). True when the kernel took the request; False where it does
    not apply (another OS or architecture, a real-time policy, a refusal): nothing changes."""
    numbers = _syscalls()
    if numbers is None or microseconds <= 0:
        return False
    policy = os.sched_getscheduler(0)
    if policy not in _FAIR_POLICIES:  # SCHED_FIFO/RR/IDLE/DEADLINE chosen by the operator: kept
        return False
    attr = _SchedAttr(size=ctypes.sizeof(_SchedAttr), sched_policy=policy,
                      sched_nice=os.getpriority(os.PRIO_PROCESS, 0), sched_runtime=int(microseconds * 1000))
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(numbers[0], 0, ctypes.byref(attr), 0) == 0
