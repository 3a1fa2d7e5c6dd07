"""Pure NumPy / PyTorch references of the VBQ (paper 003) native code: the formula, its
regression, Lloyd-Max, the objectives, the GA operators and a whole (slow) GA."""
from typing import Callable, Tuple

import numpy as np
import torch

from .quantize import fake_quant


def formula(a: float, b: float, bins: int, c: float = 0.0, d: float = 0.0) -> np.ndarray:
    x = np.arange(bins) / (bins - 1) - 0.5
    u = x - d
    return np.sign(u) * b * (a ** np.abs(u) - 1.0) + c


def fit_formula_grid(values, symmetric: bool = True, n_alpha: int = 4001, n_d: int = 201) -> float:
    """Smallest SSE of Eq. 2 (or Eq. 1) over a dense (log a, d) grid with b, c exact."""
    v = np.asarray(values, np.float64)
    N = v.size
    x = np.arange(N) / (N - 1) - 0.5
    best = np.inf
    for d in ([0.0] if symmetric else np.linspace(-0.5, 0.5, n_d)):
        u = x - d
        alpha = np.linspace(-20, 20, n_alpha)[:, None]
        f = np.sign(u) * np.expm1(alpha * np.abs(u))              # [n_alpha, N]
        A = np.stack([f] if symmetric else [f, np.ones_like(f)], -1)  # [n_alpha, N, p]
        AtA = np.einsum("anp,anq->apq", A, A)
        Atv = np.einsum("anp,n->ap", A, v)
        ok = np.abs(np.linalg.det(AtA)) > 1e-300
        sol = np.zeros_like(Atv)
        sol[ok] = np.linalg.solve(AtA[ok], Atv[ok][..., None])[..., 0]
        sse = ((np.einsum("anp,ap->an", A, sol) - v) ** 2).sum(1)
        sse[~ok] = np.inf
        best = min(best, float(sse.min()))
    return best


def _boundaries(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """For sorted s, the index where each bin of codebook c ends (midpoints, tie rule:
    a value exactly on a midpoint goes to the entry farther from zero)."""
    mid = c[:-1] * 0.5 + c[1:] * 0.5
    lower = np.searchsorted(s, mid, side="left")
    upper = np.searchsorted(s, mid, side="right")
    return np.append(np.where(mid >= 0, lower, upper), s.size)


def lloyd_max(w, bins: int, max_iter: int = 300, tol: float = 1e-9) -> np.ndarray:
    s = np.sort(np.asarray(w, np.float64).reshape(-1))
    n = s.size
    c = s[np.minimum(n - 1, ((np.arange(bins) + 0.5) * n / bins).astype(np.int64))].copy()
    for _ in range(max_iter):
        prev = c.copy()
        ends = _boundaries(s, prev)
        begin = 0
        for j, end in enumerate(ends):
            if end > begin:
                c[j] = s[begin:end].mean()
            begin = max(begin, end)
        if np.abs(c - prev).max() <= tol * (s[-1] - s[0]):
            break
    return c


def weight_mse(w, cb) -> float:
    w = torch.as_tensor(np.asarray(w, np.float64)).reshape(-1)
    q = fake_quant(w, "codebook", 8, torch.as_tensor(np.asarray(cb, np.float64))[None])
    return float(((q - w) ** 2).mean())


def layer_output_mse(W, X, cb) -> float:
    """||X W^T - X Q(W)^T||^2, computed directly (no Gram matrix)."""
    W = torch.as_tensor(np.asarray(W, np.float64))
    X = torch.as_tensor(np.asarray(X)).double()
    q = fake_quant(W, "codebook", 8, torch.as_tensor(np.asarray(cb, np.float64))[None])
    return float(((X @ W.T - X @ q.T) ** 2).sum())


# ---- GA operators (same draws in, same genomes out as the C++ ones) -------------------------

def ga_repair(u, lo: float, hi: float, strict_lo: bool) -> np.ndarray:
    u = np.sort(np.asarray(u, np.float64))
    gap = 1e-6 * max(hi - lo, abs(lo), abs(hi))
    for i in range(u.size):
        lower = (lo + gap if strict_lo else lo) if i == 0 else u[i - 1] + gap
        u[i] = min(max(u[i], lower), hi)
    for i in range(u.size - 1, -1, -1):
        upper = hi if i == u.size - 1 else u[i + 1] - gap
        u[i] = min(u[i], upper)
    return u


def _nearest_run(u: np.ndarray, center: float, count: int) -> int:
    right = int(np.searchsorted(u, center, side="left"))
    left = right - 1
    for _ in range(count):
        if right >= u.size or (left >= 0 and center - u[left] <= u[right] - center):
            left -= 1
        else:
            right += 1
    return left + 1


def ga_crossover(p1, p2, center: float, count: int, lo: float, hi: float,
                 strict_lo: bool) -> Tuple[np.ndarray, np.ndarray]:
    p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
    count = max(1, min(count, p1.size))
    b1, b2 = _nearest_run(p1, center, count), _nearest_run(p2, center, count)
    c1 = np.concatenate([p1[:b1], p1[b1 + count:], p2[b2:b2 + count]])
    c2 = np.concatenate([p2[:b2], p2[b2 + count:], p1[b1:b1 + count]])
    return ga_repair(c1, lo, hi, strict_lo), ga_repair(c2, lo, hi, strict_lo)


def ga_mutate(u, index: int, r: float, lo: float, hi: float, strict_lo: bool) -> np.ndarray:
    u = np.array(u, np.float64)
    below = lo if index == 0 else u[index - 1]
    above = hi if index == u.size - 1 else u[index + 1]
    u[index] = below + r * (above - below)
    return ga_repair(u, lo, hi, strict_lo)


def roulette_weights(f) -> np.ndarray:
    f = np.asarray(f, np.float64)
    ok = np.isfinite(f)                      # -inf: rejected, never drawn
    fmin = f[ok].min() if ok.any() else 0.0
    w = np.where(ok, f if fmin >= 0 else f - fmin, 0.0)
    return w if w.sum() > 0 else (ok | ~ok.any()).astype(np.float64)


def sa_acceptance(e: float, e_new: float, temperature: float, scale: float = 100.0) -> float:
    return 1.0 if e_new >= e else float(np.exp((e_new - e) * scale / temperature))


def ga(fitness: Callable[[np.ndarray], np.ndarray], bins: int, lo: float, hi: float,
       population: int = 50, generations: int = 100, rates=(0.3, 0.5, 0.2),
       seed: int = 0) -> Tuple[np.ndarray, float, np.ndarray]:
    """The asymmetric GA in NumPy (its own random stream): (best, best fitness, best history)."""
    rng = np.random.default_rng(seed)
    pop = np.stack([ga_repair(rng.uniform(lo, hi, bins), lo, hi, False) for _ in range(population)])
    fit = np.asarray(fitness(pop), np.float64)
    history = [fit.max()]
    n_rep = max(1, round(rates[0] * population))
    n_cross = min(population - n_rep, round(rates[1] * population))
    for _ in range(generations):
        best = int(fit.argmax())
        w = roulette_weights(fit)
        w[best] = 0
        w = w / w.sum() if w.sum() > 0 else np.full(population, 1.0 / population)
        keep = [best] + list(rng.choice(population, n_rep - 1, p=w))
        children = []
        while len(children) < n_cross:
            a, b = rng.choice(population, 2, replace=False)
            children += ga_crossover(pop[a], pop[b], rng.uniform(lo, hi),
                                     1 + int(rng.integers(max(1, bins - 1))), lo, hi, False)
        children = children[:n_cross]
        mutants = [ga_mutate(pop[rng.integers(population)], int(rng.integers(bins)),
                             rng.uniform(1e-12, 1), lo, hi, False)
                   for _ in range(population - n_rep - n_cross)]
        new = np.array(children + mutants).reshape(-1, bins)
        pop = np.concatenate([pop[keep], new])
        fit = np.concatenate([fit[keep], np.asarray(fitness(new), np.float64)]) if len(new) else fit[keep]
        history.append(fit.max())
    best = int(fit.argmax())
    return pop[best], float(fit[best]), np.array(history)
