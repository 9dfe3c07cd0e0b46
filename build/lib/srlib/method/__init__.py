"""The paper's method, free of runs and files: the VE schedule and DSM loss (:mod:`.sde`), the score
U-Net (:mod:`.unet`), Algorithm 1 and the anomaly maps (:mod:`.restoration`), the metrics
(:mod:`.metrics`), the 2D toy manifolds with their exact score (:mod:`.toy`) and the reconstruction
baselines (:mod:`.baselines`). Imports nothing above it in srlib."""
