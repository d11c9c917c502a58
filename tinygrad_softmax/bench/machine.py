"""The machine: threads, versions and the facts the report starts with; fresh interpreters."""

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
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (averages over 1, 5, 15 minutes, at the start)"


def machine_facts(threads: int, how: str) -> dict[str, str]:
    """CPU, BLAS, threads and versions, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    blas_threads = "unknown"
    if installed("threadpoolctl"):
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            blas = f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
            blas_threads = ", ".join(str(i["num_threads"]) for i in infos)
    else:
        try:
            config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            blas = f"{config['name']} {config['version']}"
        except (TypeError, KeyError):
            pass
    facts = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": f"{cpu}, {os.cpu_count()} logical CPUs",
        "load": _load(),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "NumPy": np.__version__,
        "BLAS": blas,
        "threads": f"{threads} requested; NumPy BLAS threads in use: {blas_threads} (set via {how})",
    }
    if installed("torch"):
        import torch

        facts["threads"] += f"; PyTorch threads: {torch.get_num_threads()}"
    facts["PyTorch"] = _version("torch")
    facts["HIPS autograd"] = _version("autograd")
    facts["micrograd"] = _version("micrograd")
    return facts


def in_subprocess(module: str, function: str, threads: int, *args: Any) -> Any:
    """``function(*args)`` from ``module``, run in a fresh interpreter; its result comes back as JSON."""
    env = {**os.environ, **_thread_env(threads)}
    code = f"import json; from {module} import {function}; print(json.dumps({function}(*{args!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"bench: {function}{args!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
