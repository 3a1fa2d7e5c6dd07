"""Memorization capacity of networks and the weight precision it calls for (papers 000
and 001: Boo, Shin and Sung, "Memorization capacity of deep neural networks under
parameter quantization" / "Capacity of deep neural networks under parameter quantization").

    import lowbit.capacity as cap
    x, y = cap.fcdnn_dataset(2000, n_in=16, seed=0)         # random bits, random labels
    model = cap.FCDNN(width=16, depth=1)
    acc = cap.train_memorization(model, x, y).accuracy     # the best epoch's (paper 001)
    cap.mutual_information(acc, 2000)                       # bits stored: N (1 - H(p))
"""
# The engine of the sweeps, re-exported; not in __all__, so the API reference documents it
# once, under lowbit.cluster.
from ..cluster import ResultStore, Sweep, job_key  # noqa: F401
from .advisor import PAPER_EVIDENCE, BitAdvice, advise_bits
from .datasets import cnn_dataset, distinct_bits, fcdnn_dataset, rnn_dataset
from .information import (PAPER_BITS_PER_PARAM, binary_entropy, bits_per_parameter,
                          conv_bits_per_parameter, count_parameters, mutual_information)
from .measure import capacity_job, input_limit, measure_capacity
from .models import (CNN_MODELS, CNN_PAPER_PARAMS, FCDNN, MemorizationCNN, MemorizationLSTM,
                     cnn_model, model_kind, parameter_split)
from .quantize import PAPER_BITS, paper_config, precision_threshold, quantize_under_capacity
from .search import CapacityResult, capacity_search, plot_capacity_curve
from .surface import filter_normalized_direction, loss_surface, plot_loss_surfaces
from .tasks import build, dataset, memorize, quantize_job, result_record, spec_name, trained
from .training import (DEFAULT_HPARAMS, PAPER_SPACE, STOPS, TrainingDiverged, TrainResult, epoch_fn,
                       memorization_accuracy, train_memorization)

__all__ = [
    "fcdnn_dataset", "cnn_dataset", "rnn_dataset", "distinct_bits",
    "binary_entropy", "mutual_information", "count_parameters", "bits_per_parameter",
    "conv_bits_per_parameter", "PAPER_BITS_PER_PARAM",
    "FCDNN", "MemorizationCNN", "MemorizationLSTM", "cnn_model", "CNN_MODELS", "CNN_PAPER_PARAMS",
    "parameter_split", "model_kind",
    "train_memorization", "memorization_accuracy", "epoch_fn", "TrainingDiverged", "TrainResult", "STOPS", "PAPER_SPACE",
    "DEFAULT_HPARAMS",
    "capacity_search", "CapacityResult", "plot_capacity_curve", "measure_capacity", "capacity_job",
    "input_limit",
    "build", "dataset", "memorize", "quantize_job", "result_record", "trained", "spec_name",
    "quantize_under_capacity", "precision_threshold", "paper_config", "PAPER_BITS",
    "filter_normalized_direction", "loss_surface", "plot_loss_surfaces",
    "advise_bits", "BitAdvice", "PAPER_EVIDENCE",
]
