"""Find a TFLite interpreter: ai-edge-litert (default) or tflite-runtime 2.14 (32-bit Pi OS)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from frame_daemon.errors import ModelError

RUNTIMES = ("ai-edge-litert", "tflite-runtime")


def _interpreter_class(runtime: str) -> Any:
    if runtime == "ai-edge-litert":
        from ai_edge_litert.interpreter import Interpreter
    elif runtime == "tflite-runtime":
        from tflite_runtime.interpreter import Interpreter
    else:
        raise ModelError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    return Interpreter


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide the runtime's native "INFO: Created TensorFlow Lite XNNPACK delegate" line.

    It is written by C++ straight to file descriptor 2, under every `score` run; failures still
    surface as Python exceptions.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def make_interpreter(model_path: Path, threads: int = 1, runtime: str = "auto") -> tuple[Any, str]:
    """An allocated interpreter for `model_path` and the name of the runtime that made it.

    `runtime="auto"` (or the FRAME_DAEMON_RUNTIME environment variable) tries ai-edge-litert, then
    tflite-runtime.
    """
    runtime = os.environ.get("FRAME_DAEMON_RUNTIME", runtime) if runtime == "auto" else runtime
    candidates = RUNTIMES if runtime == "auto" else (runtime,)
    missing = []
    for name in candidates:
        try:
            cls = _interpreter_class(name)
        except ImportError:
            missing.append(name)
            continue
        try:
            with _native_stderr_silenced():
                interp = cls(model_path=str(model_path), num_threads=threads)
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_path}: not a loadable TFLite model ({exc})") from exc
        return interp, name
    raise ModelError(f"no TFLite runtime installed (tried {', '.join(missing)}): "
                     "pip install ai-edge-litert (64-bit), or tflite-runtime==2.14.0 'numpy<2' (32-bit)")
