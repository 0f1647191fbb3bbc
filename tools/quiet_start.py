"""Keeps TensorFlow's C++ start-up lines out of the terminal of every `racer` command.

TensorFlow 2.21 writes these from C++ before its logging is set up, so
`TF_CPP_MIN_LOG_LEVEL` does not silence them (tensorflow/tensorflow#100442):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, ...
    E0000 ... cuda_platform.cc:52] failed call to cuInit: ...

`install()` adds an import hook: the first `import tensorflow` (directly or through keras)
and its device discovery run with file descriptor 2 captured into a temporary file; then
every captured line except those start-up lines is written back to the terminal, so a
real error still shows. `racer --debug` does not install the hook.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

START_UP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:. ]+\d+ \S+\] ("
    r"oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions"
    r")"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def is_start_up_noise(line: str) -> bool:
    """Whether `line` is one of TensorFlow's known C++ start-up lines."""
    return bool(START_UP_NOISE.match(line))


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Runs the body with fd 2 captured, then writes back every line but the noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [ln for ln in text.splitlines(keepends=True) if not is_start_up_noise(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Wraps TensorFlow's loader: its import and device discovery run inside the filter."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with filtered_stderr():
            self._inner.exec_module(module)
            # the CUDA probe (cuInit) happens at device discovery, not at import
            module.config.list_physical_devices()


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Filter TensorFlow's start-up lines from the first import on (idempotent; a no-op
    once TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _FirstTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _FirstTensorFlowImport())
