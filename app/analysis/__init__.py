"""Analyses beside app.scoring that need numpy: the key-driver decompositions of R²."""
