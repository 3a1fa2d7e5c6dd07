"""Executes notebooks top to bottom with this interpreter as the kernel (nbclient, Debian's
python3-nbclient + python3-ipykernel) and stores them with their outputs.

    .venv/bin/python notebooks/execute.py                    # every notebook here, in place
    .venv/bin/python notebooks/execute.py quickstart.ipynb   # one of them

`./dev notebooks` runs the first form; tests/test_notebooks.py uses `execute` on copies.
A notebook is written only after every cell ran, so a failing cell leaves the stored file as
it was.
"""
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
KERNEL = "lowbit-venv"


def notebooks():
    return sorted(HERE.glob("*.ipynb"))


def kernelspec(folder: Path) -> str:
    """Writes a kernelspec that starts this Python (the venv that imports lowbit) under
    folder/kernels and returns its name; Debian's default 'python3' kernel runs
    /usr/bin/python3, which does not see the venv. Point JUPYTER_PATH at `folder`."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lowbit (.venv)", "language": "python",
        "env": {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}}))   # a debugger warning per cell otherwise
    return KERNEL


def execute(path: Path, out: Optional[Path] = None, workdir: Optional[Path] = None, timeout: int = 300):
    """Runs the notebook at `path` (cwd `workdir`, default its folder) and writes it with its
    outputs to `out` (default: `path` itself). Needs JUPYTER_PATH to hold `kernelspec`'s
    folder. Returns the executed notebook; a failing cell raises nbclient's CellExecutionError
    and nothing is written."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=timeout,
                                     resources={"metadata": {"path": str(workdir or path.parent)}})
    client.execute()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    target = Path(out or path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)  # mkstemp makes 0600
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return nb


def main(argv) -> int:
    paths = [HERE / a if os.path.sep not in a else Path(a) for a in argv] or notebooks()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"execute.py: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as jupyter, tempfile.TemporaryDirectory() as work:
        os.environ["JUPYTER_PATH"] = jupyter
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        kernelspec(Path(jupyter))
        for p in paths:
            print(f"execute.py: {p.name} ...", flush=True)
            execute(p, workdir=Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
