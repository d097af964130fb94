"""Spectral trunks: each family maps spectra (B, C, L) to a feature vector.

`spectragrid.train.models.REGISTRY` is the single place that names them; the modules
here only build networks and check their own parameter values.
"""
