"""Using the trained models: the served model per target, batch scoring and the local page.

Scoring runs on onnxruntime alone (no torch): the exported files carry their
preprocessing, class names, channels and wavelength axes.
"""
