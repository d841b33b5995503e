"""Plotting for the teaching examples: line charts saved to files, or nothing when matplotlib is absent.

Every example saves its figures into the directory given by ``--out`` (default ``outputs/``), and in a
notebook also shows them inline; with no matplotlib installed it prints its numbers only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _notebook import show


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def _save(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` (creating its directory), close it, and show it in a notebook."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    show(path)
    return path


def paired_styles(names: Sequence[str]) -> dict[str, str]:
    """Line formats giving ``"<name> (train)"`` and ``"<name> (test)"`` one colour, solid and dashed."""
    styles = {}
    for i, name in enumerate(names):
        styles[f"{name} (train)"] = f"C{i}-"
        styles[f"{name} (test)"] = f"C{i}--"
    return styles


def line_plot(
    path: Path,
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
    x: Sequence[float] | None = None,
    styles: Mapping[str, str] | None = None,
) -> Path | None:
    """Draw each named series as a line and save the figure to ``path``; ``None`` without matplotlib.

    Args:
        path: the image file to write (its directory is created).
        series: label -> y values.
        title: figure title.
        xlabel: x-axis label.
        ylabel: y-axis label.
        log_y: logarithmic y axis.
        x: shared x values (default 0, 1, 2, ...; or 1, 2, ... as given).
        styles: optional matplotlib format string per label (``"--"`` for test curves).
    """
    if not have_matplotlib():
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, ys in series.items():
        xs = list(x) if x is not None else list(range(len(ys)))
        ax.plot(xs[: len(ys)], list(ys), (styles or {}).get(label, "-"), label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def decision_boundaries(
    path: Path,
    x: npt.NDArray[np.floating[Any]],
    y: npt.NDArray[np.floating[Any]],
    grid: tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]],
    probabilities: Mapping[str, npt.NDArray[np.floating[Any]]],
    *,
    title: str,
) -> Path | None:
    """One panel per model: its predicted probability over the plane, the 0.5 contour, the points.

    Args:
        path: the image file to write (its directory is created).
        x: ``(n, 2)`` points to scatter.
        y: ``(n,)`` or ``(n, 1)`` 0/1 labels, the points' colours.
        grid: ``(xx, yy)`` from ``numpy.meshgrid``, each ``(rows, cols)``.
        probabilities: model name -> ``(rows, cols)`` probability of class 1 at the grid points.
        title: figure title.
    """
    if not have_matplotlib():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(probabilities), figsize=(4.2 * len(probabilities), 4), squeeze=False)
    for ax, (name, prob) in zip(axes[0], probabilities.items(), strict=True):
        ax.contourf(grid[0], grid[1], prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(grid[0], grid[1], prob, levels=[0.5], colors="k", linewidths=1.5)
        ax.scatter(x[:, 0], x[:, 1], c=np.asarray(y).ravel(), cmap="RdBu_r", edgecolors="k", s=25)
        ax.set_title(name)
    fig.suptitle(title)
    return _save(fig, path)
