"""The paper's numbers (:mod:`.paper`), our results beside them (:mod:`.tables`, :mod:`.compare`) and
their charts (:mod:`.charts`: the radar of Fig. 6, the gallery of Fig. 4)."""
