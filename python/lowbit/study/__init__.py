"""`lowbit study`: how few bits can a model take, and with which method?

    import lowbit as lb
    index = lb.study.run_study(["lenet5", "ffdnn"], out="lowbit-report", quick=True)

For each model it measures the float baseline, sweeps data-free PTQ (asymmetric,
symmetric, power of two) over 8..2 bits, retrains at the low bit widths with the direct,
conventional, adaptive and gradual schedules, searches VBQ codebooks with per-layer
simulated annealing, converts the best result to packed bit-shift / LUT inference and
times it against float, then writes a report folder (HTML, CSV, Markdown, PNG and the
packed model). Finished steps, and the units inside them, are cached in the folder, so an
interrupted run resumes.

The independent units (one PTQ width, one retraining, one VBQ search) run here one after
another, on a dask LocalCluster (`workers=2`) or on a running dask scheduler
(`scheduler="tcp://host:8786"`), with the same results:

    lb.study.run_study(["lenet5"], out="lowbit-report", quick=True, workers=2)
"""
from ..entry import load_entry_point
from .run import DEFAULT_MODELS, STEPS, run_study, study_models
from .settings import DEFAULT_PTQ_SCHEMES, PTQ_SCHEMES, SCHEDULES, SKIPPABLE, StudySettings
from .workload import (SHIPPED, StudyData, Workload, fashion_mnist, load_architecture, load_data,
                       load_model)

# The command line (lowbit.cli) imports only these, never the study's modules.
__all__ = ["run_study", "StudySettings", "StudyData", "Workload", "STEPS", "SCHEDULES", "DEFAULT_MODELS",
           "load_entry_point", "load_data", "load_model", "fashion_mnist", "load_architecture", "SHIPPED",
           "PTQ_SCHEMES", "DEFAULT_PTQ_SCHEMES", "SKIPPABLE", "study_models"]
