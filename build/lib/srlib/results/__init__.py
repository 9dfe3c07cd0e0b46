"""The paper's numbers (:mod:`.paper`) and our results beside them (:mod:`.tables`)."""
