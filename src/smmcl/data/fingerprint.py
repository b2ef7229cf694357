"""Which images a model was trained on, by content: a short digest of each training sample's RGB file, written into
the run's weights (`trained_on`), so that an evaluation on any folder can tell scores of images the model saw.

Names cannot tell: a dataset generated again with fewer scenes puts scenes trained on into its new test split under
the same names, and a copied folder keeps its images under new ones. Bytes can: a digest of the file's bytes finds
every byte-identical copy, whatever its name or folder (a re-encoded copy is another file, and is not found).
An 8-byte BLAKE2b digest per image keeps a 10,000-image training set under 200 KB of metadata; that 1,000 other
images share a digest with it by chance has odds of about 1000 x 10000 / 2^64, under one in a million million.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Iterable, Optional, Set

from smmcl.config import DataConfig
from smmcl.data.dataset import sample_files, split_names

DIGEST_BYTES = 8
_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """The hex BLAKE2b digest (DIGEST_BYTES) of a file's bytes."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def split_digests(cfg: DataConfig, split: str, subset: Optional[str] = None) -> Dict[str, str]:
    """name -> digest of its RGB file, for every sample of `split` (its list read as the dataset reads it)."""
    return {name: file_digest(sample_files(cfg, split, name).rgb) for name in split_names(cfg, split, subset)}


def encode(digests: Iterable[str]) -> str:
    """Digests as one metadata string (sorted, space-separated: the same set always gives the same file)."""
    return " ".join(sorted(set(digests)))


def decode(text: Optional[str]) -> Set[str]:
    return set(text.split()) if text else set()
