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


@pytest.fixture(params=["generic", "avx2", "avx512"])
def isa(request):
    """Runs a test once per kernel build; a build this CPU cannot run is skipped, saying why."""
    import lowbit
    from lowbit.threads import missing_isa_reason
    why = missing_isa_reason(request.param)
    if why:
        pytest.skip(f"isa {request.param!r} not tested: {why}")
    lowbit.set_kernel_isa(request.param)
    yield request.param
    lowbit.set_kernel_isa("auto")


TEST_DEVICE_VAR = "LOWBIT_TEST_DEVICE"


@pytest.fixture
def test_device():
    """The device the hook and training tests run on: $LOWBIT_TEST_DEVICE ("cpu" by
    default, "cuda" or "cuda:N" on a GPU machine), as a torch.device. Off the CPU the ops
    run lowbit's registered pure-PyTorch references. A device this machine lacks skips the
    test with the reason; a malformed value is a usage error, not a skip."""
    from lowbit.devices import DeviceUnavailableError, check_device
    name = os.environ.get(TEST_DEVICE_VAR, "cpu") or "cpu"
    try:
        return check_device(name, TEST_DEVICE_VAR, allow_meta=False)
    except DeviceUnavailableError as exc:
        pytest.skip(f"{TEST_DEVICE_VAR}={name}: {exc}")
    except (ValueError, TypeError) as exc:
        raise pytest.UsageError(str(exc)) from None
