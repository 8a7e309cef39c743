"""imagescan: will the programs in a container image start, as its own loader would decide."""

__version__ = "0.1.0"
