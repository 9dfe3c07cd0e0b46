"""One training or evaluation run: configurations (:mod:`.config`: ``TrainConfig``, ``EvalConfig``),
the run folder's file names (:mod:`.files`), device and precision (:mod:`.device`), EMA (:mod:`.ema`),
checkpoints (:mod:`.checkpoint`), the trainer (:mod:`.train`) and what makes it resumable
(:mod:`.resume`), the one path from images to anomaly maps (:mod:`.scoring`), evaluation
(:mod:`.evaluate`), maps as pictures (:mod:`.pictures`), the k sweep and gallery
(:mod:`.sweeps`), the book's shipped models (:mod:`.pretrained`: score models; :mod:`.autoencoder`: chapter 4's
baselines) and SPR against the reconstruction baselines (:mod:`.comparison`). Built on :mod:`srlib.method` and :mod:`srlib.data`."""
