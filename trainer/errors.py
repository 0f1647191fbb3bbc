"""Typed errors of the training side. One base class with `exit_code = 2`; every message
names the thing, the value, and the likely fix, so `racer train` and `racer eval` print one
clear line instead of a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainer.deepracer_import import ImportResult
    from trainer.export import ExportResult


class TrainerError(Exception):
    """Base of every error the trainer raises on purpose."""

    exit_code = 2


class TrainConfigError(TrainerError):
    """A training configuration or a `hyperparameters.json` is malformed or out of range."""


class CheckpointError(TrainerError):
    """A run directory or checkpoint is missing, incomplete or does not match the config."""


class RolloutError(TrainerError):
    """A simulator worker failed (crashed, or its environment raised)."""


class EvaluationError(TrainerError):
    """An evaluation target or its options cannot be used."""


class ModelFolderError(TrainerError):
    """A model folder's choices (`racer new`) cannot be trained, or the folder cannot be
    written."""


class ExportError(TrainerError):
    """The run cannot be exported, or the converted model disagrees with the float one."""


class ParityError(ExportError):
    """The converted model agrees with the float one less often than required; carries
    the measured figures (`result`) so `--json` can still print them."""

    def __init__(self, result: ExportResult, message: str) -> None:
        super().__init__(message)
        self.result = result


class DeepRacerModelError(TrainerError):
    """A DeepRacer model archive or frozen graph cannot be imported, or a run cannot be
    written as one for the AWS DeepRacer car (names the file, the value and the fix)."""


class ImportParityError(DeepRacerModelError):
    """An imported model's conversion agrees with the original graph less often than
    required; carries the measured figures (`result`) so `--json` can still print them."""

    def __init__(self, result: ImportResult, message: str) -> None:
        super().__init__(message)
        self.result = result
