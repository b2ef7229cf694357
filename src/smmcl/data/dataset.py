"""RGB-X folder dataset in the layouts of the released datasets (see `smmcl.config.presets`)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from smmcl.config import DataConfig
from smmcl.data.io import IMAGE_SUFFIXES, image_dtype, read_image, split_packed
from smmcl.data.photometric import PhotometricAugment, photometric_rng
from smmcl.data.label_maps import colour_count, flat_rgb_problem
from smmcl.data.modality import RangeWatch, check_aux, check_label, check_rgb, check_same_size
from smmcl.data.names import check_folder_kind, check_rgb_named, folder_kind, missing_folder_hint
from smmcl.data.transforms import TrainAugment, eval_transform, to_tensor_aux, to_tensor_rgb
from smmcl.errors import AuxUnitsWarning, DatasetError, InputWarning
from smmcl.files import read_text

SPLIT_LISTS = {"train": "train_list", "test": "test_list"}
# Training images whose auxiliary range is looked at before training (spread over the list; a few reads).
RANGE_SAMPLE = 16


def split_root(cfg: DataConfig, split: str) -> Path:
    """The folder holding a split's image folders: `root`, or `root/<split_dirs[split]>`."""
    root = Path(cfg.root)
    return root / cfg.split_dirs[split] if split in cfg.split_dirs else root


def split_list_path(cfg: DataConfig, split: str, subset: Optional[str] = None) -> Path:
    """The name list of a split (or of `<split>_<subset>.txt`): configured train/test lists, else `<split>.txt`."""
    name = getattr(cfg, SPLIT_LISTS[split]) if split in SPLIT_LISTS else f"{split}.txt"
    if subset is not None:
        name = f"{Path(name).stem}_{subset}{Path(name).suffix}"
    return split_root(cfg, split) / name


def name_of(line: str) -> str:
    """A sample name from a list line: the first field, without folders or extension.

    Released lists hold bare names (`00012N`) or paths (`RGB/12.jpg Label/12.png`).
    """
    first = line.split()[0]
    base = first.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if Path(base).suffix.lower() in IMAGE_SUFFIXES + (".npy",) else base


def check_list_paths(path: Path, number: int, line: str, folders: Sequence[Path]) -> None:
    """Refuse a list line whose paths are not the files read for its sample: a line is cut to its sample name and
    read from the dataset's folders, so `/elsewhere/RGB/a.png` read ROOT/RGB/a.png, another image, without a word
    (trial 12 #158-160). A path (from the list's folder, or absolute) to the sample's own file is taken, as released
    lists hold (`RGB/12.jpg Label/12.png`). `folders`: the RGB folder first (the first path), then the others."""
    name = name_of(line)
    for i, field in enumerate(line.split()):
        given = Path(field.replace("\\", "/"))
        if len(given.parts) < 2:
            continue
        where = path.parent / given  # an absolute path stays itself
        own = folders[:1] if i == 0 else folders
        if name_of(field) == name and where.parent.resolve() in {f.resolve() for f in own}:
            continue
        raise DatasetError(f"{path}, line {number}: {line.strip()!r} names the file {os.path.normpath(where)}, but a "
                           f"split list names samples, each read from {folders[0]} (and the folders beside it), so "
                           f"that file would not be read: write the sample name {name!r} on the line, with its image "
                           f"in {folders[0]}")


def read_name_list(path: Path, unique: bool = True, folders: Sequence[Path] = ()) -> list[str]:
    """The sample names of a list file; a name listed twice is refused unless not `unique` (`data check`, which
    reports every duplicate among its other findings). `folders`: as `check_list_paths`."""
    if not path.is_file():
        raise DatasetError(f"split list not found: {path} (expected one sample name per line)")
    names: list[str] = []
    lines: dict[str, int] = {}
    text = read_text(path, "a split list, one sample name per line")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [] if line.lstrip().startswith("#") else line.split()  # a comment line (# ...)
        if len(fields) > 1 and not all(Path(f).suffix.lower() in IMAGE_SUFFIXES + (".npy",) for f in fields):
            gap = "a tab" if "\t" in line.strip() else "a space"  # trial 15 L9: a tab was called a space
            raise DatasetError(f"{path}, line {number}: {line.strip()!r} has {gap} in it; a line holds one sample "
                               f"name, or image paths (RGB LABEL) separated by spaces or tabs, so a name with "
                               f"{gap} must be renamed, and other columns (a second name, a class) removed")
        if fields and folders:
            check_list_paths(path, number, line, folders)
        if fields:
            name = name_of(line)
            if unique and name in lines:
                # Listed twice, an image would count twice in a score (and weigh double in training) unseen.
                raise DatasetError(f"{path}, line {number}: {name!r} is listed already on line {lines[name]}; a "
                                   f"split lists each sample once")
            lines[name] = number
            names.append(name)
    if not names:
        raise DatasetError(f"split list {path} is empty")
    return names


def check_root(cfg: DataConfig) -> None:
    """A `DatasetError` when `data.root` is no folder, saying where a relative one was looked for."""
    if not Path(cfg.root).is_dir():
        where = "" if Path(cfg.root).is_absolute() else (f", {Path(cfg.root).absolute()}: a relative data.root is read "
                                                      f"from the current folder, not from the config file's or the "
                                                      f"model file's (give data.root=... to read it elsewhere)")
        raise DatasetError(f"dataset folder not found: data.root={cfg.root}{where}")


def split_names(cfg: DataConfig, split: str, subset: Optional[str] = None, unique: bool = True) -> list[str]:
    """Sample names of a split (and subset), from its list file; a split folder without a list gives all its images.
    `unique`: as `read_name_list`."""
    path = split_list_path(cfg, split)
    folders = [split_root(cfg, split) / d for d in (cfg.rgb_dir, cfg.aux_dir, cfg.label_dir)]
    if path.is_file():
        names = read_name_list(path, unique, folders)
    elif split in cfg.split_dirs and (split_root(cfg, split) / cfg.rgb_dir).is_dir():
        folder = split_root(cfg, split) / cfg.rgb_dir
        names = sorted(p.stem for p in folder.iterdir() if p.suffix == cfg.rgb_ext)
        if not names:
            raise DatasetError(f"split folder {folder} has no {cfg.rgb_ext} images and there is no list {path}")
    else:
        check_root(cfg)  # a missing dataset said as such, not as its missing list (trial 17 REL2)
        names = read_name_list(path)  # raises the "not found" error
    if subset is None:
        return names
    subset_list = split_list_path(cfg, split, subset)
    if subset_list.is_file():
        return read_name_list(subset_list, folders=folders)
    if subset not in cfg.subsets:
        known = ", ".join(sorted(cfg.subsets)) or "none configured"
        raise DatasetError(f"unknown subset {subset!r} of split {split!r} (no {subset_list}; data.subsets: {known})")
    chosen = [n for n in names if n.endswith(cfg.subsets[subset])]
    if not chosen:
        raise DatasetError(f"no sample of split {split!r} ends in {cfg.subsets[subset]!r} (subset {subset!r})")
    return chosen


@dataclass(frozen=True)
class SampleFiles:
    """The files of one sample; `aux` is None in the packed layout (auxiliary channels inside `rgb`)."""

    name: str
    rgb: Path
    aux: Optional[Path]
    label: Path


def sample_files(cfg: DataConfig, split: str, name: str) -> SampleFiles:
    root = split_root(cfg, split)
    aux = None if cfg.layout == "packed" else root / cfg.aux_dir / f"{name}{cfg.aux_ext}"
    return SampleFiles(name, root / cfg.rgb_dir / f"{name}{cfg.rgb_ext}", aux, root / cfg.label_dir / f"{name}{cfg.label_ext}")


def load_sample(files: SampleFiles, cfg: DataConfig, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoded arrays, each checked by its modality's rule (`smmcl.data.modality`): RGB H x W x 3 uint8,
    auxiliary H x W (x C), label H x W int64."""
    rgb = read_image(files.rgb)
    if files.aux is None:
        rgb, aux = split_packed(rgb, files.rgb)
    else:
        aux = read_image(files.aux)
    rgb = check_rgb(rgb, files.rgb)
    aux = check_aux(aux, files.aux or files.rgb, cfg.aux_max, kind=cfg.aux_kind)
    label = check_label(read_image(files.label, ids=True), files.label, num_classes, cfg.ignore_index, cfg.label_shift)
    for path, arr in ((files.aux or files.rgb, aux), (files.label, label)):
        check_same_size(rgb, files.rgb, arr, path)
    return rgb, aux, label


def aux_dtypes(cfg: DataConfig, split: str, names: Sequence[str]) -> dict:
    """The types `read_image` gives the auxiliary files of `names` (from their headers alone), each with its first
    file: `{"uint16": path, ...}`. Empty in the packed layout."""
    seen: dict = {}
    for name in names:
        path = sample_files(cfg, split, name).aux
        if path is not None and path.is_file():
            seen.setdefault(image_dtype(path), path)
    return seen


def missing_hint(path: Path, role: str) -> str:
    """For a missing sample file: the same name with another image suffix, when there is one, and the key that
    names the suffix (`data.aux_ext=.tiff`)."""
    if not path.parent.is_dir():
        return ""
    other = next((p for p in sorted(path.parent.glob(f"{path.stem}.*")) if p.suffix.lower() in IMAGE_SUFFIXES), None)
    if other is not None and role == "label" and other.suffix.lower() in (".jpg", ".jpeg"):
        # Following "set data.label_ext=.jpg" would only meet the refusal of lossy labels (trial 9 #29).
        return f" ({other.name} is there, but JPEG changes class ids at edges: save the labels as PNG)"
    return f" ({other.name} is there: set data.{role}_ext={other.suffix})" if other is not None else ""


def own_suffixes(cfg: DataConfig, split: str) -> list[str]:
    """Overrides (`data.rgb_ext=.jpg`) for the image suffix each of a split's folders holds where it holds none of
    the configured one but only one other: a folder read with a trained model's layout (int8 calibration, which
    takes no overrides) may store its images otherwise."""
    out = []
    for role in ("rgb", "aux", "label"):
        folder = split_root(cfg, split) / getattr(cfg, f"{role}_dir")
        if not folder.is_dir() or any(folder.glob(f"*{getattr(cfg, f'{role}_ext')}")):
            continue
        found = {p.suffix for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}
        if len(found) == 1:
            out.append(f"data.{role}_ext={found.pop()}")
    return out


def shared_with_train(cfg: DataConfig, split: str, names: Sequence[str]) -> list[str]:
    """The `names` of `split` the train list holds too where both read one folder (the flat layout): not held out."""
    if split == "train" or split_root(cfg, split) != split_root(cfg, "train"):
        return []
    try:
        train = set(split_names(cfg, "train", unique=False))
    except DatasetError:
        return []
    return sorted(set(names) & train)


def spread_sample(names: Sequence[str]) -> list:
    """RANGE_SAMPLE of `names`, spread over the list: what training judges a split by before it starts."""
    return list(names[::max(1, len(names) // RANGE_SAMPLE)][:RANGE_SAMPLE])


def sample_aux_range(cfg: DataConfig, split: str, names: Sequence[str], watch: RangeWatch) -> RangeWatch:
    """`watch` after the auxiliary images of `spread_sample(names)`, each by the one auxiliary rule (`aux_top`)."""
    for name in spread_sample(names):
        files = sample_files(cfg, split, name)
        raw = read_image(files.rgb if files.aux is None else files.aux)
        aux = split_packed(raw, files.rgb)[1] if files.aux is None else raw
        watch.see(check_aux(aux, files.aux or files.rgb, cfg.aux_max, kind=cfg.aux_kind), files.aux or files.rgb)
    return watch


def warn_flat_rgb(cfg: DataConfig, split: str, num_classes: int, names: Optional[Sequence[str]] = None,
                  subset: Optional[str] = None, consequence: str = "their scores mean nothing") -> None:
    """An `InputWarning` when the RGB images of `spread_sample(names)` (default: the split's or subset's) are label
    maps (`label_maps.colour_count`): predict's rule before training and eval (trial 12 #153-155). A split that cannot
    be listed, or a missing file, is left to the dataset, which refuses it in its own words."""
    if names is None:
        try:
            names = split_names(cfg, split, subset)
        except DatasetError:
            return
    sampled = [sample_files(cfg, split, n) for n in spread_sample(names)]
    flat = []
    for files in (f for f in sampled if f.rgb.is_file()):
        raw = read_image(files.rgb)
        count = colour_count(check_rgb(split_packed(raw, files.rgb)[0] if files.aux is None else raw, files.rgb),
                             num_classes + 1)
        if count is not None:
            flat.append((files.rgb, count))
    if flat:
        warnings.warn(f"{flat_rgb_problem(flat, len(sampled), f' sampled from the {split} split')} {consequence}",
                      InputWarning, stacklevel=3)


# Auxiliary folder names that say their modality, as data.aux_kind names it.
def check_aux_kind(cfg: DataConfig) -> None:
    """Refuse training (and `data check`) on folders named for another modality than `data.aux_kind` says (trial 6
    C263) or an RGB folder named for an auxiliary one: the kind decides augmentation and checks, and the model keeps it."""
    if cfg.layout != "packed":
        check_folder_kind(cfg.aux_dir, cfg.aux_kind, f"data.aux_kind={cfg.aux_kind!r}",
                          f"set data.aux_kind={folder_kind(cfg.aux_dir)} (it decides the auxiliary augmentation and "
                          f"the checks of its values)", what=f"data.aux_dir={cfg.aux_dir!r}")
        check_rgb_named(cfg.rgb_dir, "data.rgb_dir names the folder of colour images, data.aux_dir the auxiliary one",
                        what=f"data.rgb_dir={cfg.rgb_dir!r}")


class RGBXDataset(Dataset):
    """Samples are dicts: `rgb`, `aux` (3 x H x W, ImageNet-normalised), `label` (H x W int64), `name`.

    In training mode an index is a pair `(i, seed)`; the seed drives this sample's augmentation, so the
    same (epoch, position) always gives the same crop however many workers load it. With
    `data.photometric.enabled` (not the paper's) the raw training images are first given a darker or
    noisier look from a child stream of that seed (`smmcl.data.photometric`); evaluation never is.
    """

    def __init__(self, cfg: DataConfig, split: str, num_classes: int, train: bool = False, subset: Optional[str] = None):
        self.cfg = cfg
        self.split = split
        self.subset = subset
        self.num_classes = num_classes
        self.root = split_root(cfg, split)
        check_root(cfg)
        folders = (cfg.rgb_dir,) if cfg.layout == "packed" else (cfg.rgb_dir, cfg.aux_dir)
        for sub in (*folders, cfg.label_dir):
            if not (self.root / sub).is_dir():
                preset = f" (preset {cfg.preset})" if cfg.preset else ""
                raise DatasetError(f"dataset folder {self.root} has no '{sub}' folder{preset}; expected "
                                   f"{', '.join((*folders, cfg.label_dir))}{missing_folder_hint(self.root, sub, cfg)}")
        if train:
            check_aux_kind(cfg)
        self.names: List[str] = split_names(cfg, split, subset)
        # The one type of the auxiliary files when data.aux_max is unset (each then scaled by its type's maximum).
        self.aux_dtype: Optional[str] = None
        # Training: the largest auxiliary value of RANGE_SAMPLE of its images, which the model records (`aux_top`).
        self.aux_top: Optional[float] = None
        self._check_files_exist()
        if cfg.aux_max is None and cfg.layout != "packed":
            self._check_one_aux_dtype()
        if train and cfg.aux_max is not None:
            self._note_aux_range()
        if train:  # before training, as sample_aux_range (trial 12 #153: label maps as RGB trained without a word)
            warn_flat_rgb(cfg, split, num_classes, self.names,
                          consequence="a model trained on them learns nothing of photos")
            self._check_labelled(num_classes)
        self.augment = (
            TrainAugment(tuple(cfg.crop_size), tuple(cfg.scales), cfg.hflip, cfg.ignore_index) if train else None
        )
        self.photometric = (
            PhotometricAugment.from_config(cfg.photometric, cfg.aux_kind, cfg.aux_max)
            if train and cfg.photometric.enabled else None
        )
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _check_files_exist(self) -> None:
        """Every listed sample's files, when the split is opened (not at the first validation, after training)."""
        missing = [(path, role) for name in self.names for role, path in vars(sample_files(self.cfg, self.split, name)).items()
                   if isinstance(path, Path) and not path.is_file()]
        if missing:
            (first, role), more = missing[0], f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise DatasetError(f"missing file: {first}{missing_hint(first, role)}{more}, listed in the {self.split} "
                               f"split ({split_list_path(self.cfg, self.split, self.subset)})")

    def _check_one_aux_dtype(self) -> None:
        """Mixed auxiliary types with `aux_max` unset (each file scaled by its type's maximum) refused, from headers."""
        seen = aux_dtypes(self.cfg, self.split, self.names)
        self.aux_dtype = next(iter(seen), None)
        if len(seen) > 1:
            shown = ", ".join(f"{dtype} (e.g. {path})" for dtype, path in seen.items())
            raise DatasetError(f"{self.root / self.cfg.aux_dir}: mixed bit depths ({shown}) while data.aux_max is "
                               f"unset, so each file would be scaled by its own type's maximum and one value would mean "
                               f"different things: convert the files to one format, or set data.aux_max to their full "
                               f"scale (e.g. 10000 for millimetres up to 10 m)")

    def _check_labelled(self, num_classes: int) -> None:
        """On RANGE_SAMPLE label images: no class id (eval's rule; trial 17: a NaN loss), refused if they are the whole
        split; a crop larger than every image at its largest scale (trial 18 B047: crops 99% padding, unsaid)."""
        sampled = spread_sample(self.names)
        labels = [check_label(read_image(f.label, ids=True), f.label, num_classes, self.cfg.ignore_index,
                              self.cfg.label_shift) for f in (sample_files(self.cfg, self.split, n) for n in sampled)]
        (ch, cw), big = self.cfg.crop_size, max(self.cfg.scales)
        h, w = max(a.shape[0] for a in labels), max(a.shape[1] for a in labels)
        if ch > h * big or cw > w * big:
            warnings.warn(f"data.crop_size {ch}x{cw} is larger than the training images ({h}x{w} at most, x{big:g} at "
                          f"the largest of data.scales): each crop is mostly padding; set data.crop_size to at most "
                          f"{round(h * big)}x{round(w * big)}", InputWarning, stacklevel=3)
        if any((a != self.cfg.ignore_index).any() for a in labels):
            return
        whole = len(sampled) == len(self.names)
        said = (f"split {self.split!r} of {self.root}: no pixel of {'its' if whole else 'the'} {len(sampled)} label images"
                f"{'' if whole else ' sampled'} holds a class id; every one is the ignore index {self.cfg.ignore_index}, "
                f"so there is nothing to learn from (unlabelled images, or data.label_shift / ignore_index set wrongly?)")
        if whole:
            raise DatasetError(said)
        warnings.warn(said, InputWarning, stacklevel=3)

    def _note_aux_range(self) -> None:
        """An `AuxUnitsWarning` when the auxiliary values of RANGE_SAMPLE training images spread over the list say other
        units than `aux_max` counts, or no measurement at all (`modality.RangeWatch`), before training."""
        watch = sample_aux_range(self.cfg, self.split, self.names, RangeWatch(self.cfg.aux_max))
        self.aux_top = watch.top or None
        small = watch.problem(unit="training images sampled")
        if small is not None:
            warnings.warn(small, AuxUnitsWarning, stacklevel=3)

    def __len__(self) -> int:
        return len(self.names)

    def files(self, i: int) -> SampleFiles:
        return sample_files(self.cfg, self.split, self.names[i])

    def load_raw(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decoded, checked arrays of sample i: RGB H x W x 3 uint8, auxiliary, label H x W int64."""
        if i in self._cache:
            return self._cache[i]
        out = load_sample(self.files(i), self.cfg, self.num_classes)
        if self.cfg.cache:
            self._cache[i] = out
        return out

    def __getitem__(self, index: Any) -> dict[str, Any]:
        i, seed = index if isinstance(index, tuple) else (index, None)
        rgb_np, aux_np, label_np = self.load_raw(int(i))
        if self.photometric is not None:
            # Its own generator: the geometric draws below stay those of a run without it.
            rgb_np, aux_np = self.photometric(rgb_np, aux_np, photometric_rng(seed))
        rgb = to_tensor_rgb(rgb_np)
        aux = to_tensor_aux(aux_np, self.cfg.aux_max)
        label = torch.from_numpy(label_np)
        if self.augment is not None:
            rng = np.random.default_rng(seed)
            rgb, aux, label = self.augment(rgb, aux, label, rng)
        else:
            rgb, aux, label = eval_transform(rgb, aux, label)
        return {"rgb": rgb, "aux": aux, "label": label, "name": self.names[int(i)]}
