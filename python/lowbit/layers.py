"""The layer-kind table: which modules lowbit quantizes, which of their tensors, how.

One record per module kind. `attach` (straight-through retraining), `ptq`, `vbq`,
`convert`, `save_quantized`, `coverage` and the capacity advisor all read it (through
`lowbit.plan`), so reading `KINDS` tells what is supported:

| kind       | modules                                   | quantized tensors (row blocks)               |
|------------|-------------------------------------------|----------------------------------------------|
| attention  | MultiheadAttention                        | in_proj_weight (q, k, v) or q/k/v_proj_weight; out_proj.weight |
| rnn        | RNN, LSTM, GRU                            | every weight_ih/hh/hr (LSTM 4 gates, GRU 3)  |
| conv       | Conv1d, Conv2d, Conv3d                    | weight                                       |
| linear     | Linear and its subclasses                 | weight                                       |
| embedding  | Embedding, EmbeddingBag                   | weight (one row per token)                   |
| batchnorm  | BatchNorm1d/2d/3d (PTQ only)              | weight (gamma), bias (beta), per tensor      |

Biases are quantized only when asked (`quantize_bias=True`). Every other parameter stays
float, and `lowbit.coverage` says why. The packed-module builders live in
`lowbit.inference.convert` (the inference layer sits above this table); here each kind
only names its builder and, where there is none, why the layer stays float.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from torch import nn

PURPOSES = ("retrain", "ptq", "vbq")


@dataclass(frozen=True)
class Slot:
    """One tensor of a layer. path: attribute path from the layer ('weight', 'out_proj.weight');
    role: 'weight', 'bias' (quantized only with quantize_bias) or 'batchnorm' (per tensor);
    blocks: the row blocks granularity='group' uses when `groups` is not given (LSTM gates,
    attention's q, k, v)."""
    path: str
    role: str = "weight"
    blocks: int = 1


@dataclass(frozen=True)
class LayerKind:
    """One module kind. `slots(module)` lists its tensors (None ones are left out);
    `claims`: child modules that belong to this layer and are not layers of their own
    (attention's out_proj, whose weight the attention reads itself); `purposes`: the front
    ends that quantize it; `family`: the capacity advisor's measured kind (papers 000/001),
    None when no capacity was measured for it; `output_candidate`: can be the model's output
    layer (which retraining leaves float); `hook`: how attach swaps the weights; `packed`: the name of the
    packed module convert builds (None: stays float, `float_reason` says why);
    `float_is_exact`: staying float loses nothing worth a warning (BatchNorm: a few scalars
    per channel, folded by fuse); `storage`: how save_quantized stores the quantized tensors."""
    name: str
    types: Tuple[type, ...]
    slots: Callable[[nn.Module], List[Slot]]
    purposes: Tuple[str, ...]
    family: Optional[str]
    output_candidate: bool
    hook: str
    packed: Optional[str] = None
    float_reason: Optional[str] = None
    claims: Tuple[str, ...] = ()
    float_is_exact: bool = False
    storage: str = "each quantized tensor as its codes packed at `bits` bits plus its QParams"


def _weight_and_bias(module: nn.Module) -> List[Slot]:
    return [Slot("weight"), Slot("bias", "bias")]


def _rnn_slots(module: nn.RNNBase) -> List[Slot]:
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    out = []
    for n in module._flat_weights_names:
        if n.startswith("weight_hr"):            # LSTM projection: no gate blocks
            out.append(Slot(n, "weight", 1))
        elif n.startswith("weight_"):
            out.append(Slot(n, "weight", gates))
        else:
            out.append(Slot(n, "bias"))
    return out


def _attention_slots(module: nn.MultiheadAttention) -> List[Slot]:
    if module._qkv_same_embed_dim:
        proj = [Slot("in_proj_weight", "weight", 3)]
    else:
        proj = [Slot(f"{p}_proj_weight") for p in "qkv"]
    return proj + [Slot("out_proj.weight"), Slot("in_proj_bias", "bias"), Slot("out_proj.bias", "bias"),
                   Slot("bias_k", "bias"), Slot("bias_v", "bias")]


def _embedding_slots(module: nn.Module) -> List[Slot]:
    return [Slot("weight")]


def _batchnorm_slots(module: nn.Module) -> List[Slot]:
    return [Slot("weight", "batchnorm"), Slot("bias", "batchnorm")] if module.affine else []


_FORWARD_PRE_HOOK = ("a forward pre-hook sets each weight to the straight-through fake-quantized "
                     "float shadow `<name>_float`")

KINDS: Dict[str, LayerKind] = {k.name: k for k in (
    LayerKind("attention", (nn.MultiheadAttention,), _attention_slots, ("retrain", "ptq"), "fc",
              output_candidate=False,
              hook=_FORWARD_PRE_HOOK + " (the attention's own and out_proj's)",
              claims=("out_proj",), packed="PackedMultiheadAttention"),
    LayerKind("rnn", (nn.RNNBase,), _rnn_slots, ("retrain", "ptq"), "rnn", output_candidate=True,
              hook=_FORWARD_PRE_HOOK + "; nn.RNNBase refreshes its flat weights on assignment",
              float_reason="no packed recurrent kernel: the layer keeps its quantized values in float"),
    LayerKind("conv", (nn.Conv1d, nn.Conv2d, nn.Conv3d), _weight_and_bias, PURPOSES, "conv",
              output_candidate=True, hook=_FORWARD_PRE_HOOK, packed="PackedConv"),
    LayerKind("linear", (nn.Linear,), _weight_and_bias, PURPOSES, "fc", output_candidate=True,
              hook=_FORWARD_PRE_HOOK, packed="PackedLinear"),
    LayerKind("embedding", (nn.Embedding, nn.EmbeddingBag), _embedding_slots, PURPOSES, None,
              output_candidate=False, hook=_FORWARD_PRE_HOOK, packed="PackedEmbedding"),
    LayerKind("batchnorm", (nn.modules.batchnorm._BatchNorm,), _batchnorm_slots, ("ptq",), None,
              output_candidate=False, hook="not retrained: PTQ only",
              float_reason="folded by fuse or kept as float arithmetic on quantized values",
              float_is_exact=True),
)}


# Modules whose parameters stay float by design: a scale and shift per channel (or one
# slope), which no front end quantizes and which `convert(strict=True)` accepts.
FLOAT_BY_DESIGN: Tuple[type, ...] = (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm,
                                     nn.PReLU)


def kind_of(module: nn.Module) -> Optional[LayerKind]:
    """The kind of a module (the first record whose types it is an instance of), or None."""
    for kind in KINDS.values():
        if isinstance(module, kind.types):
            return kind
    return None


def owner_and_param(layer: nn.Module, path: str) -> Tuple[nn.Module, str, str]:
    """(module holding the tensor, its attribute name, the owner's path under the layer)."""
    owner_path, _, param = path.rpartition(".")
    owner = layer.get_submodule(owner_path) if owner_path else layer
    return owner, param, owner_path


def present_slots(layer: nn.Module, kind: LayerKind, shadows: bool = False) -> List[Slot]:
    """The kind's slots that hold an nn.Parameter on this module (shadows=True: also those
    whose parameter lowbit.attach keeps as the float shadow `<name>_float`)."""
    out = []
    for slot in kind.slots(layer):
        owner, param, _ = owner_and_param(layer, slot.path)
        names = (param, param + "_float") if shadows else (param,)
        if any(isinstance(owner._parameters.get(n), nn.Parameter) for n in names):
            out.append(slot)
    return out


def layers_of(model: nn.Module) -> List[Tuple[str, nn.Module, LayerKind]]:
    """(name, module, kind) of every layer in module order; modules a layer claims (attention's
    out_proj) are part of it, not layers of their own."""
    claimed = set()
    out = []
    for name, module in model.named_modules():
        if name in claimed:
            continue
        kind = kind_of(module)
        if kind is None:
            continue
        out.append((name, module, kind))
        claimed.update(f"{name}.{c}" if name else c for c in kind.claims)
    return out


def output_layer(model: nn.Module) -> Optional[str]:
    """The last layer that can be an output layer (Linear, convolution, RNN) in module order:
    what retraining leaves float by default, as papers 000-002 do."""
    last = None
    for name, _, kind in layers_of(model):
        if kind.output_candidate:
            last = name
    return last


def unsupported_parameters(model: nn.Module) -> List[Tuple[str, str]]:
    """(name, module type) of parameters no layer kind covers and that are not float by
    design: what no front end can quantize (a custom module's raw nn.Parameter)."""
    owned = set()
    for name, layer, _ in layers_of(model):
        owned.update(id(p) for p in layer.parameters())
    modules = dict(model.named_modules())
    out = []
    for name, p in model.named_parameters():
        owner = modules[name.rpartition(".")[0]]
        if id(p) not in owned and not isinstance(owner, FLOAT_BY_DESIGN):
            out.append((name, type(owner).__name__))
    return out
