"""srlib: anomaly detection by score-based perturbation resilience.

The library behind the SPR book (Shin et al., ICCV 2023). Submodules are
imported on demand so that ``python -m srlib.make`` runs on a bare Python
before torch is installed.
"""

__version__ = "0.1.0"
