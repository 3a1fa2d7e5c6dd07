import os
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

# Local runs explore new examples each time; CI (CI=true) replays a fixed derandomized
# set, so a landing never depends on the luck of the draw.
settings.register_profile("lowbit", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("lowbit"), derandomize=True,
                          print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "lowbit")


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(params=["generic", "avx2"])
def isa(request):
    """Runs a test once per kernel build; AVX2 is skipped on CPUs without it."""
    import lowbit
    from lowbit._native import C
    if request.param == "avx2" and not C.cpu_has_avx2():
        pytest.skip("CPU has no AVX2")
    lowbit.set_kernel_isa(request.param)
    yield request.param
    lowbit.set_kernel_isa("auto")
