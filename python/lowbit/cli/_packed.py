"""Loading a packed (.lbq) model file for `infer` and `bench`."""
from ..serialize import load_quantized, read_metadata
from ..study import load_architecture
from ._common import existing_file


def load_packed(path: str, model_spec):
    """(model, spec): the file's quantized model, in the architecture of --model or of the
    model named in the file's metadata (written by lowbit study / ptq / retrain / vbq)."""
    p = existing_file(path, "MODEL_FILE")
    spec = model_spec or read_metadata(p).get("model")
    if not spec:
        raise ValueError(f"{path} does not name its model; pass --model (a shipped name or 'module:function')")
    return load_quantized(p, load_architecture(spec)).eval(), spec
