"""Variable bin-size quantization (paper 003, Nogami et al.): search the representative
values of a codebook quantizer per network or per layer.

    import lowbit as lb
    ev = lb.vbq.ModelEvaluator(model, x_calib, y_calib)      # accuracy as the fitness
    r, books = lb.vbq.sa_layers(ev, bins=16, seed=0)          # Eq. 2 + simulated annealing
    qmodel = lb.vbq.apply(model, books, ev.names)             # quantized copy, QParams recorded

Building blocks: `ga` (genetic algorithm), `sa` (simulated annealing on (a, b)),
`formula` / `fit_formula` (Eq. 1/2 and its regression with R^2), `heatmap`,
`lloyd_max` (the baseline), native objectives `weight_mse` / `layer_output_mse`.
Everything stochastic takes a seed; the loops run in C++ without the GIL.
"""
from .formula import FormulaFit, a_from_tilde, fit_formula, formula, heatmap
from .ga import GAResult, ga
from .lloyd import lloyd_codebook, lloyd_max
from .model import ModelEvaluator, apply, quantizable_layers
from .objectives import (Objective, layer_inputs, layer_output_mse, layer_output_objectives,
                         weight_mse)
from .sa import TRACE_FIELDS, SAResult, acceptance, sa
from .search import ga_layers, ga_network, range_b0, sa_layers

__all__ = ["ga", "GAResult", "sa", "SAResult", "acceptance", "TRACE_FIELDS", "formula",
           "fit_formula", "FormulaFit", "heatmap", "a_from_tilde", "lloyd_max", "lloyd_codebook",
           "weight_mse", "layer_output_mse", "layer_output_objectives", "layer_inputs", "Objective",
           "ModelEvaluator", "apply", "quantizable_layers", "ga_network", "ga_layers", "sa_layers",
           "range_b0"]
