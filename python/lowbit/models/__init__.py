"""Reference models for quantization experiments: an MLP, two CNNs and a character LSTM."""
from .cnn import LeNet5, SmallVGG
from .ffdnn import FFDNN
from .lstm import CharLSTM

# Names accepted by build_model (e.g. from a command line or a config file).
MODELS = {"ffdnn": FFDNN, "lenet5": LeNet5, "vgg": SmallVGG, "charlstm": CharLSTM}


def build_model(name: str, **kwargs):
    """Construct a model by name ("ffdnn", "lenet5", "vgg", "charlstm"; case-insensitive).

    Keyword arguments go to the model's constructor.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; accepted names: {', '.join(MODELS)}")
    return MODELS[key](**kwargs)


from .pretrained import accuracy, cache_dir, pretrained, train_classifier  # noqa: E402 (needs MODELS)


__all__ = ["FFDNN", "LeNet5", "SmallVGG", "CharLSTM", "build_model", "MODELS", "pretrained",
           "accuracy", "train_classifier", "cache_dir"]
