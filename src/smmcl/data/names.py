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


def _words(name: object) -> list:
    """The words of a name, lower case: `DepthCam_raw` -> depth, cam, raw."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", str(name))]


def name_kind(name: object) -> Optional[str]:
    """The one modality the words of `name` say (`depth_mm` -> depth), or None (none, or two that disagree)."""
    kinds = {KIND_WORDS[w] for w in _words(name) if w in KIND_WORDS}
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
        # A recorded topic is renamed in the bag, not as a folder is (trial 14 #85).
        rename = (f"if that topic holds {kind} images, its name misleads: rename it in the bag" if topic else
                  f"if that folder holds {kind} images, give it another name")
        raise DatasetError(f"{what or folder} names {named} images but {against}: {remedy}; {rename}")


# Words that name colour images: a name holding one of them is an RGB folder, whatever else it says
# (`color_aligned_to_depth`).
RGB_WORDS = {"rgb", "color", "colour", "visible", "vis"}


def check_rgb_named(folder: object, remedy: str, what: Optional[str] = None) -> None:
    """Refuse RGB images from a folder (or video) whose own name says an auxiliary modality and no colour (a
    `Thermal/` folder or `thermal.mp4` given as the RGB ones): grey images pass as RGB, so only the name tells
    (trial 16 #102: the RGB and thermal videos swapped were predicted without a word). `what` names it."""
    name = Path(str(folder)).name
    named = folder_kind(name)
    if named is not None and not set(_words(name)) & RGB_WORDS:
        raise DatasetError(f"{what or folder} names {named} images, given as the RGB ones: {remedy}; if it holds "
                           f"colour images, give it another name")


# Words that name label images (class ids), which are never auxiliary images.
LABEL_WORDS = {"label", "labels", "gt", "groundtruth", "annotation", "annotations", "mask", "masks"}


def names_labels(name: object) -> bool:
    """Whether a folder's or file's own name says it holds labels (`Label/`, `gt_masks`)."""
    return any(w in LABEL_WORDS for w in _words(Path(str(name)).name))


def missing_folder_hint(root: Path, sub: str, cfg) -> str:
    """For a dataset folder without its auxiliary folder (`cfg`: its `DataConfig`): the folders beside it named for a modality, and the keys
    that read them (trial 11 #23: `Thermal/` there, `Depth/` expected)."""
    if sub != cfg.aux_dir or not root.is_dir():
        return ""
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and folder_kind(p) is not None)
    # Another modality's folder is for training on it, never for a model of this one (trial 16 #116: a depth model's
    # int8 calibration was told to set data.aux_kind=thermal).
    return "".join(f"; it has a '{name}' folder: set data.aux_dir={name}" if folder_kind(name) == cfg.aux_kind else
                   f"; it has a '{name}' folder: to train on its {folder_kind(name)} images set data.aux_dir={name} "
                   f"data.aux_kind={folder_kind(name)} (a model trained on {cfg.aux_kind} images cannot read them)"
                   for name in found[:2])
