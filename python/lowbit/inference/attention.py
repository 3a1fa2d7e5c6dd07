"""nn.MultiheadAttention with packed projections: q, k, v and out are packed linears
(LUTLinear / ShiftLinear, or float nn.Linear where a weight was not quantized) around the
same attention math as F.multi_head_attention_forward."""
import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..quant import QParams
from .modules import _dtype_name, _rows_qparams

_PACKED_IN = ("in_proj_weight",)
_SEPARATE_IN = ("q_proj_weight", "k_proj_weight", "v_proj_weight")
_OUT = "out_proj.weight"


def _projection(weight: torch.Tensor, qp: Optional[QParams], bias: Optional[torch.Tensor],
                make_linear: Callable) -> nn.Module:
    if qp is not None:
        return make_linear(weight, qp, bias)
    float_linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                             device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        float_linear.weight.copy_(weight)
        if bias is not None:
            float_linear.bias.copy_(bias)
    return float_linear


def _float_mask(mask: torch.Tensor, name: str, dtype: torch.dtype) -> torch.Tensor:
    """A bool mask (True = masked) as an additive float mask; a float mask as it is."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    if not mask.is_floating_point():
        raise TypeError(f"PackedMultiheadAttention: {name} must be bool or floating point, got "
                        f"{_dtype_name(mask)}")
    return mask


class PackedMultiheadAttention(nn.Module):
    """nn.MultiheadAttention whose projections are packed.

    qparams: 'in_proj_weight' (the [3E, E] q/k/v weight; 1 group, 3 groups (q, k, v) or 3E
    groups (per row)) or, when kdim / vdim differ from embed_dim, 'q_proj_weight',
    'k_proj_weight', 'v_proj_weight'; and 'out_proj.weight'. A projection without an entry
    stays a float nn.Linear. make_linear(weight2d, qp, bias) builds each packed projection.

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) computes what nn.MultiheadAttention does:
    batch_first or not, unbatched 2-D inputs, bool or float masks, bias_k / bias_v,
    add_zero_attn, dropout on the weights in training mode. Masks combine as torch 2.x
    combines them: each becomes additive (-inf where a bool mask is True) and they are
    summed. is_causal=True with attn_mask=None builds the causal mask; with a mask given it
    is only the hint torch takes it for, and the mask is used as it is.
    """

    # TransformerEncoderLayer / TransformerEncoder take a fused fast path that reads
    # self_attn.in_proj_weight when this is True; False keeps them calling our forward.
    _qkv_same_embed_dim: bool = False
    # torch 2.x's TransformerEncoderLayer reads in_proj_bias before _qkv_same_embed_dim; None
    # also makes it leave the fast path. The real biases live in the projections.
    in_proj_weight: Optional[torch.Tensor] = None
    in_proj_bias: Optional[torch.Tensor] = None

    def __init__(self, mha: nn.MultiheadAttention, qparams: Dict[str, QParams], make_linear: Callable):
        super().__init__()
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha must be an nn.MultiheadAttention, got {type(mha).__name__}")
        E = mha.embed_dim
        same = mha._qkv_same_embed_dim
        allowed = (_PACKED_IN if same else _SEPARATE_IN) + (_OUT,)
        unknown = sorted(set(qparams) - set(allowed))
        if unknown:
            raise ValueError(f"qparams keys must be among {allowed} for this MultiheadAttention "
                             f"(kdim == vdim == embed_dim: {same}), got {unknown}")
        self.embed_dim, self.num_heads, self.head_dim = E, mha.num_heads, mha.head_dim
        self.kdim, self.vdim = mha.kdim, mha.vdim
        self.batch_first = bool(mha.batch_first)
        self.dropout = float(mha.dropout)
        self.add_zero_attn = bool(mha.add_zero_attn)

        b = mha.in_proj_bias
        biases = [None, None, None] if b is None else list(b.detach().chunk(3))
        if same:
            w = mha.in_proj_weight.detach()
            qp = qparams.get("in_proj_weight")
            if qp is not None and qp.groups > 1 and (3 * E % qp.groups or E % (3 * E // qp.groups)):
                raise ValueError(f"in_proj_weight's {qp.groups} quantization groups must split its q, k "
                                 f"and v blocks of {E} rows (use 1, 3 or {3 * E} groups)")
            weights = [w[i * E:(i + 1) * E] for i in range(3)]
            qps = [None if qp is None else _rows_qparams(qp, 3 * E, i * E, (i + 1) * E) for i in range(3)]
        else:
            weights = [getattr(mha, n).detach() for n in _SEPARATE_IN]
            qps = [qparams.get(n) for n in _SEPARATE_IN]
        self.q_proj, self.k_proj, self.v_proj = (_projection(weights[i], qps[i], biases[i], make_linear)
                                                 for i in range(3))
        out = mha.out_proj
        self.out_proj = _projection(out.weight.detach(), qparams.get(_OUT),
                                    None if out.bias is None else out.bias.detach(), make_linear)
        for name in ("bias_k", "bias_v"):
            t = getattr(mha, name)
            self.register_buffer(name, None if t is None else t.detach().clone())
        self.train(mha.training)  # dropout follows the layer it replaces, not nn.Module's default

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor] = None, need_weights: bool = True,
                attn_mask: Optional[torch.Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if not torch.jit.is_scripting():
            if query.is_nested or key.is_nested or value.is_nested:
                # torch 2.x's TransformerEncoder decides use_nested_tensor when it is built, from
                # the float layers, and then hands its layers nested tensors
                raise ValueError("PackedMultiheadAttention does not take nested tensors: set the "
                                 "TransformerEncoder's use_nested_tensor to False")
        batched = query.dim() == 3
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError(f"PackedMultiheadAttention expects query, key and value all 3-D (batched) or "
                             f"all 2-D (unbatched), got shapes {list(query.shape)}, {list(key.shape)}, "
                             f"{list(value.shape)}")
        if batched and self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        L, B, H, hd = query.shape[0], query.shape[1], self.num_heads, self.head_dim
        S = key.shape[0]
        # Sizes are tensors while tracing (comparing them warns and freezes the answer).
        checking = not torch.jit.is_tracing()
        if checking and (query.shape[2] != self.embed_dim or key.shape[2] != self.kdim
                         or value.shape[2] != self.vdim or key.shape[1] != B or value.shape[:2] != key.shape[:2]):
            raise ValueError(f"PackedMultiheadAttention expects query [L, N, {self.embed_dim}], key "
                             f"[S, N, {self.kdim}] and value [S, N, {self.vdim}] (sequence first unless "
                             f"batch_first), got {list(query.shape)}, {list(key.shape)}, {list(value.shape)}")

        q = self.q_proj(query)
        k = self.k_proj(key)
        v = self.v_proj(value)

        mask: Optional[torch.Tensor] = None
        if attn_mask is not None:
            mask = _float_mask(attn_mask, "attn_mask", q.dtype)
            if mask.dim() == 2:
                if checking and list(mask.shape) != [L, S]:
                    raise ValueError(f"PackedMultiheadAttention: a 2-D attn_mask must be [{L}, {S}], got "
                                     f"{list(mask.shape)}")
                mask = mask.unsqueeze(0)
            elif mask.dim() == 3:
                if checking and list(mask.shape) != [B * H, L, S]:
                    raise ValueError(f"PackedMultiheadAttention: a 3-D attn_mask must be [{B * H}, {L}, {S}] "
                                     f"(batch * num_heads, L, S), got {list(mask.shape)}")
            else:
                raise ValueError(f"PackedMultiheadAttention: attn_mask must be 2-D or 3-D, got {mask.dim()}-D")
        elif is_causal:
            mask = torch.full((L, S), float("-inf"), dtype=q.dtype, device=q.device).triu(1).unsqueeze(0)
        kpm: Optional[torch.Tensor] = None
        if key_padding_mask is not None:
            kpm = _float_mask(key_padding_mask, "key_padding_mask", q.dtype)
            if checking and list(kpm.shape) != [B, S]:
                raise ValueError(f"PackedMultiheadAttention: key_padding_mask must be [{B}, {S}], got "
                                 f"{list(key_padding_mask.shape)}")

        bias_k, bias_v = self.bias_k, self.bias_v
        if bias_k is not None and bias_v is not None:  # one more key / value position
            k = torch.cat([k, bias_k.repeat(1, B, 1)])
            v = torch.cat([v, bias_v.repeat(1, B, 1)])
            if mask is not None:
                mask = F.pad(mask, (0, 1))
            if kpm is not None:
                kpm = F.pad(kpm, (0, 1))

        q = q.contiguous().view(L, B * H, hd).transpose(0, 1)
        k = k.contiguous().view(k.shape[0], B * H, hd).transpose(0, 1)
        v = v.contiguous().view(v.shape[0], B * H, hd).transpose(0, 1)
        if self.add_zero_attn:  # and one of zeros
            k = torch.cat([k, torch.zeros(B * H, 1, hd, dtype=k.dtype, device=k.device)], dim=1)
            v = torch.cat([v, torch.zeros(B * H, 1, hd, dtype=v.dtype, device=v.device)], dim=1)
            if mask is not None:
                mask = F.pad(mask, (0, 1))
            if kpm is not None:
                kpm = F.pad(kpm, (0, 1))
        S = k.shape[1]
        if kpm is not None:
            kpm = kpm.view(B, 1, 1, S).expand(-1, H, -1, -1).reshape(B * H, 1, S)
            mask = kpm if mask is None else mask + kpm

        q = q / math.sqrt(hd)
        if mask is not None:
            weights = torch.baddbmm(mask, q, k.transpose(-2, -1))
        else:
            weights = torch.bmm(q, k.transpose(-2, -1))
        weights = F.softmax(weights, dim=-1)
        if self.training and self.dropout > 0.0:
            weights = F.dropout(weights, p=self.dropout)
        out = torch.bmm(weights, v).transpose(0, 1).contiguous().view(L * B, self.embed_dim)
        out = self.out_proj(out).view(L, B, -1)

        if batched and self.batch_first:
            out = out.transpose(0, 1)
        elif not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        weights = weights.view(B, H, L, S)
        if average_attn_weights:
            weights = weights.sum(dim=1) / H
        if not batched:
            weights = weights.squeeze(0)
        return out, weights

    def model_size(self) -> int:
        """Bytes of every parameter and buffer (packed projections count packed bytes)."""
        return sum(t.numel() * t.element_size() for t in list(self.parameters()) + list(self.buffers()))

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}, "
                f"dropout={self.dropout}, add_bias_kv={self.bias_k is not None}, add_zero_attn={self.add_zero_attn}")
