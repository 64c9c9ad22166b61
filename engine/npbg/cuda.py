"""The rendering network on CUDA for viewing: half precision, channels-last, CUDA graphs.

At viewer sizes the network is a few dozen small kernels: fp32 leaves the tensor cores idle,
and launching the kernels one by one from Python costs about as much as running them. So views
run the network in half precision (autocast: convolutions in fp16, or bf16 where fp16 is not
supported well, with channels-last tensors) and, for an image size seen a few times (the viewer
keeps a handful of sizes: the still view, the moving one), replay a recorded CUDA graph of the
whole network. The graph reads the weights in place, so a fit training the same network on the
same GPU is drawn with its current weights. ``NSV_CUDA_HALF=0`` keeps fp32;
``NSV_CUDA_GRAPHS=0`` launches kernels one by one. Training never goes through here.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from engine.npbg.network import RenderingNetwork


def half_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for viewing on ``device``: fp16 (tensor cores since Volta), bf16 on
    GPUs without fast fp16, or None (fp32: ``NSV_CUDA_HALF=0``, or not a CUDA device)."""
    if device.type != "cuda" or os.environ.get("NSV_CUDA_HALF", "1") == "0":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.float16 if major >= 7 else torch.bfloat16


@dataclass
class _Graph:
    net: RenderingNetwork
    graph: torch.cuda.CUDAGraph
    inputs: list[torch.Tensor]
    output: torch.Tensor


class CudaNetworks:
    """``run(net, levels)``: the network's image for CUDA inputs (None for other devices, so
    callers fall back to ``net(levels)``). ``label`` says how the last call ran."""

    capture_after = 3  # calls at one size before recording a graph (sizes a drag passes
    # through once are not worth a recording: ~10-50 ms and memory each)
    max_graphs = 4

    def __init__(self) -> None:
        self.graphs_enabled = os.environ.get("NSV_CUDA_GRAPHS", "1") != "0"
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self._calls: dict[tuple, int] = {}
        self._lock = threading.Lock()
        self.label = "torch"

    def run(
        self, net: RenderingNetwork, levels: list[torch.Tensor], capture: bool = True
    ) -> torch.Tensor | None:
        """levels[s]: (1, D, H / 2**s, W / 2**s) on a CUDA device -> (1, 3, H, W) float32.
        ``capture=False``: replay recorded graphs but record none (another thread may be
        launching kernels on this GPU, e.g. a fit: a recording must not capture or break it)."""
        device = levels[0].device
        if device.type != "cuda":
            return None
        dtype = half_dtype(device)
        key = (id(net), dtype, tuple(tuple(x.shape) for x in levels))
        with self._lock:
            if self.graphs_enabled:
                g = self._graphs.get(key)
                if g is not None and g.net is net:
                    self._graphs.move_to_end(key)
                    for dst, src in zip(g.inputs, levels, strict=True):
                        dst.copy_(src)
                    g.graph.replay()
                    self.label = _label(dtype, graph=True)
                    return g.output.clone()
                self._calls[key] = self._calls.get(key, 0) + 1
                if capture and self._calls[key] >= self.capture_after:
                    g = self._capture(net, levels, dtype)
                    if g is not None:
                        self._graphs[key] = g
                        while len(self._graphs) > self.max_graphs:
                            self._graphs.popitem(last=False)
                        self.label = _label(dtype, graph=True)
                        return g.output.clone()
            self.label = _label(dtype, graph=False)
            return _forward(net, levels, dtype)

    def _capture(self, net, levels, dtype) -> _Graph | None:
        inputs = [x.clone() for x in levels]
        stream = torch.cuda.Stream(levels[0].device)
        stream.wait_stream(torch.cuda.current_stream(levels[0].device))
        try:
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up on a side stream, as capture requires
                    _forward(net, inputs, dtype)
            torch.cuda.current_stream(levels[0].device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            # thread_local: a fit on another thread may launch kernels meanwhile.
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                output = _forward(net, inputs, dtype)
        except RuntimeError:  # capture unsupported here: plain launches from now on
            self.graphs_enabled = False
            return None
        graph.replay()  # capturing records the kernels without running them
        return _Graph(net, graph, inputs, output)


def _forward(net, levels, dtype) -> torch.Tensor:
    with torch.no_grad():
        if dtype is None:
            return net(levels)
        # No weight-cast cache: inside a graph the casts must be recorded, so that a replay
        # reads the weights as they are now (a fit may have changed them).
        with torch.autocast("cuda", dtype=dtype, cache_enabled=False):
            levels = [x.contiguous(memory_format=torch.channels_last) for x in levels]
            return net(levels).float()


def _label(dtype, graph: bool) -> str:
    name = {torch.float16: "fp16", torch.bfloat16: "bf16", None: "fp32"}[dtype]
    return f"cuda {name}" + (" graph" if graph else "")
