"""Gradients passed where the optimizer state is expected are a type error."""

import numpy as np

from functional_dl import optim

opt = optim.sgd(0.1)
grads = {"w": np.ones(2)}
state = opt.init(grads)
opt.update(grads, grads)  # E: expected "OptimizerState[object]"
