"""Which weights of a model hold quantized values, and with which parameters.

`freeze` (after retraining) and `ptq` (post-training) leave a plain float model whose
weights lie on a quantization grid. They record each weight's QParams on its module in
the attribute `lowbit_qparams` ({parameter name: QParams}), so that saving packed
weights and converting to inference kernels know the grid without guessing it. A plain
attribute survives copy.deepcopy and torch.save of the whole module, not state_dict.
"""
from typing import Dict, Tuple

from torch import nn

from .quant import QParams

QPARAMS_ATTR = "lowbit_qparams"


def record_qparams(module: nn.Module, param: str, qp: QParams) -> None:
    """Note that module.<param> holds values quantized with qp."""
    table = dict(getattr(module, QPARAMS_ATTR, None) or {})
    table[param] = QParams(qp.scheme, qp.bits, qp.p0.detach().clone(),
                           None if qp.p1 is None else qp.p1.detach().clone())
    setattr(module, QPARAMS_ATTR, table)


def recorded_qparams(model: nn.Module) -> Dict[Tuple[str, str], QParams]:
    """{(module name, parameter name): QParams} for every recorded quantized weight."""
    out = {}
    for name, module in model.named_modules():
        for param, qp in (getattr(module, QPARAMS_ATTR, None) or {}).items():
            out[(name, param)] = qp
    return out
