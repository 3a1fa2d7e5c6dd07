"""Fuse a converted model into one native call per forward (torch.classes.lowbit.ChainPlan).

A converted model still pays Python and operator dispatch for every layer, im2col and
activation quantization: at batch 1 on small models that overhead is most of the time.
`fuse` traces the model with torch.fx, checks that it is a straight chain of layers the
native plan knows, and hands the whole chain to C++. Outputs equal the unfused model's
exactly (the same kernels and the same float operations in the same order).
"""
import operator
from typing import List

import torch
import torch.nn.functional as F
from torch import fx, nn

from .. import ops  # noqa: F401  (loads lowbit._C, which registers the plan class)
from .int_modules import IntConv2d, IntLinear
from .modules import LUTConv2d, LUTLinear, ShiftConv2d, ShiftLinear, VLUTConv2d, VLUTLinear

_PACKED = (ShiftLinear, IntLinear, LUTLinear, VLUTLinear, ShiftConv2d, IntConv2d, LUTConv2d, VLUTConv2d)
_SKIPPED = (nn.Identity, nn.Dropout)  # identities in eval mode
# Functions a model wraps for torch.fx that return their input as is (input checks); a
# model registers them with `passthrough`, so this core never imports the model zoo.
_INPUT_CHECKS: set = set()


def passthrough(fn):
    """Mark fn(x, ...) -> x (a check wrapped with torch.fx.wrap) as a no-op for fuse."""
    _INPUT_CHECKS.add(fn)
    return fn
_RELU_FUNCTIONS = (torch.relu, F.relu)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _PACKED) or super().is_leaf_module(m, qualname)


def _pair(v) -> List[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]


def _add_packed(plan, m: nn.Module) -> None:
    if isinstance(m, (ShiftLinear, IntLinear, LUTLinear, VLUTLinear)):
        parts, conv, features = [m], [], m.in_features
    else:
        parts, features = list(m.parts), m.in_channels
        conv = _pair(m.kernel_size) + _pair(m.stride) + _pair(m.padding) + _pair(m.dilation) + [m.groups]
    first = parts[0]
    biases = [p.bias for p in parts]
    if any(b is None for b in biases) and not all(b is None for b in biases):
        raise ValueError("every group of a packed convolution must have a bias, or none")
    bias = None if biases[0] is None else torch.cat(biases)
    if isinstance(first, IntLinear):
        plan.add_int([p.w_packed for p in parts], torch.cat([p.w_scale for p in parts]),
                     torch.cat([p.zero_point for p in parts]), bias, first.bits, features, conv, first.act_bits)
        return
    shift = isinstance(first, ShiftLinear)
    scale = torch.cat([p.w_scale for p in parts]) if shift else torch.cat([p.tables for p in parts])
    # Bit-plane rows (ShiftLinear's 'auto' layout, VLUTLinear) run the pow2 / vlut kernels.
    planes = isinstance(first, VLUTLinear) or (shift and first.layout == "planes")
    method = "planes" if planes else first.method if shift else "auto"
    plan.add_packed(shift, [p.w_packed for p in parts], scale, bias, first.bits, features, conv,
                    first.act_bits if shift else 8, first.x_scale if shift else None, method)


def _add_module(plan, name: str, m: nn.Module) -> None:
    if isinstance(m, _PACKED):
        _add_packed(plan, m)
    elif isinstance(m, nn.ReLU):
        plan.add_relu()
    elif isinstance(m, nn.MaxPool2d) and not m.ceil_mode and not m.return_indices:
        stride = m.kernel_size if m.stride is None else m.stride
        plan.add_max_pool2d(_pair(m.kernel_size), _pair(stride), _pair(m.padding), _pair(m.dilation))
    elif isinstance(m, nn.Flatten) and m.end_dim == -1:
        plan.add_flatten(m.start_dim)
    elif type(m) is nn.Linear:
        plan.add_linear(m.weight.detach(), None if m.bias is None else m.bias.detach())
    elif type(m) is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str):
        plan.add_conv2d(m.weight.detach(), None if m.bias is None else m.bias.detach(),
                        _pair(m.stride), _pair(m.padding), _pair(m.dilation), m.groups)
    elif type(m) is nn.BatchNorm2d and m.track_running_stats:
        plan.add_batch_norm(None if m.weight is None else m.weight.detach(),
                            None if m.bias is None else m.bias.detach(),
                            m.running_mean, m.running_var, float(m.eps))
    elif not isinstance(m, _SKIPPED):
        raise ValueError(f"cannot fuse layer {name!r} ({type(m).__name__}); fuse supports packed "
                         "layers, ReLU, MaxPool2d, Flatten, Linear, Conv2d, BatchNorm2d and Dropout: "
                         "run the converted model unfused instead")


def _flatten_start(node: fx.Node) -> int:
    start = node.kwargs.get("start_dim", node.args[1] if len(node.args) > 1 else 0)
    end = node.kwargs.get("end_dim", node.args[2] if len(node.args) > 2 else -1)
    if not isinstance(start, int) or end != -1:
        raise ValueError(f"cannot fuse {node.format_node()}: only flatten(x, start_dim) to the last dim")
    return start


def _add_function(plan, node: fx.Node) -> None:
    t = node.target
    if (node.op == "call_function" and t in _RELU_FUNCTIONS) or (node.op == "call_method" and t in ("relu", "relu_")):
        plan.add_relu()  # in place or not, the values are the same
    elif (node.op == "call_function" and t is torch.flatten) or (node.op == "call_method" and t == "flatten"):
        plan.add_flatten(_flatten_start(node))
    else:
        raise ValueError(f"cannot fuse {node.format_node()}: fuse supports a straight chain of layers, "
                         "relu and flatten; run the converted model unfused instead")


class FusedModel(nn.Module):
    """A converted model whose forward is one native call. `model` is the converted model it
    was built from: state_dict and model_size are its own. The plan holds copies of some
    buffers (per-group scales are concatenated), so it is rebuilt after load_state_dict;
    after editing buffers by hand, call `rebuild()`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self._plan = _build_plan(model)
        self.register_load_state_dict_post_hook(_rebuild_after_load)

    def rebuild(self) -> None:
        self._plan = _build_plan(self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"FusedModel expects a float32 tensor, got {type(x).__name__}")
        return self._plan.run(x)

    def steps(self) -> List[str]:
        """The native steps, in order (e.g. ['shift_conv2d', 'relu', 'max_pool2d', ...])."""
        return list(self._plan.steps())

    def model_size(self) -> int:
        from .convert import model_size
        return model_size(self.model)

    def __getstate__(self):  # the native plan is rebuilt after unpickling or deepcopy
        state = self.__dict__.copy()
        state.pop("_plan", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.rebuild()


def _rebuild_after_load(module: FusedModel, _incompatible_keys) -> None:
    module.rebuild()


def _build_plan(model: nn.Module):
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # torch.fx raises many types for data-dependent Python
        raise ValueError(f"cannot fuse {type(model).__name__}: torch.fx could not trace it ({exc})") from exc
    modules = dict(model.named_modules())
    plan = torch.classes.lowbit.ChainPlan()
    previous = None
    for node in graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                raise ValueError("cannot fuse a model with more than one input")
            previous = node
            continue
        if node.all_input_nodes != [previous]:
            raise ValueError(f"cannot fuse {type(model).__name__}: {node.format_node()} does not take "
                             "exactly the previous layer's output (fuse needs a straight chain)")
        if node.op == "output":
            return plan
        if node.op == "call_module":
            _add_module(plan, node.target, modules[node.target])
        elif node.op == "call_function" and node.target in _INPUT_CHECKS:
            pass  # returns its input unchanged; the fused layers check their input sizes themselves
        elif node.op in ("call_function", "call_method") and node.target is not operator.getitem:
            _add_function(plan, node)
        else:
            raise ValueError(f"cannot fuse {node.format_node()}")
        previous = node
    raise ValueError(f"cannot fuse {type(model).__name__}: its graph has no output")


def fuse(model: nn.Module) -> FusedModel:
    """One native call per forward for a converted model that is a straight chain of layers.

        fast = lb.inference.fuse(lb.inference.convert(model))
        fast(x)          # equals lb.inference.convert(model)(x) exactly, with less overhead

    Supported: the packed modules, ReLU, MaxPool2d (floor mode), Flatten / torch.flatten,
    float Linear / Conv2d, BatchNorm2d (eval statistics) and Dropout / Identity (skipped).
    Anything else, or branches, raise ValueError naming the node.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if model.training:
        raise ValueError("fuse runs inference only: call model.eval() first (Dropout and BatchNorm "
                         "behave differently in training)")
    return FusedModel(model)


def fuse_or_keep(model: nn.Module):
    """(fused model, None) when `fuse` applies, else (model unchanged, the reason)."""
    try:
        return fuse(model), None
    except ValueError as exc:
        return model, str(exc)
