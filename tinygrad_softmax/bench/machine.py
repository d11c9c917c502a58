"""The machine: threads, versions and the facts the report starts with; fresh interpreters.

Every measurement runs in a fresh interpreter given its thread count. Such a
process is *pinned* to that many CPUs (``os.sched_setaffinity``, before it
imports anything), and inside it NumPy's BLAS (threadpoolctl) and PyTorch
(``torch.set_num_threads``) are set to the same count. JAX has no call for it:
XLA sizes its CPU thread pool once, from the CPUs the process may run on, so
the pinning is what holds it to one thread (an ``XLA_FLAGS`` setting such as
``--xla_cpu_multi_thread_eigen=false`` still leaves several of its threads
busy in a step).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .problem import BenchmarkError


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    return importlib.util.find_spec(module) is not None


def _thread_env(threads: int) -> dict[str, str]:
    return {name: str(threads) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def cpus_for(threads: int) -> list[int] | None:
    """The first ``threads`` of the CPUs this process may run on; None where CPU affinity is unknown."""
    if not hasattr(os, "sched_getaffinity"):  # Linux only
        return None
    return sorted(os.sched_getaffinity(0))[:threads]


_thread_limits: list[Any] = []  # keeps threadpoolctl's limit in force for the whole run


def limit_threads(threads: int, with_torch: bool = True) -> str:
    """Make NumPy's BLAS (and PyTorch, if ``with_torch``) use ``threads`` threads; say how that was done."""
    if with_torch and installed("torch"):
        import torch

        torch.set_num_threads(threads)
    if installed("threadpoolctl"):
        from threadpoolctl import threadpool_limits

        _thread_limits.append(threadpool_limits(limits=threads, user_api="blas"))
        return "threadpoolctl"
    configured = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return f"environment (OPENBLAS_NUM_THREADS={configured}; threadpoolctl is not installed)"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _load() -> str:
    """The load averages when the run starts: how busy the machine already was."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):  # not on every platform
        return "unknown"
    text = f"{one:.2f}, {five:.2f}, {fifteen:.2f} (averages over 1, 5, 15 minutes, at the start)"
    cpus = os.cpu_count() or 1
    if one > cpus:  # more runnable processes than CPUs: this run shared them
        text += (
            f"; more than the {cpus} CPUs: other work competed with this run, the rows with more "
            "threads most (their spread p25–p75 shows it)"
        )
    return text


def machine_facts() -> dict[str, str]:
    """CPU, BLAS and versions, for the report (the threads of each run come from :func:`thread_facts`)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": f"{cpu}, {os.cpu_count()} logical CPUs",
        "load": _load(),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "NumPy": np.__version__,
        "BLAS": _blas()[0],
        "PyTorch": _version("torch"),
        "HIPS autograd": _version("autograd"),
        "micrograd": _version("micrograd"),
        "JAX": _version("jax") if installed("jax") else f"not installed ({JAX_HINT})",
    }
    return facts


# How to get the optional compiled peer; the report repeats it where JAX is missing.
JAX_HINT = "`make bench` installs it: the bench extra, pip install -e '.[bench]'"


def _blas() -> tuple[str, str, str]:
    """NumPy's BLAS library, the threads each of its pools uses now and its kernel (threadpoolctl)."""
    if installed("threadpoolctl"):
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            name = f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
            return name, ", ".join(str(i["num_threads"]) for i in infos), str(i.get("architecture") or "")
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{config['name']} {config['version']}", "unknown (threadpoolctl is not installed)", ""
    except (TypeError, KeyError):
        return "unknown", "unknown", ""


def thread_facts(threads: int, how: str) -> dict[str, str]:
    """What the process really runs with: its CPUs, NumPy's BLAS threads, PyTorch's and JAX's threads."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    facts = {
        "CPUs the process may run on": "any (no CPU affinity on this platform)"
        if cpus is None
        else ", ".join(map(str, cpus)),
        "NumPy's BLAS threads": f"{_blas()[1]} (set via {how})",
        "OpenBLAS kernel": _blas()[2],
    }
    if "torch" in sys.modules:
        facts["PyTorch threads"] = str(sys.modules["torch"].get_num_threads())
    if "jax" in sys.modules:
        facts["JAX"] = (
            "not limited (XLA uses every CPU)"
            if cpus is None
            else "one XLA CPU thread per CPU the process may run on"
        )
    return facts


# What makes OpenBLAS use a kernel other than the one it picks for the CPU: unset for the native run.
KERNEL_SETTINGS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def kernel_env(kernel: str | None) -> dict[str, str]:
    """The environment of a measuring process: OpenBLAS's own kernel (None), or ``kernel`` forced."""
    env = {name: value for name, value in os.environ.items() if name not in KERNEL_SETTINGS}
    if kernel is not None:
        env["OPENBLAS_CORETYPE"] = kernel
    return env


def blas_kernel(kernel: str | None = None) -> str:
    """The OpenBLAS kernel a fresh interpreter runs with (``kernel`` forced, or its own); "" if unknown."""
    code = (
        "import numpy; from threadpoolctl import threadpool_info; "
        "print(next((i.get('architecture') or '' for i in threadpool_info() if i['user_api'] == 'blas'), ''))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=kernel_env(kernel), check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def older_kernel(native: str) -> str:
    """The older kernel the step is measured with as well: Haswell, or Sandybridge where Haswell is native."""
    return "Sandybridge" if native == "Haswell" else "Haswell"


def in_subprocess(
    module: str,
    function: str,
    threads: int,
    *args: Any,
    show_progress: bool = False,
    kernel: str | None = None,
) -> Any:
    """``function(*args)`` from ``module`` in a fresh interpreter on ``threads`` CPUs; the result as JSON.

    The interpreter pins itself to the first ``threads`` CPUs before importing
    anything, so every thread it starts (BLAS, PyTorch, XLA) inherits the set.
    It runs with OpenBLAS's own kernel for the CPU (OPENBLAS_CORETYPE and
    OPENBLAS_L2_SIZE unset), or with ``kernel`` forced.
    With ``show_progress`` its standard error (the progress lines) goes straight
    to ours; otherwise it is kept for the error message.
    """
    env = {**kernel_env(kernel), **_thread_env(threads)}
    cpus = cpus_for(threads)
    pin = "" if cpus is None else f"import os; os.sched_setaffinity(0, {cpus!r}); "
    code = f"{pin}import json; from {module} import {function}; print(json.dumps({function}(*{args!r})))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=None if show_progress else subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        why = "its error is above" if show_progress else done.stderr[-2000:]
        raise BenchmarkError(f"bench: {function}{args!r} failed:\n{why}")
    return json.loads(done.stdout.strip().splitlines()[-1])
