"""Data-parallel training and hyperparameter sweeps across processes and machines.

Everything the library trains with is a pure, picklable function, so both are map-reduces that an
existing engine runs: :func:`fit` splits each batch's gradient among the workers of a Dask cluster
(``pip install functional_dl[distributed]``), and :func:`sweep` runs many independent ``fit`` runs
on any ``concurrent.futures.Executor`` (a ``ProcessPoolExecutor``, or Dask's
``client.get_executor()``). This package imports without Dask; only :func:`fit` needs it.
"""

from functional_dl.distributed.cluster import dask_executor, local_cluster
from functional_dl.distributed.data_parallel import FitOptions, check_picklable, fit, worker_addresses
from functional_dl.distributed.search import (
    HParam,
    Hparams,
    Sampler,
    SweepResult,
    Trial,
    TrialFn,
    choice,
    format_table,
    grid,
    log_uniform,
    random_search,
    sweep,
)

__all__ = [
    "FitOptions",
    "HParam",
    "Hparams",
    "Sampler",
    "SweepResult",
    "Trial",
    "TrialFn",
    "check_picklable",
    "choice",
    "dask_executor",
    "fit",
    "format_table",
    "grid",
    "local_cluster",
    "log_uniform",
    "random_search",
    "sweep",
    "worker_addresses",
]
