"""What the chapters use to show things: figures (:mod:`.viz`), explorers with sliders
(:mod:`.widgets`) and the numbers a chapter states, recorded for its tests (:mod:`.records`)."""
