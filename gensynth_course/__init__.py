"""gensynth_course: the companion package of an open course on generative models."""

__version__ = "0.1.0"
