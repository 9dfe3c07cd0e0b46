"""One training or evaluation run: configuration (:mod:`.config`), device and precision
(:mod:`.device`), EMA (:mod:`.ema`), checkpoints (:mod:`.checkpoint`), the trainer (:mod:`.train`),
evaluation (:mod:`.evaluate`) and the k sweep and gallery (:mod:`.sweeps`). Built on
:mod:`srlib.method` and :mod:`srlib.data`."""
