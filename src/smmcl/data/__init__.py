"""Datasets (`dataset`), paired augmentation (`transforms`), image IO, class tables and the built-in synthetic scenes (`synth`)."""
