"""Argument checks shared by the model constructors."""


def positive_int(name: str, value) -> int:
    """Return value if it is an int >= 1, else raise ValueError naming the argument.

    bool is refused on purpose: True is an int in Python, but FFDNN(width=True) is a bug.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def probability(name: str, value) -> float:
    """Return value if it is a number in [0, 1), else raise ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)
