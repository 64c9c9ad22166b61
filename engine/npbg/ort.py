"""The rendering network through ONNX Runtime for viewing on a CPU.

ONNX Runtime fuses the gated convolutions' elementwise work that eager PyTorch runs op by op:
1.15-1.4x faster per frame at viewer sizes on a 2-core CPU (full network at 512² 341 vs 480
ms, preview network 110 vs 131-136 ms, side by side), the same images to rounding (~1e-6).
Used only for inference on the CPU, with the weights as they were when the session was built:
while a fit in the same model changes them, PyTorch draws; once they have stopped changing a
new session is built (export + session ~0.5 s, on a background thread).
``NSV_ONNXRUNTIME=0`` turns it off.
"""

from __future__ import annotations

import copy
import io
import os
import threading
import time
import warnings

import torch

from engine.npbg.network import RenderingNetwork

# The TorchScript-based exporter keeps global state (torch.onnx's GLOBALS, the JIT graph
# passes): two exports at once on different threads fail or crash the process (CI crashed
# when the viewer's full and preview networks were exported side by side). One at a time.
_EXPORT_LOCK = threading.Lock()


def available() -> bool:
    if os.environ.get("NSV_ONNXRUNTIME", "1") == "0":
        return False
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def weights_version(net: torch.nn.Module) -> int:
    """Changes whenever a parameter is modified in place (optimizer steps, load_state_dict)."""
    return sum(p._version for p in net.parameters()) + sum(b._version for b in net.buffers())


class _Inputs(torch.nn.Module):
    """The network with one positional input per pyramid level (ONNX has no list inputs)."""

    def __init__(self, net: RenderingNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, *levels: torch.Tensor) -> torch.Tensor:
        return self.net(list(levels))


def build_session(net: RenderingNetwork, threads: int | None = None):
    """An ONNX Runtime session for ``net`` (any image size: height and width are dynamic)."""
    import onnxruntime as ort

    net = copy.deepcopy(net).cpu().eval()
    D, S = net.cfg.descriptor_dim, net.cfg.num_scales
    example = tuple(torch.zeros(1, D, 64 >> s, 64 >> s) for s in range(S))
    names = [f"level{s}" for s in range(S)]
    buf = io.BytesIO()
    with _EXPORT_LOCK, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        torch.onnx.export(
            _Inputs(net), example, buf, input_names=names, output_names=["rgb"],
            dynamic_axes={n: {2: f"h{s}", 3: f"w{s}"} for s, n in enumerate(names)},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or torch.get_num_threads()
    so.log_severity_level = 3
    # Idle ORT threads must not spin: the rasterizer (PyTorch) and the GUI need the cores.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])


def run_session(session, levels: list[torch.Tensor]) -> torch.Tensor:
    """levels[s]: (1, D, H / 2**s, W / 2**s) CPU tensors -> (1, 3, H, W) RGB in [0, 1]."""
    feed = {f"level{s}": x.detach().contiguous().numpy() for s, x in enumerate(levels)}
    return torch.from_numpy(session.run(None, feed)[0])


class OrtNetworks:
    """Sessions for a model's networks, built in the background; ``get(net)`` returns a ready
    session or None (then use PyTorch). Weights that change (a fit in the same model) get a new
    session once they have stopped changing for ``stable_s``: not one per training step."""

    stable_s = 2.0

    def __init__(self) -> None:
        self._sessions: dict[int, tuple[int, object]] = {}  # id(net) -> (version, session)
        self._seen: dict[int, tuple[int, float]] = {}  # id(net) -> (version, since when)
        self._building: set[int] = set()
        self._lock = threading.Lock()
        self.enabled = available()

    def get(self, net: RenderingNetwork, lock: threading.Lock | None = None):
        """The session for ``net`` when one with its current weights is ready. Otherwise
        starts building one (copying the weights under ``lock``, the model's) and returns
        None."""
        if not self.enabled or next(net.parameters()).device.type != "cpu":
            return None
        version = weights_version(net)
        key = id(net)
        now = time.perf_counter()
        with self._lock:
            have = self._sessions.get(key)
            if have is not None and have[0] == version:
                return have[1]
            seen = self._seen.get(key)
            if seen is None or seen[0] != version:
                self._seen[key] = (version, now)
                if seen is not None:  # changed since last time: wait until it settles
                    return None
            elif now - seen[1] < self.stable_s:
                return None
            if key in self._building:
                return None
            self._building.add(key)
        threading.Thread(
            target=self._build, args=(net, version, lock), name="nsv-onnx", daemon=True
        ).start()
        return None

    def wait(self, timeout: float = 30.0) -> None:
        """Blocks until no session is being built (tests, benchmarks)."""
        end = time.perf_counter() + timeout
        while self._building and time.perf_counter() < end:
            time.sleep(0.01)

    def _build(self, net: RenderingNetwork, version: int, lock) -> None:
        try:
            if lock is not None:
                with lock:  # a consistent copy of weights a fit may be updating
                    snapshot, version = copy.deepcopy(net), weights_version(net)
            else:
                snapshot = net
            session = build_session(snapshot)
        except Exception:  # no session: PyTorch keeps drawing
            session = None
            self.enabled = False
        with self._lock:
            self._building.discard(id(net))
            if session is not None:
                self._sessions[id(net)] = (version, session)
