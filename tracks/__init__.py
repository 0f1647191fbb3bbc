"""Track geometry: the Track type, DeepRacer .npy import/export, validation, the catalogue,
the procedural generator and the racing line. Depends on numpy only (plus OpenCV for
pictures)."""
