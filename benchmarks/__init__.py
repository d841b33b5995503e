"""Speed and memory of functional_dl against PyTorch CPU and plain NumPy.

``python -m benchmarks`` runs every workload of :data:`benchmarks.registry.WORKLOADS`, each
framework in its own fresh process, and prints each as a ratio to PyTorch and to plain NumPy; see
``benchmarks/README.md``. Adding a workload is one :class:`~benchmarks.registry.Workload` entry.
"""
