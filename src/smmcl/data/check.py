"""`smmcl data check`: read a whole dataset once and report every problem, each naming its file.

Every image passes its modality's rule (`smmcl.data.modality`), the one training, evaluation and prediction
apply, so a file the check passes is one they read, and one it flags they refuse in the same words. Per folder
it also lists the formats (dtype x channels) it found: a folder mixing bit depths (8- and 16-bit depth, say)
holds values that mean different things, and is flagged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from smmcl.config import DataConfig
from smmcl.data.dataset import (
    SPLIT_LISTS,
    check_aux_kind,
    missing_hint,
    sample_files,
    shared_with_train,
    split_list_path,
    split_names,
    split_root,
)
from smmcl.data.io import read_image, split_packed
from smmcl.data.names import missing_folder_hint
from smmcl.data.label_maps import colour_count, flat_rgb_problem
from smmcl.data.modality import RangeWatch, check_aux, check_label, check_rgb
from smmcl.errors import DatasetError
from smmcl.progress import track


@dataclass
class SplitSummary:
    count: int = 0
    sizes: Counter = field(default_factory=Counter)
    aux_formats: Counter = field(default_factory=Counter)
    subsets: Dict[str, int] = field(default_factory=dict)
    # RGB images read, and those (path, colours) with no more colours than classes, as label maps (trial 12 #153).
    rgb_read: int = 0
    flat: List[Tuple[Path, int]] = field(default_factory=list)


@dataclass
class CheckReport:
    """What `check_dataset` found: per-split counts and sizes, a label histogram, and all problems."""

    root: str
    num_classes: int
    class_names: List[str]
    ignore_index: int
    splits: Dict[str, SplitSummary] = field(default_factory=dict)
    # Pixels per class id; the last entry counts the ignore label.
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    problems: List[str] = field(default_factory=list)
    # What a reader of scores should know but may have meant (test samples also trained on: an overfitting check).
    notes: List[str] = field(default_factory=list)
    # Per folder (relative to root): decoded format ("uint16x1ch") -> files, and the first file of each format.
    folders: Dict[str, Counter] = field(default_factory=dict)
    first_of: Dict[Tuple[str, str], Path] = field(default_factory=dict)
    # The files counted in `folders`: each once, however many splits list it (trial 12 #1: 14 counted of 12 files).
    counted: set = field(default_factory=set)
    # The largest auxiliary value over every file, with its file: a dataset using a small part of its scale.
    aux_range: Optional[RangeWatch] = None
    # Stored label values (the ignore label aside) as read before any label_shift: their largest, and how many pixels
    # lie below the shift (read as ignore), of how many.
    stored_top: int = -1
    below_shift: int = 0
    stored_pixels: int = 0

    def count_format(self, path: Path, array: np.ndarray) -> None:
        """Count `path` under its folder and format, once: the val list may repeat test samples."""
        if path in self.counted:
            return
        self.counted.add(path)
        try:
            folder = str(path.parent.relative_to(self.root))
        except ValueError:
            folder = str(path.parent)
        fmt = image_format(array)
        self.folders.setdefault(folder, Counter())[fmt] += 1
        self.first_of.setdefault((folder, fmt), path)

    def flag_mixed_depths(self) -> None:
        """A problem for each folder whose files come in more than one dtype (bit depth)."""
        for folder, formats in self.folders.items():
            by_dtype: Counter = Counter()
            for fmt, n in formats.items():
                by_dtype[fmt.split("x")[0]] += n
            if len(by_dtype) > 1:
                counts = ", ".join(f"{dtype} in {n}" for dtype, n in by_dtype.most_common())
                rare = by_dtype.most_common()[-1][0]
                example = next(p for (f, fmt), p in self.first_of.items() if f == folder and fmt.split("x")[0] == rare)
                self.problems.append(f"{Path(self.root) / folder}: mixed bit depths ({counts} files; e.g. {example}): "
                                     f"one folder of one modality should hold one format, or its values mean different things")

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        """The report in plain JSON types (`smmcl data check --json`); sizes as "HxW": count,
        `label_histogram` as pixels per class id with the ignore label's count last."""
        return {
            "root": self.root, "ok": self.ok, "num_classes": self.num_classes, "class_names": list(self.class_names),
            "ignore_index": self.ignore_index,
            "splits": {name: {"count": s.count, "sizes": {f"{h}x{w}": n for (h, w), n in s.sizes.items()},
                              "aux_formats": dict(s.aux_formats), "subsets": dict(s.subsets)}
                       for name, s in self.splits.items()},
            "folders": {folder: dict(formats) for folder, formats in self.folders.items()},
            "label_histogram": [int(v) for v in self.histogram],
            "problems": list(self.problems),
            "notes": list(self.notes),
        }

    def format(self) -> str:
        lines = [f"dataset {self.root}"]
        lines.append(f"{'split':<12}{'images':>8}  sizes (WxH: count)      auxiliary")
        for name, s in self.splits.items():
            sizes = ", ".join(f"{w}x{h}: {n}" for (h, w), n in s.sizes.most_common(3)) or "-"
            aux = ", ".join(f"{k}" for k in s.aux_formats) or "-"
            lines.append(f"{name:<12}{s.count:>8}  {sizes:<24}{aux}")
            for sub, n in s.subsets.items():
                lines.append(f"{'  ' + name + '/' + sub:<14}{n:>6}")
        if self.folders:
            lines.append(f"{'folder':<12}{'files':>8}  formats (dtype x channels: count)")
            for folder, formats in self.folders.items():
                shown = ", ".join(f"{fmt}: {n}" for fmt, n in formats.most_common())
                mixed = "  <- mixed bit depths" if len({fmt.split("x")[0] for fmt in formats}) > 1 else ""
                lines.append(f"{folder:<12}{sum(formats.values()):>8}  {shown}{mixed}")
        total = int(self.histogram.sum())
        if total:
            lines.append("label histogram (pixels of the checked splits):")
            names = list(self.class_names) + [str(k) for k in range(len(self.class_names), self.num_classes)]
            for k in range(self.num_classes):
                lines.append(f"  {k:>3} {names[k]:<16}{int(self.histogram[k]):>14,} {100 * self.histogram[k] / total:6.2f}%")
            lines.append(f"  ignore ({self.ignore_index}){'':<9}{int(self.histogram[-1]):>14,} {100 * self.histogram[-1] / total:6.2f}%")
        lines.extend(f"note: {n}" for n in self.notes)
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines.extend(f"  {p}" for p in self.problems)
        else:
            lines.append("no problems found")
        return "\n".join(lines)


def discover_splits(cfg: DataConfig) -> List[str]:
    """train and test, plus every other `<name>.txt` list beside them (val, test_day, ...)."""
    found = ["train", "test"]
    for root in {split_root(cfg, s) for s in ("train", "test")}:
        if root.is_dir():
            for path in sorted(root.glob("*.txt")):
                taken = {Path(split_list_path(cfg, s)).name for s in found}
                if path.name not in taken and not any(path.stem.startswith(f"{s}_") for s in found):
                    found.append(path.stem)
    return found


def image_format(array: np.ndarray) -> str:
    """A decoded image's format as the report lists it: dtype x channels ("uint16x1ch")."""
    return f"{array.dtype}x{1 if array.ndim == 2 else array.shape[2]}ch"


def _absent_folders(cfg: DataConfig, split: str, report: CheckReport) -> frozenset:
    """The roles whose folder a split's dataset folder lacks, each reported once (not once per sample), with the
    folders beside it that may be meant (`names.missing_folder_hint`)."""
    root = split_root(cfg, split)
    roles = {"rgb": cfg.rgb_dir, "label": cfg.label_dir, **({} if cfg.layout == "packed" else {"aux": cfg.aux_dir})}
    absent = frozenset(role for role, sub in roles.items() if not (root / sub).is_dir())
    for role in sorted(absent):
        problem = f"{root}: no '{roles[role]}' folder ({role} images){missing_folder_hint(root, roles[role], cfg)}"
        if problem not in report.problems:
            report.problems.append(problem)
    return absent


def _check_sample(cfg: DataConfig, split: str, name: str, num_classes: int, summary: SplitSummary,
                  report: CheckReport, absent: frozenset = frozenset()) -> None:
    files = sample_files(cfg, split, name)
    problems = report.problems
    raw: Dict[str, np.ndarray] = {}
    paths = {"rgb": files.rgb, "label": files.label} if files.aux is None else {"rgb": files.rgb, "aux": files.aux, "label": files.label}
    for role, path in paths.items():
        if role in absent:
            continue
        if not path.is_file():
            problems.append(f"{path}: missing {role} file of sample {name!r}{missing_hint(path, role)}")
            continue
        try:
            raw[role] = read_image(path, ids=role == "label")
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        report.count_format(path, raw[role])
    if "rgb" in raw and files.aux is None:
        try:
            raw["rgb"], raw["aux"] = split_packed(raw["rgb"], files.rgb)
        except DatasetError as exc:
            problems.append(str(exc))
            del raw["rgb"]
    checked: Dict[str, np.ndarray] = {}
    rules = {"rgb": lambda a: check_rgb(a, files.rgb),
             "aux": lambda a: check_aux(a, files.aux or files.rgb, cfg.aux_max, kind=cfg.aux_kind),
             "label": lambda a: check_label(a, files.label, num_classes, cfg.ignore_index, cfg.label_shift)}
    for role, array in raw.items():
        try:
            checked[role] = rules[role](array)
        except DatasetError as exc:
            problems.append(str(exc))
    if "rgb" in checked:  # predict's rule of label maps given as photos, judged over the split (`check_dataset`)
        summary.rgb_read += 1
        colours = colour_count(checked["rgb"], num_classes + 1)
        if colours is not None:
            summary.flat.append((files.rgb, colours))
    if "aux" in raw:
        summary.aux_formats[image_format(raw["aux"])] += 1
        if "aux" in checked and report.aux_range is not None:
            report.aux_range.see(checked["aux"], files.aux or files.rgb)
    if "rgb" in raw:
        h, w = raw["rgb"].shape[:2]
        summary.sizes[(h, w)] += 1
        for role in ("aux", "label"):
            if role in raw and raw[role].shape[:2] != (h, w):
                other = files.aux if role == "aux" and files.aux else files.label
                problems.append(f"{other}: {raw[role].shape[1]}x{raw[role].shape[0]} but {files.rgb} is {w}x{h}")
    if "label" in checked and cfg.label_shift:
        stored = raw["label"][raw["label"] != cfg.ignore_index]
        if stored.size:
            report.stored_top = max(report.stored_top, int(stored.max()))
            report.below_shift += int(np.count_nonzero(stored < cfg.label_shift))
            report.stored_pixels += int(stored.size)
    if "label" in checked:
        label = checked["label"]
        ids = np.where(label == cfg.ignore_index, num_classes, label)
        report.histogram += np.bincount(ids.ravel(), minlength=num_classes + 1)[: num_classes + 1]


def check_dataset(cfg: DataConfig, num_classes: int, splits: Optional[Sequence[str]] = None,
                  progress: bool = True) -> CheckReport:
    """Read every sample of the splits (default: all lists found) and collect every problem."""
    report = CheckReport(str(cfg.root), num_classes, list(cfg.class_names), cfg.ignore_index,
                         histogram=np.zeros(num_classes + 1, np.int64), aux_range=RangeWatch(cfg.aux_max))
    if not Path(cfg.root).is_dir():
        report.problems.append(f"{cfg.root}: dataset folder not found")
        return report
    try:
        check_aux_kind(cfg)  # as training refuses it (trial 11 #212)
    except DatasetError as exc:
        report.problems.append(str(exc))
    listed: Dict[str, set] = {}
    for split in splits or ():
        # A split asked for by name that has no list is a mistake in the command, not a problem of the data
        # (trial 10 #176: exit 1 where eval's unknown --subset exits 2).
        if not split_list_path(cfg, split).is_file() and not (split_root(cfg, split) != Path(cfg.root)
                                                               and split_root(cfg, split).is_dir()):
            found = ", ".join(discover_splits(cfg)) or "none"
            raise DatasetError(f"--split {split}: {cfg.root} has no list {split_list_path(cfg, split).name} (its "
                               f"splits: {found})")
    for split in splits or discover_splits(cfg):
        try:
            names = split_names(cfg, split, unique=False)  # duplicates are reported below, with the rest
        except DatasetError as exc:
            if split == "test" and not splits and not split_list_path(cfg, split).exists():
                # A dataset to train on may have no test split (`data synth --test-fraction 0` writes none: trial 16
                # #294); what needs one is said.
                report.notes.append(f"{exc}: no test split, which eval scores by default (eval.split)")
            elif split in SPLIT_LISTS or splits:
                report.problems.append(str(exc))
            continue
        listed[split] = set(names)
        summary = report.splits.setdefault(split, SplitSummary(count=len(names)))
        for dup, n in Counter(names).items():
            if n > 1:
                report.problems.append(f"{split_list_path(cfg, split)}: {dup!r} listed {n} times")
        for sub in cfg.subsets:
            try:
                summary.subsets[sub] = len(split_names(cfg, split, sub))
            except DatasetError:
                pass
        absent = _absent_folders(cfg, split, report)
        for name in track(names, desc=f"check {split}", unit="img", enabled=progress):
            _check_sample(cfg, split, name, num_classes, summary, report, absent)
        if summary.flat:  # every RGB image a label map: the Label folder given as RGB; some: a few to look at
            said = flat_rgb_problem(summary.flat, summary.rgb_read, f" of the {split} split")
            if len(summary.flat) == summary.rgb_read:
                report.problems.append(f"{said} {split_root(cfg, split) / cfg.rgb_dir} should hold photos")
            else:
                report.notes.append(f"{said} look at those images: they are trained on and scored as photos")
    for split, names in listed.items():
        # One folder for both (the flat layout): a name in two lists is one image trained on and scored.
        shared = shared_with_train(cfg, split, sorted(names)) if "train" in listed else []
        if shared:
            report.notes.append(f"{split_list_path(cfg, split)}: {len(shared)} of its samples are in the train list "
                                f"too (e.g. {shared[0]!r}): their scores are not held out")
    report.flag_mixed_depths()
    shift = cfg.label_shift
    if shift and 0 <= report.stored_top < num_classes and report.below_shift:
        # Labels that fit the classes unshifted, read shifted: the lowest id becomes ignore and the top class empty
        # (trial 16 #334: "no problems found" with 30% of the labelled pixels lost).
        # A note: 1-based labels whose top class the splits happen to lack look the same.
        report.notes.append(
            f"data.label_shift={shift}, but the stored labels are 0..{report.stored_top}, which fit the {num_classes} "
            f"classes unshifted: shifted, {100 * report.below_shift / report.stored_pixels:.1f}% of the labelled "
            f"pixels (values below {shift}) are read as ignore and class {num_classes - 1} gets none; if the labels "
            f"count from 0, set data.label_shift=0")
    empty = [k for k in range(num_classes) if report.histogram.size and not report.histogram[k]]
    if report.histogram.size and report.histogram[-1] and not report.histogram[:num_classes].sum():
        # Eval and training refuse such labels (trial 17: "no problems found" of labels that were all 255).
        report.problems.append(f"no pixel of the label images checked holds a class id; every one is the ignore index "
                               f"{cfg.ignore_index}, so there is nothing to learn from or score (unlabelled images, or "
                               f"data.label_shift / data.ignore_index set wrongly?)")
    elif empty and report.histogram[:num_classes].sum():
        names = [f"{k} ({report.class_names[k]})" if k < len(report.class_names) else str(k) for k in empty]
        report.notes.append(f"{len(empty)} of the {num_classes} classes {'has' if len(empty) == 1 else 'have'} no labelled pixel in the splits checked "
                            f"({', '.join(names[:5])}{' ...' if len(names) > 5 else ''}): a model learns nothing of "
                            f"{'it' if len(empty) == 1 else 'them'}, and no score measures "
                            f"{'it' if len(empty) == 1 else 'them'}")
    small = report.aux_range.problem()
    if small is not None:  # within the scale, so no file is refused; but no scene reaches a tenth of it
        # A dataset with no auxiliary measurement anywhere is no two-modality dataset: a problem, not a note.
        (report.problems if report.aux_range.count and not report.aux_range.top else report.notes).append(small)
    return report
