"""What a name says: the modality a folder, file or recording topic is named for (`Depth/`, `thermal.mkv`,
`/flir/thermal/image_raw`), and the one refusal of a name that says another modality than the images are read as."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from smmcl.errors import DatasetError


# Words in a folder, file or topic name that say which modality its images are: the one hint a name gives, where
# values alone cannot tell 8-bit depth from a thermal camera's 8-bit images. Whole words only, in any case and
# spelling (`Depth`, `depth_mm`, `DepthCam`, `thermal.mkv`, `/flir/thermal/image_raw`: trial 12 #36, #241).
KIND_WORDS = {"depth": "depth", "thermal": "thermal", "lwir": "thermal", "hha": "hha"}


def name_kind(name: object) -> Optional[str]:
    """The one modality the words of `name` say (`depth_mm` -> depth), or None (none, or two that disagree)."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", str(name))
    kinds = {KIND_WORDS[w.lower()] for w in words if w.lower() in KIND_WORDS}
    return kinds.pop() if len(kinds) == 1 else None


def folder_kind(folder: object) -> Optional[str]:
    """The modality a folder's (or file's) own name says its images are (`Depth/` -> depth), or None."""
    return name_kind(Path(str(folder)).name)


def check_folder_kind(folder: object, kind: str, against: str, remedy: str, what: Optional[str] = None,
                      topic: bool = False) -> None:
    """Refuse auxiliary images from a folder named for another modality than `kind`. `against` says whose kind
    that is ("data.aux_kind='depth'", "the model ... was trained on thermal images"), `remedy` what to do, `what`
    names the folder (default its path); `topic`: a recording's topic, judged by all its words. One rule for
    training, `data check`, eval, analysis, reports, predict, recordings and `data hha` (trial 11 #156, #212; trial 12
    #238, #241)."""
    named = name_kind(folder) if topic else folder_kind(folder)
    if named is not None and named != kind:
        raise DatasetError(f"{what or folder} names {named} images but {against}: {remedy}; if that folder holds "
                           f"{kind} images, give it another name")
