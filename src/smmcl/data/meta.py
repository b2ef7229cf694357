"""A dataset's own description, `meta.json`: its home is `smmcl.config.meta`, since the config loader (the bottom
layer) applies it; the names stay importable from here."""

from smmcl.config.meta import meta_layer, read_meta  # noqa: F401
