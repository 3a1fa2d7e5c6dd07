"""The numbers of paper 002 (Shin, Boo, Sung 2017, "Fixed-point optimization of deep
neural networks with adaptive step size retraining"), Tables 1-4, copied by hand from
/work/shared/papers/002_b6345edc105d985a.txt. Lookups return None where the paper has
no entry (e.g. a width the paper did not train), so reports can leave the cell blank.
"""
from typing import Optional

# ---- Table 1: frame-level phoneme error rate (%), FFDNN on TIMIT ------------------------
T1_WIDTHS = (64, 128, 256, 512, 1024)
# "Floating result" row: batch_norm -> errors for widths 64, 128, 256, 512, 1024.
_T1_FLOAT = {False: (34.38, 31.63, 30.17, 29.61, 29.53),
             True: (33.82, 30.81, 29.79, 29.77, 29.59)}
# (bits, method) -> (without BN, widths 64..1024), (with BN, widths 64..1024)
_T1 = {
    (2, "Direct"): ((80.25, 84.12, 81.92, 83.30, 75.05), (89.82, 88.79, 87.57, 85.73, 86.10)),
    (2, "Conventional"): ((43.73, 37.80, 33.70, 31.43, 29.99), (41.81, 35.88, 33.12, 31.21, 30.22)),
    (2, "Adaptive"): ((42.06, 36.88, 32.61, 30.61, 29.49), (37.87, 33.46, 31.48, 30.73, 30.09)),
    (3, "Direct"): ((68.13, 63.65, 60.33, 51.46, 48.61), (80.41, 69.55, 69.42, 81.60, 64.55)),
    (3, "Conventional"): ((40.63, 34.73, 31.41, 30.49, 29.33), (36.88, 32.58, 30.53, 30.14, 29.76)),
    (3, "Adaptive"): ((37.89, 33.80, 30.74, 29.83, 29.40), (35.29, 31.94, 30.32, 30.10, 29.65)),
    (4, "Direct"): ((58.90, 50.58, 42.15, 38.05, 36.53), (65.63, 50.43, 46.46, 43.80, 39.77)),
    (4, "Conventional"): ((36.51, 32.65, 30.79, 29.95, 29.44), (34.17, 31.34, 29.86, 29.81, 29.70)),
    (4, "Adaptive"): ((35.50, 32.09, 30.50, 29.54, 29.29), (33.91, 30.86, 29.47, 29.87, 29.52)),
}

# ---- Table 2: TIMIT error (%), FFDNN with two 512-unit hidden layers, no BN ----------------
T2_FLOAT = 29.61  # "the floating-point result is 29.61%"
T2_METHODS = ("Conventional", "Adaptive", "Gradual", "Adaptive & Gradual")
# bits -> (Conventional, Adaptive, Gradual, Adaptive & Gradual)
_T2 = {6: (29.32, 29.32, 29.32, 29.32),
       4: (29.95, 29.54, 29.53, 29.49),
       3: (30.49, 29.83, 29.90, 29.61),
       2: (31.43, 30.61, 30.69, 30.62)}

# ---- Table 3: SVHN misclassification rate (%), CNNs 'L', 'C', 'V' --------------------------
T3_NETS = ("L", "C", "V")
_T3_FLOAT = (6.45, 5.65, 4.50)  # "Floating result" row, networks L, C, V
_T3 = {  # (bits, method) -> networks L, C, V
    (2, "Direct"): (45.68, 23.17, 73.55),
    (2, "Conventional"): (8.37, 7.10, 5.24),
    (2, "Adaptive"): (8.01, 6.65, 5.02),
    (3, "Direct"): (10.14, 7.88, 6.73),
    (3, "Conventional"): (7.04, 5.97, 4.57),
    (3, "Adaptive"): (6.92, 5.91, 4.53),
    (4, "Direct"): (7.85, 6.03, 4.79),
    (4, "Conventional"): (6.60, 5.76, 4.74),
    (4, "Adaptive"): (6.46, 5.86, 4.60),
}

# ---- Table 4: bits per character on English Wikipedia, 3-layer LSTM -----------------------
T4_SIZES = (64, 128, 256)
_T4_FLOAT = (2.07, 1.81, 1.65)  # "Floating result" row, sizes 64, 128, 256
_T4 = {  # (bits, method) -> sizes 64, 128, 256
    (2, "Direct"): (8.46, 9.53, 7.26),
    (2, "Conventional"): (2.48, 2.49, 1.89),
    (2, "Adaptive"): (2.42, 2.16, 1.86),
    (3, "Direct"): (7.176, 6.84, 4.35),  # printed with three decimals in the paper
    (3, "Conventional"): (2.52, 2.10, 1.91),
    (3, "Adaptive"): (2.35, 2.06, 1.82),
    (4, "Direct"): (4.49, 5.50, 2.59),
    (4, "Conventional"): (2.43, 2.04, 1.83),
    (4, "Adaptive"): (2.32, 1.95, 1.86),
    (6, "Direct"): (2.56, 3.73, 1.73),
    (6, "Conventional"): (2.11, 1.87, 1.67),
    (6, "Adaptive"): (2.11, 1.89, 1.68),
}

FLOAT = "Float"  # the method name of the "Floating result" rows


def _pick(values, keys, key) -> Optional[float]:
    return values[keys.index(key)] if key in keys else None


def table1(batch_norm: bool, width: int, bits: Optional[int], method: str) -> Optional[float]:
    if method == FLOAT:
        return _pick(_T1_FLOAT[bool(batch_norm)], T1_WIDTHS, width)
    row = _T1.get((bits, method))
    return None if row is None else _pick(row[int(bool(batch_norm))], T1_WIDTHS, width)


def table2(bits: Optional[int], method: str) -> Optional[float]:
    if method == FLOAT:
        return T2_FLOAT
    row = _T2.get(bits)
    return None if row is None or method not in T2_METHODS else row[T2_METHODS.index(method)]


def table3(net: str, bits: Optional[int], method: str) -> Optional[float]:
    row = _T3_FLOAT if method == FLOAT else _T3.get((bits, method))
    return None if row is None else _pick(row, T3_NETS, net)


def table4(size: int, bits: Optional[int], method: str) -> Optional[float]:
    row = _T4_FLOAT if method == FLOAT else _T4.get((bits, method))
    return None if row is None else _pick(row, T4_SIZES, size)
