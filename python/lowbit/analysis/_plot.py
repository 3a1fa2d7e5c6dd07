"""Drawing helpers shared by the analysis functions: matplotlib on the Agg backend (no
display needed) and PNG files written atomically."""
import io
import os
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


def pyplot():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, png: PathLike, dpi: int = 110) -> Path:
    """Write `fig` to `png` (temporary file + rename) and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    path = Path(png)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path
