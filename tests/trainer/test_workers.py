"""The local simulator processes (`trainer.workers.EnvPool`): one BLAS thread each."""

from __future__ import annotations

import os

import psutil

from tests.trainer.conftest import FAKE_ENV
from trainer.workers import BLAS_THREAD_VARIABLES, EnvPool


def test_simulator_processes_start_with_one_blas_thread_and_this_process_keeps_its_own(
    monkeypatch,
):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # a count the user set is kept
    before = {k: os.environ.get(k) for k in BLAS_THREAD_VARIABLES}
    with EnvPool(FAKE_ENV, {}, 2, 1, 50) as pool:
        for proc in pool._procs:
            env = psutil.Process(proc.pid).environ()
            assert env["OPENBLAS_NUM_THREADS"] == "1"
            assert env["MKL_NUM_THREADS"] == "3"
    assert {k: os.environ.get(k) for k in BLAS_THREAD_VARIABLES} == before
