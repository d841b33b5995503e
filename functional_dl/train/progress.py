"""Progress reporting for :func:`~functional_dl.train.fit`: a tqdm bar, plain lines, or nothing.

Reporting is the one side effect of training, kept out of the pure step and fold: ``fit`` calls a
:class:`Reporter` at the start and end of each epoch and after each batch.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any, Literal, Protocol

from functional_dl.errors import DomainError
from functional_dl.train.step import Logs

__all__ = ["Progress", "Reporter", "format_logs", "reporter"]

#: ``"auto"``: a tqdm bar when tqdm is installed, else lines; ``"bar"``, ``"lines"``, ``"none"``.
Progress = Literal["auto", "bar", "lines", "none"]


def format_logs(logs: Logs) -> str:
    """``"loss 0.1234  accuracy 0.9500"``.

    Example:
        >>> format_logs({"loss": 0.5, "acc": 1.0})
        'loss 0.5000  acc 1.0000'
    """
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items())


class Reporter(Protocol):
    """Receives training progress."""

    def start_epoch(self, epoch: int, last: int, n_batches: int) -> None: ...
    def batch(self, logs: Logs) -> None: ...
    def end_epoch(self, epoch: int, last: int, logs: Logs, seconds: float) -> None: ...


class _Quiet:
    def start_epoch(self, epoch: int, last: int, n_batches: int) -> None:
        pass

    def batch(self, logs: Logs) -> None:
        pass

    def end_epoch(self, epoch: int, last: int, logs: Logs, seconds: float) -> None:
        pass


class _Lines(_Quiet):
    def end_epoch(self, epoch: int, last: int, logs: Logs, seconds: float) -> None:
        print(f"epoch {epoch + 1}/{last}  {format_logs(logs)}  ({seconds:.2f}s)", flush=True)


class _Bar(_Lines):
    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._bar: Any = None

    def start_epoch(self, epoch: int, last: int, n_batches: int) -> None:
        self._bar = self._tqdm(
            total=n_batches, desc=f"epoch {epoch + 1}/{last}", leave=False, file=sys.stderr
        )

    def batch(self, logs: Logs) -> None:
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    def end_epoch(self, epoch: int, last: int, logs: Logs, seconds: float) -> None:
        self._bar.close()
        self._tqdm.write(f"epoch {epoch + 1}/{last}  {format_logs(logs)}  ({seconds:.2f}s)", file=sys.stdout)


def reporter(progress: Progress) -> Reporter:
    """The reporter for a ``progress`` setting (``"auto"`` picks tqdm when it is installed)."""
    if progress == "none":
        return _Quiet()
    if progress == "lines":
        return _Lines()
    if progress == "auto" and importlib.util.find_spec("tqdm") is None:
        return _Lines()
    if progress in ("auto", "bar"):
        return _Bar()
    raise DomainError("fit", f"progress must be 'auto', 'bar', 'lines' or 'none', got {progress!r}")
