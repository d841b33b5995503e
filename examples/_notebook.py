"""Run an example as a script or as a Jupyter notebook built from it with jupytext.

Every example is a plain Python file in jupytext's percent format (``# %%`` code cells,
``# %% [markdown]`` cells for the derivations). As a script it reads its options from the command
line; in a notebook there is no command line (the kernel's ``sys.argv`` is its own), so the options
take their defaults. Either way the environment variable ``FUNCTIONAL_DL_SMOKE=1`` asks for the short
run that ``--smoke`` gives, which is how the test suite executes the notebooks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

SMOKE_ENV = "FUNCTIONAL_DL_SMOKE"


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (IPython's kernel shell is active)."""
    ipython = sys.modules.get("IPython")  # never imported here: a script must not pay for IPython
    if ipython is None:
        return False
    return type(ipython.get_ipython()).__name__ == "ZMQInteractiveShell"


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line's options (the defaults in a notebook), with ``smoke`` also set by the env.

    ``parser`` must define ``--smoke``.
    """
    args = parser.parse_args([] if in_notebook() else None)
    if os.environ.get(SMOKE_ENV, "") not in ("", "0"):
        args.smoke = True
    return args


def show(path: Path | None) -> None:
    """Display a saved figure inline when running in a notebook; scripts have only the file."""
    if path is None or not in_notebook():
        return
    # IPython ships no type information; through import_module its API is plainly untyped.
    ipython_display = importlib.import_module("IPython.display")
    ipython_display.display(ipython_display.Image(filename=str(path)))
