"""Datasets made here: randman in-process, and offline look-alikes written in the real formats
(spoken_digits as SHD, spoken_keywords as MSWC, saccade_mnist as N-MNIST)."""
