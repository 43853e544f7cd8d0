"""Readers of the real datasets' published formats: SHD (HDF5), MSWC (opus clips + split CSVs), N-MNIST
(40-bit binary events)."""
