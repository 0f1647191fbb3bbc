"""DeepRacer's frozen TensorFlow 1 graph (`model.pb`): its tensor names, reading one as a
policy, writing one from an openracer policy, and running one as the AWS car does.

Tensor names (wave-2 reference section 3.3, from the car's model optimizer and the simapp):
- camera input, Clipped PPO: `main_level/agent/main/online/network_0/<SENSOR>/<SENSOR>`,
  float32 `[None, 120, 160, 1]`, raw grey values 0-255 (the graph divides by 255);
  `<SENSOR>` is `FRONT_FACING_CAMERA`, `LEFT_CAMERA` or the legacy `observation`;
- output, Clipped PPO: `main_level/agent/main/online/network_1/ppo_head_0/policy`, the
  softmax over the actions in `action_space` order (discrete) or the two action means in
  [-1, 1] (continuous);
- SAC models live under `main_level/agent/policy/...`; stereo and lidar models have more
  inputs. Neither is supported yet, and both are refused by name.

Reading (`read_graph`) parses the GraphDef and finds the input and output by exactly those
names (never by position or op type), then `GraphPolicy` runs the graph through
`tf.compat.v1.wrap_function` pruned to that input and output, with a uint8 -> float32 cast
in front so it takes the same observations as every openracer model.

Writing (`graph_from_keras`) rebuilds an openracer Keras policy (`trainer.networks`) as a
TF1 graph of plain ops (Placeholder, Const, Mul, AvgPool, Conv2D, BiasAdd, Relu, Reshape,
MatMul, Tanh, Softmax, Identity: `CAR_OPS`), with the weights frozen as constants and the
layers named as Coach names them, so the car's converter sees what it sees in DeepRacer's
own graphs. `session_outputs` loads such a file with `tf.compat.v1` by the tensor names,
as deepracer-utils does; `openvino_outputs` converts it as the car's model optimizer does
(`openvino.convert_model` with the input shape and output name, saved with FP16 weights)
and runs the converted model.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from trainer.errors import DeepRacerModelError
from vehicle.observation import OBS_SHAPE

PPO_AGENT = "main_level/agent/main/online"
"""Name scope of a Clipped PPO agent's online networks."""
SAC_AGENT = "main_level/agent/policy/online"
"""Name scope of a SAC agent's policy network."""
PPO_OUTPUT = f"{PPO_AGENT}/network_1/ppo_head_0/policy"
"""The PPO policy head's output op."""
SAC_OUTPUT = f"{SAC_AGENT}/network_0/sac_policy_head_0/policy"
"""The SAC policy head's output op (recognised to refuse it clearly)."""
CAMERAS = ("FRONT_FACING_CAMERA", "LEFT_CAMERA", "observation")
"""Single-camera sensors whose graph input this module reads."""
OTHER_SENSORS = ("STEREO_CAMERAS", "LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")
"""Sensors DeepRacer models may have that openracer cannot run yet."""
CAR_OPS = frozenset(
    {
        "Placeholder",
        "Const",
        "Identity",
        "Mul",
        "AvgPool",
        "Conv2D",
        "BiasAdd",
        "Relu",
        "Reshape",
        "MatMul",
        "Tanh",
        "Softmax",
    }
)
"""The only ops `graph_from_keras` writes; each is in the TensorFlow op lists of the
car's model optimizer (OpenVINO 2021) and of OpenVINO's current TensorFlow frontend."""


def input_name(sensor: str) -> str:
    """The PPO camera placeholder's op name for `sensor`."""
    return f"{PPO_AGENT}/network_0/{sensor}/{sensor}"


@dataclass(frozen=True)
class GraphInterface:
    """Where a DeepRacer graph takes its camera frame and gives its policy."""

    input: str
    """Input placeholder op name (the tensor is `input + ':0'`)."""
    output: str
    """Policy output op name."""
    n_outputs: int
    """Values the output holds per frame (-1 until `GraphPolicy` has run the graph once)."""


def parse_graph(data: bytes, where: str) -> Any:
    """The `tf.compat.v1.GraphDef` in `data`, or a DeepRacerModelError naming `where`."""
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise DeepRacerModelError(
            f"{where}: not a TensorFlow frozen graph ({type(exc).__name__}: {exc}); the file "
            "is corrupt or truncated: download the model again"
        ) from exc
    if not graph_def.node:
        raise DeepRacerModelError(
            f"{where}: the frozen graph holds no operations ({len(data)} bytes); the file is "
            "corrupt or empty: download the model again"
        )
    return graph_def


def check_supported(sensors: list[str], algorithm: str, where: str) -> str:
    """The one camera of a model whose `model_metadata.json` lists `sensors` and
    `algorithm`; SAC and multi-sensor (stereo, lidar) models are refused by name."""
    if algorithm == "sac":
        raise DeepRacerModelError(
            f"{where}: a SAC model (training_algorithm 'sac', output {SAC_OUTPUT}); importing "
            "SAC graphs is not supported yet: import a Clipped PPO model, or train SAC here "
            "with `racer train --recipe first_lap_sac`"
        )
    others = [s for s in sensors if s in OTHER_SENSORS or s not in CAMERAS]
    if others or len(sensors) != 1:
        raise DeepRacerModelError(
            f"{where}: sensor {sensors}: multi-sensor models (stereo camera, lidar) are not "
            "supported yet; openracer models see one front-facing camera "
            f"({' or '.join(CAMERAS)})"
        )
    return sensors[0]


def find_interface(graph_def: Any, sensor: str, algorithm: str, where: str) -> GraphInterface:
    """The input and output of `graph_def` by DeepRacer's tensor names, for a model whose
    metadata says `sensor` (one camera) and `algorithm`; refuses SAC and multi-sensor
    graphs (also when the metadata does not say so), and names what it found when a name
    is missing."""
    nodes = {n.name: n for n in graph_def.node}
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    sac = SAC_OUTPUT in nodes or any(p.startswith(SAC_AGENT) for p in placeholders)
    check_supported([sensor], "sac" if sac else algorithm, where)
    found = sorted(
        {p.split("/")[-1] for p in placeholders if p.split("/")[-1] in (*CAMERAS, *OTHER_SENSORS)}
    )
    if len(found) > 1 or any(f in OTHER_SENSORS for f in found):
        check_supported(found, algorithm, f"{where} (graph inputs)")
    wanted = input_name(sensor)
    if wanted not in nodes or nodes[wanted].op != "Placeholder":
        raise DeepRacerModelError(
            f"{where}: no input placeholder {wanted!r} (the name DeepRacer gives a "
            f"{sensor} input); the graph's placeholders are {placeholders}: is "
            "model_metadata.json's sensor the one this graph was trained with?"
        )
    shape = [d.size for d in nodes[wanted].attr["shape"].shape.dim]
    if len(shape) == 4 and shape[1:] != list(OBS_SHAPE):
        raise DeepRacerModelError(
            f"{where}: input {wanted!r} has shape {shape}, not [-1, {', '.join(map(str, OBS_SHAPE))}] "
            "(DeepRacer's 120x160 grey camera frame); this graph cannot see openracer's camera"
        )
    if PPO_OUTPUT not in nodes:
        policies = [n for n in nodes if n.endswith("/policy") or nodes[n].op == "Softmax"]
        raise DeepRacerModelError(
            f"{where}: no output {PPO_OUTPUT!r} (DeepRacer's Clipped PPO policy head); "
            f"candidates in the graph: {policies[:8] or 'none'}: not a DeepRacer PPO model"
        )
    return GraphInterface(input=wanted, output=PPO_OUTPUT, n_outputs=-1)


class GraphPolicy(tf.Module):
    """A DeepRacer frozen graph as a policy: uint8 frames (B, 120, 160, 1) in, the policy
    output (B, k) out; `serving` is the batch-1 concrete function TFLite converts."""

    def __init__(self, graph_def: Any, interface: GraphInterface, where: str) -> None:
        super().__init__(name="deepracer_graph")

        def imported() -> None:
            tf.compat.v1.import_graph_def(graph_def, name="")

        try:
            wrapped = tf.compat.v1.wrap_function(imported, [])
            self._fn = wrapped.prune(
                feeds=wrapped.graph.get_tensor_by_name(interface.input + ":0"),
                fetches=wrapped.graph.get_tensor_by_name(interface.output + ":0"),
            )
            probe = self(np.zeros((1, *OBS_SHAPE), np.uint8)).numpy()
        except DeepRacerModelError:
            raise
        except Exception as exc:  # import and run errors of a graph that parsed
            raise DeepRacerModelError(
                f"{where}: the frozen graph cannot run from {interface.input} to "
                f"{interface.output} ({type(exc).__name__}: {str(exc).splitlines()[0]}); the "
                "graph is corrupt: download the model again"
            ) from exc
        if probe.ndim != 2 or probe.shape[0] != 1:
            raise DeepRacerModelError(
                f"{where}: output {interface.output} has shape {list(probe.shape)} for one "
                "frame; expected [1, number of actions]"
            )
        self.interface = GraphInterface(interface.input, interface.output, int(probe.shape[1]))
        self.serving = tf.function(
            lambda x: self._fn(tf.cast(x, tf.float32)),
            input_signature=[tf.TensorSpec((1, *OBS_SHAPE), tf.uint8, name="observation")],
        ).get_concrete_function()

    def __call__(self, x: Any, training: bool = False) -> Any:
        """Outputs for a uint8 batch (the call `trainer.parity.keras_forward` makes)."""
        return self._fn(tf.cast(x, tf.float32))


def read_graph(data: bytes, sensor: str, algorithm: str, where: str) -> GraphPolicy:
    """Parse, check by tensor names, and load a DeepRacer frozen graph as a `GraphPolicy`."""
    graph_def = parse_graph(data, where)
    return GraphPolicy(graph_def, find_interface(graph_def, sensor, algorithm, where), where)


def graph_from_keras(model: Any, sensor: str = "FRONT_FACING_CAMERA") -> bytes:
    """An openracer Keras policy (`trainer.networks.build_policy`) as a serialized TF1
    frozen GraphDef with DeepRacer's input and output names and only `CAR_OPS`."""
    from keras import layers

    net = f"{PPO_AGENT}/network_1"
    weights = {layer.name: layer.get_weights() for layer in model.layers}  # eagerly, first
    last_dense = next((la for la in reversed(model.layers) if isinstance(la, layers.Dense)), None)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, *OBS_SHAPE), name=input_name(sensor))
        convs = denses = 0
        last = None
        for layer in model.layers:
            if isinstance(layer, layers.InputLayer):
                continue
            if isinstance(layer, layers.Rescaling):
                with tf.compat.v1.name_scope(f"{net}/{sensor}/"):
                    if float(np.asarray(layer.offset)) != 0.0:
                        raise DeepRacerModelError(
                            f"layer {layer.name}: a rescaling offset cannot be written"
                        )
                    x = tf.multiply(
                        x, tf.constant(float(np.asarray(layer.scale)), tf.float32), name="scale"
                    )
            elif isinstance(layer, layers.AveragePooling2D):
                with tf.compat.v1.name_scope(f"{net}/{sensor}/"):
                    x = tf.nn.avg_pool2d(
                        x, layer.pool_size, layer.strides, layer.padding.upper(), name="AvgPool"
                    )
            elif isinstance(layer, layers.Conv2D):
                kernel, bias = weights[layer.name]
                with tf.compat.v1.name_scope(f"{net}/{sensor}/Conv2d_{convs}/"):
                    x = tf.nn.conv2d(
                        x,
                        tf.constant(kernel),
                        (1, *layer.strides, 1),
                        layer.padding.upper(),
                        name="Conv2D",
                    )
                    x = _activation(tf.nn.bias_add(x, tf.constant(bias), name="BiasAdd"), layer)
                convs += 1
            elif isinstance(layer, layers.Flatten):
                size = int(np.prod(x.shape[1:]))
                with tf.compat.v1.name_scope(f"{net}/{sensor}/Flatten/"):
                    x = tf.reshape(x, tf.constant([-1, size], tf.int32), name="Reshape")
            elif isinstance(layer, layers.Dense):
                kernel, bias = weights[layer.name]
                head = layer is last_dense
                scope = (
                    f"{net}/ppo_head_0/policy_fc/"
                    if head
                    else f"{net}/middleware_fc_embedder/Dense_{denses}/"
                )
                with tf.compat.v1.name_scope(scope):
                    x = tf.matmul(x, tf.constant(kernel), name="MatMul")
                    x = _activation(tf.nn.bias_add(x, tf.constant(bias), name="BiasAdd"), layer)
                denses += 1
                last = "dense"
            elif isinstance(layer, layers.Softmax):
                x = tf.nn.softmax(x, name=PPO_OUTPUT)
                last = "softmax"
            else:
                raise DeepRacerModelError(
                    f"layer {layer.name} ({type(layer).__name__}) has no DeepRacer graph form; "
                    "export a policy built by trainer.networks"
                )
        if last == "dense":
            x = tf.identity(x, name=PPO_OUTPUT)
        if x.op.name != PPO_OUTPUT:
            raise DeepRacerModelError(f"the policy ends in {x.op.name}, not a policy head")
    graph_def = graph.as_graph_def()
    stray = sorted({n.op for n in graph_def.node} - CAR_OPS)
    if stray:
        raise DeepRacerModelError(f"the written graph holds ops {stray} outside {sorted(CAR_OPS)}")
    return graph_def.SerializeToString()


def _activation(x: Any, layer: Any) -> Any:
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name == "relu":
        return tf.nn.relu(x, name="Relu")
    if name == "tanh":
        return tf.tanh(x, name="Tanh")
    if name == "linear":
        return x
    raise DeepRacerModelError(
        f"layer {layer.name}: activation {name!r} has no DeepRacer graph form"
    )


def session_outputs(
    graph_bytes: bytes, frames: np.ndarray, sensor: str, batch: int = 64
) -> np.ndarray:
    """Run a frozen graph with `tf.compat.v1` by DeepRacer's tensor names (as
    deepracer-utils' `load_session` does) on uint8 frames, fed as float 0-255."""
    graph_def = parse_graph(graph_bytes, "graph")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    inp = graph.get_tensor_by_name(input_name(sensor) + ":0")
    out = graph.get_tensor_by_name(PPO_OUTPUT + ":0")
    with tf.compat.v1.Session(graph=graph) as session:
        return np.concatenate(
            [
                session.run(out, {inp: frames[i : i + batch].astype(np.float32)})
                for i in range(0, len(frames), batch)
            ]
        )


def openvino_outputs(
    graph_path: str | Path, frames: np.ndarray, sensor: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Convert a frozen graph as the AWS car's model optimizer does (OpenVINO's TensorFlow
    frontend, input shape [1, 120, 160, 1], the PPO output, FP16 weights), run the
    converted model one frame at a time as the car does, and return its outputs and what
    the conversion made (OpenVINO version, ops)."""
    import openvino as ov

    try:
        # As the car does: convert once to read the names OpenVINO gives the graph's inputs
        # and outputs (with ':0'), then again cut to the camera input and the policy.
        probe = ov.convert_model(str(graph_path))
        inputs = [i.get_any_name() for i in probe.inputs]
        outputs = [o.get_any_name() for o in probe.outputs]
        name = next((i for i in inputs if i.split(":")[0] == input_name(sensor)), None)
        output = next((o for o in outputs if o.startswith(PPO_OUTPUT)), None)
        if name is None or output is None:
            raise DeepRacerModelError(
                f"{graph_path}: OpenVINO finds inputs {inputs} and outputs {outputs}, not "
                f"{input_name(sensor)} and {PPO_OUTPUT}; the AWS car would not find them either"
            )
        model = ov.convert_model(str(graph_path), input=[(name, [1, *OBS_SHAPE])], output=output)
    except DeepRacerModelError:
        raise
    except Exception as exc:  # the frontend raises its own types
        raise DeepRacerModelError(
            f"{graph_path}: OpenVINO {ov.get_version()} cannot convert it ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); the AWS car would refuse it too"
        ) from exc
    ops = sorted({op.get_type_name() for op in model.get_ops()})
    core = ov.Core()
    with tempfile.TemporaryDirectory(prefix="openracer-ov-") as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=True)
        compiled = core.compile_model(
            core.read_model(str(xml)), "CPU", {"INFERENCE_NUM_THREADS": 1}
        )
        request = compiled.create_infer_request()
        outs = [
            np.array(
                request.infer({0: f[None].astype(np.float32)})[compiled.output(0)][0], np.float32
            )
            for f in frames
        ]
    return np.stack(outs), {"openvino_version": ov.get_version(), "fp16_weights": True, "ops": ops}
