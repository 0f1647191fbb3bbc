"""`racer` keeps TensorFlow's C++ start-up lines off the terminal (but not real errors)
and never lets albumentations ask the network for its newest version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.quiet_start import is_start_up_noise

ROOT = Path(__file__).resolve().parents[2]


def test_the_start_up_lines_are_recognised_and_nothing_else() -> None:
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796404681.765983    4823 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1796404681.766993    4823 cudart_stub.cc:31] Could not find cuda drivers",
        "E0000 00:00:1796404692.420851    4823 cuda_platform.cc:52] failed call to cuInit: x",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
        "TensorFlow with the appropriate compiler flags.",
    ]
    kept = [
        "Traceback (most recent call last):",
        "E0000 00:00:1796404692.420851    4823 op_kernel.cc:1] OP_REQUIRES failed: bad shape",
        "racer train: error: --minutes 0 must be above 0",
    ]
    assert all(is_start_up_noise(line) for line in noise)
    assert not any(is_start_up_noise(line) for line in kept)


def test_importing_tensorflow_through_the_hook_prints_no_start_up_lines() -> None:
    code = (
        "import os, sys\n"
        "os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None)\n"
        "from tools import quiet_start\n"
        "quiet_start.install()\n"
        "import tensorflow as tf\n"
        "print(int(tf.constant(2) + 1))\n"
        "print('a real message', file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "3"
    assert proc.stderr.strip() == "a real message", proc.stderr


def test_the_simulator_turns_off_albumentations_update_check() -> None:
    code = (
        "import os\n"
        "os.environ.pop('NO_ALBUMENTATIONS_UPDATE', None)\n"
        "import sim2real.effects\n"
        "print(os.environ.get('NO_ALBUMENTATIONS_UPDATE'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.strip() == "1", proc.stderr
