"""The paper's settings of the method, each written once, without torch.

:mod:`srlib.run.config` (which must not import torch, so that ``--help``
stays quick) and the torch modules of :mod:`srlib.method` both read them here.
"""

# The base of the variance-exploding schedule, sigma (Section 4.3; the authors' code's too).
PAPER_SIGMA = 25.0
# The perturbation time of the evaluation, k (Section 5.3; every category, every table).
PAPER_K = 1e-3
# The smallest training time (the authors' eps; sigma_k is then about 0.003) and how training draws k.
K_MIN = 1e-5
K_DRAWS = ("uniform", "log-uniform")
