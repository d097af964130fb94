"""spectragrid: reproducible grids of spectra and image classifiers."""

__version__ = "0.1.0"
