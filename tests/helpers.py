"""Shared test helpers: parameters for every scheme, built by the references."""
import torch

from lowbit import reference as R
from lowbit import schemes


def params_for(w: torch.Tensor, scheme: str, bits: int, groups: int):
    """(p0, p1) for w from the reference; codebooks are random sorted values per group."""
    if not schemes.get(scheme).calibrated:   # a codebook
        K = min(2 ** bits, 256)
        spread = w.detach().abs().max().item() or 1.0
        unit = torch.sort(torch.randn(groups, K, dtype=torch.float64), dim=1).values
        unit = unit / unit.abs().max()
        for candidate in (unit * spread, torch.linspace(-1, 1, K).repeat(groups, 1) * spread,
                          torch.linspace(-1, 1, K).repeat(groups, 1)):
            cb = candidate.to(w.dtype)  # values within [-spread, spread]: finite in w's dtype
            if bool((cb[:, 1:] > cb[:, :-1]).all()):
                return cb, None
        raise AssertionError("could not build a codebook")
    p = R.qparams(w, scheme, bits, groups, schemes.get(scheme).ptq_step)
    return p[0], (p[1] if len(p) > 1 else None)
