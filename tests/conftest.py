"""Test-suite configuration: hypothesis profiles.

``ci`` (the default) keeps the suite fast on two cores; ``thorough`` (HYPOTHESIS_PROFILE=thorough)
runs ten times more examples. Numeric tests have no deadline: BLAS timing varies.
"""

from __future__ import annotations

import importlib.util
import os

# Tests use tiny matrices; multi-threaded BLAS only adds contention when pytest-xdist already runs
# one worker per core. Set before NumPy is first imported by any test module.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402  (after the thread settings)

settings.register_profile(
    "ci",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile(
    "thorough", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Type-checking fixtures are read by mypy, never imported or collected (some fail on purpose).
collect_ignore_glob = ["typing/fail/*.py", "typing/pass/*.py"]


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a finder that refuses the name (as tests/test_package.py's blocker does)
        return False


# The PyTorch reference modules import torch at module level; --doctest-modules would import them
# during collection, so without torch they are not collected (their tests skip on importorskip).
if not _installed("torch"):
    collect_ignore_glob.append("*/torch_refs.py")
