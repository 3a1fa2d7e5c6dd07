"""Drawing helpers shared by the analysis functions: matplotlib on the Agg backend (no
display needed) and PNG files written atomically."""
import io
import os
from pathlib import Path
from typing import Union

from ..files import write_bytes_atomically
from ..optional import pyplot

PathLike = Union[str, os.PathLike]


def save_png(fig, png: PathLike, dpi: int = 110) -> Path:
    """Write `fig` to `png` atomically (lowbit.files) and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    path = Path(png)
    write_bytes_atomically(path, buf.getvalue())
    return path
