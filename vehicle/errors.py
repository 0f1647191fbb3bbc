"""Typed errors of the car runtime. One base class; every message names the thing, the
value and the likely fix. `exit_code` is what `racer` exits with when one escapes."""

from __future__ import annotations


class VehicleError(Exception):
    """Base of every error the car runtime raises on purpose."""

    exit_code = 2


class MetadataError(VehicleError):
    """A `model_metadata.json` (or the dict read from it) is malformed or out of range."""


class MetadataWarning(UserWarning):
    """A `model_metadata.json` DeepRacer accepts holds something openracer ignores or clips
    (keys DeepRacer does not use, speeds above the simulator's 4 m/s); one line each."""


class ObservationError(VehicleError):
    """A camera frame cannot be turned into the model's observation."""


class ModelError(VehicleError):
    """A TFLite model is missing, corrupt, or its signature disagrees with its metadata."""


class InferenceBackendError(ModelError):
    """No TFLite interpreter (ai_edge_litert, tflite_runtime, TensorFlow) can be imported."""


class CameraError(VehicleError):
    """A camera cannot be opened, stopped delivering frames, or returned a broken frame."""


class CameraStalled(CameraError):
    """No frame arrived within the camera's timeout."""


class CameraEnded(CameraError):
    """A recording (replay folder, video file) has no more frames: a normal end."""


class LinkError(VehicleError):
    """The serial link to the motor controller is broken (port gone, closed, unusable)."""


class LinkTimeout(LinkError):
    """The motor controller stopped answering: nothing valid received within the timeout."""


class LinkReaderError(LinkError):
    """The link's reader thread failed on a frame from the motor controller (a payload the
    host cannot decode, or a host bug). The car was sent to neutral first; the link stays
    unusable until it is closed and reopened. The original exception is the `__cause__`."""


class ProtocolError(LinkError):
    """The motor controller answered with something the protocol does not allow
    (wrong firmware version, a refused command)."""


class PulseError(VehicleError):
    """A pulse calibration or a speed curve is out of range or inconsistent."""


class RunLogError(VehicleError):
    """A drive's run log cannot be written, or a run log read back is malformed."""


class StoreUnavailableError(VehicleError):
    """The car's model store cannot be opened (its folder cannot be resolved or used)."""


class DriveError(VehicleError):
    """The drive loop refuses to start (model and calibration disagree, bad options)."""


class BundleError(VehicleError):
    """A bundle is unreadable, tampered with, truncated, mismatched or wrongly signed."""


class UntrustedBundleError(BundleError):
    """A bundle is unsigned or not signed by a key this car trusts, while it trusts some."""


class SigningError(VehicleError):
    """A key file is missing or malformed, or signing cannot be done here."""


class StoreError(VehicleError):
    """A store operation was refused (bad bundle, unknown model, nothing to roll back)."""
