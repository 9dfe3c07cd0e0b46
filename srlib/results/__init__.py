"""The paper's numbers (:mod:`.paper`), our results beside them (:mod:`.tables`, :mod:`.compare`),
chapter 7's comparison of the choices of k (:mod:`.kcompare`), the k-choice benchmark's measurement
(:mod:`.kchoice`), and the charts (:mod:`.charts`: the radar of Fig. 6, the gallery of Fig. 4)."""
