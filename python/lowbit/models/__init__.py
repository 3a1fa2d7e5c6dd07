"""Reference models for quantization experiments: an MLP, two CNNs, a character LSTM and a
character Transformer."""
from .cnn import LeNet5, SmallVGG
from .ffdnn import FFDNN
from .lstm import CharLSTM
from .transformer import CharTransformer, generate, train_char_model

# Names accepted by build_model (e.g. from a command line or a config file).
MODELS = {"ffdnn": FFDNN, "lenet5": LeNet5, "vgg": SmallVGG, "charlstm": CharLSTM,
          "chartransformer": CharTransformer}


def build_model(name: str, **kwargs):
    """Construct a model by name ("ffdnn", "lenet5", "vgg", "charlstm", "chartransformer";
    case-insensitive).

    Keyword arguments go to the model's constructor.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; accepted names: {', '.join(MODELS)}")
    return MODELS[key](**kwargs)


from .pretrained import accuracy, cache_dir, pretrained, train_classifier  # noqa: E402 (needs MODELS)


__all__ = ["FFDNN", "LeNet5", "SmallVGG", "CharLSTM", "CharTransformer", "generate",
           "train_char_model", "build_model", "MODELS", "pretrained",
           "accuracy", "train_classifier", "cache_dir"]
