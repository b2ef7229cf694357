"""Built-in synthetic dark-scene datasets, written in the folder layout of the released datasets.

    OUT/RGB/<name>.png        8-bit RGB, a dark, noisy capture
    OUT/<aux>/<name>.png      Depth: 16-bit millimetres (0 = no return), or Thermal: 8-bit
    OUT/Label/<name>.png      8-bit class ids (LLRGBD-synthetic or MFNet classes)
    OUT/train.txt, test.txt   one name per line; the test split is the last `test_fraction` of the scenes
    OUT/val.txt               with `val_fraction` > 0: the scenes just before the test split
    OUT/meta.json             kind, size, seed, classes, palette, auxiliary folder and unit

Scene i is drawn from `np.random.default_rng([seed, i])` alone, so it does not depend on how many
scenes are generated, and the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from smmcl.data.classes import IGNORE_INDEX, LLRGBD_CLASSES, LLRGBD_PALETTE, MFNET_CLASSES, MFNET_PALETTE
from smmcl.data.io import write_image
from smmcl.data.synth import indoor, night
from smmcl.outputs import Confirmer, OutputError, claim_folder, read_manifest, record, writing
from smmcl.progress import track

__all__ = ["KINDS", "SceneKind", "generate_dataset", "get_kind", "other_dataset", "render_scene", "scene_name"]


@dataclass(frozen=True)
class SceneKind:
    """One kind of synthetic scene and how its files are written."""

    name: str
    description: str
    classes: Sequence[str]
    palette: Sequence[tuple[int, int, int]]
    aux_dir: str           # folder of the auxiliary modality, as in the released dataset
    aux_unit: str
    aux_max: int           # largest value the auxiliary image can hold in that unit
    render: Callable[[np.random.Generator, tuple[int, int]], tuple[np.ndarray, np.ndarray, np.ndarray]]


KINDS = {
    "indoor-rgbd": SceneKind(
        "indoor-rgbd", "low-light rooms, RGB + Kinect-like depth (LLRGBD-synthetic classes)",
        LLRGBD_CLASSES, LLRGBD_PALETTE, "Depth", "mm", indoor.MAX_RANGE_MM, indoor.render_scene),
    "indoor-rgbd-lit": SceneKind(
        "indoor-rgbd-lit", "the same rooms with a normal exposure, RGB + Kinect-like depth (LLRGBD-synthetic classes)",
        LLRGBD_CLASSES, LLRGBD_PALETTE, "Depth", "mm", indoor.MAX_RANGE_MM, indoor.render_lit_scene),
    "night-rgbt": SceneKind(
        "night-rgbt", "night streets, RGB + thermal (MFNet classes)",
        MFNET_CLASSES, MFNET_PALETTE, "Thermal", "8-bit", 255, night.render_scene),
}


def get_kind(kind: str) -> SceneKind:
    try:
        return KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown synthetic dataset kind '{kind}'; valid kinds: {', '.join(KINDS)}") from None


def scene_name(index: int) -> str:
    return f"scene_{index:05d}"


def render_scene(kind: str, seed: int, index: int, size: tuple[int, int] = (120, 160)):
    """Scene `index` of a dataset as arrays: (RGB uint8 (H, W, 3), auxiliary (H, W), labels uint8 (H, W))."""
    return get_kind(kind).render(np.random.default_rng([seed, index]), tuple(size))


def _check(num: int, size: Sequence[int], seed: int, test_fraction: float, val_fraction: float) -> tuple[int, int]:
    if not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"num must be a positive number of scenes, got {num!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if not 0.0 <= val_fraction < 1.0 or test_fraction + val_fraction >= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1) and leave training scenes beside test_fraction="
                         f"{test_fraction}, got {val_fraction!r}")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width), got {size!r}") from None
    if h < 16 or w < 16:
        raise ValueError(f"size {h}x{w}: height and width must be at least 16")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise ValueError(f"size {h}x{w}: height and width must be at most {MAX_SIDE} (a synthetic scene is rendered "
                         f"whole in memory)")
    return h, w


# A scene is rendered in float64 planes: 4096 x 4096 takes about 1.5 GB, far past what a dark-scene camera gives.
MAX_SIDE = 4096
# What makes a generated dataset the one asked for: the same values give byte-identical files.
DATASET_KEYS = ("kind", "num", "size", "seed", "test_fraction", "val_fraction")


def other_dataset(out: str | Path, **wanted) -> list:
    """The `DATASET_KEYS` in which the dataset an earlier synth wrote in `out` (its meta.json) differs from
    `wanted`, each as `key old -> new`; empty when there is none or it is the same."""
    path = Path(out) / "meta.json"
    if not path.is_file():
        return []
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    have = {k: (list(meta["size"]) if k == "size" and k in meta else meta.get(k, 0.0 if k == "val_fraction" else None))
            for k in DATASET_KEYS}
    want = {k: list(v) if k == "size" else v for k, v in wanted.items()}
    return [f"{k} {have[k]} -> {want[k]}" for k in DATASET_KEYS if k in want and have[k] != want[k]]


def _complete(out: Path, folders, names: list, lists: list) -> bool:
    """Whether `out` holds every file a synth of these values writes, each listed as written."""
    if not (out / "meta.json").is_file() or not all((out / name).is_file() for name in lists):
        return False
    for folder in folders:
        listed = set((read_manifest(folder) or {}).get("written", []))
        if any(f"{n}.png" not in listed or not (folder / f"{n}.png").is_file() for n in names):
            return False
    return True


def generate_dataset(kind: str, out_dir, num: int, size: tuple[int, int] = (120, 160), seed: int = 0,
                     test_fraction: float = 0.25, progress: bool = False, val_fraction: float = 0.0,
                     what: str = "--out", overwrite: bool = False) -> dict:
    """Write `num` scenes of `kind` under `out_dir`; returns a summary (also written as meta.json,
    without the timing) with the split sizes, class names and per-class pixel counts. `what`: how errors name
    `out_dir` (the option or key that gave it). A dataset an earlier synth wrote there with other values
    (`other_dataset`) is replaced only with `overwrite`; the same one is written again, byte for byte.

    The scenes are split in order: train, then validation (`val_fraction`, none by default), then test.
    """
    spec = get_kind(kind)
    h, w = _check(num, size, seed, test_fraction, val_fraction)
    out = Path(out_dir)
    folders = {"rgb": out / "RGB", "aux": out / spec.aux_dir, "label": out / "Label"}
    # Only a new or empty folder, or one an earlier synth wrote, whose dataset this one replaces (its scenes alone:
    # a folder holding anything else is refused). A user's dataset there is never touched.
    names = [scene_name(i) for i in range(num)]
    num_test = min(int(math.floor(num * test_fraction + 0.5)), num - 1)
    num_val = min(int(math.floor(num * val_fraction + 0.5)), num - num_test - 1)
    num_train = num - num_test - num_val
    # A split asked for gets a scene, or the command says why not (trial 16 #290: the val split was dropped unsaid).
    for flag, fraction, count in (("test", test_fraction, num_test), ("val", val_fraction, num_val)):
        if fraction > 0 and not count:
            raise ValueError(f"--{flag}-fraction {fraction:g} of {num} scenes gives no {flag} scene (train {num_train}, "
                             f"val {num_val}, test {num_test}; the train split keeps at least one): give more scenes "
                             f"(--num), or a fraction of 0 for no {flag} split")
    # Only what it writes: a user's val.txt stays; no test.txt for a test fraction of 0, as an empty list is no split
    # (trial 16 #294: `data check` called the empty list it wrote a problem).
    lists = ["train.txt", *(["test.txt"] if num_test else []), *(["val.txt"] if num_val else [])]
    ours = (read_manifest(out) or {}).get("kind") == "dataset" if out.is_dir() else False
    changed = ours and other_dataset(out, kind=spec.name, num=num, size=[h, w], seed=int(seed), test_fraction=test_fraction,
                            val_fraction=val_fraction)
    if changed and not overwrite:
        raise OutputError(f"{what} {out} holds another generated dataset ({', '.join(changed)}): --overwrite "
                          f"(overwrite=True) replaces it; or choose another folder. Nothing was changed")
    if ours and not changed and not overwrite and _complete(out, folders.values(), names, lists):
        # The same dataset, whole: nothing to write, and nothing rewritten (trial 9 #73: a label edited by hand was
        # silently generated again; an earlier output is replaced only with --overwrite).
        meta = json.loads((out / "meta.json").read_text())
        return {**meta, "out_dir": str(out), "seconds": 0.0, "already": True}
    with writing(out, "dataset", what, names=[*(f.name for f in folders.values()), *lists, "meta.json"],
                 overwrite=True):
        for folder in folders.values():
            claim_folder(folder, "scenes", what, names=[f"{name}.png" for name in names])
        start = time.perf_counter()
        pixels = np.zeros(len(spec.classes), np.int64)
        listed = {key: Confirmer(folder) for key, folder in folders.items()}
        for i in track(range(num), desc=f"synth {spec.name}", unit="scene", enabled=progress):
            rgb, aux, label = spec.render(np.random.default_rng([seed, i]), (h, w))
            for key, array in (("rgb", rgb), ("aux", aux), ("label", label)):
                write_image(folders[key] / f"{names[i]}.png", array)
                listed[key].add(f"{names[i]}.png")
            pixels += np.bincount(label.reshape(-1), minlength=len(spec.classes))[: len(spec.classes)]
        splits = {"train": names[:num_train], **({"test": names[num - num_test:]} if num_test else {})}
        if num_val:
            splits["val"] = names[num_train: num_train + num_val]
        for split, members in splits.items():
            (out / f"{split}.txt").write_text("".join(f"{n}\n" for n in members))
        record(out, [f"{split}.txt" for split in splits])
        meta = {
            "kind": spec.name,
            "description": spec.description,
            "num": num,
            "size": [h, w],
            "seed": int(seed),
            "test_fraction": test_fraction,
            "num_train": len(splits["train"]),
            "num_test": num_test,
            "num_val": num_val,
            "val_fraction": val_fraction,
            "class_names": list(spec.classes),
            "palette": [list(c) for c in spec.palette],
            "ignore_index": IGNORE_INDEX,
            "rgb_dir": "RGB",
            "aux_dir": spec.aux_dir,
            "label_dir": "Label",
            "aux_unit": spec.aux_unit,
            "aux_max": spec.aux_max,
            "class_pixels": dict(zip(spec.classes, pixels.tolist())),
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        return {**meta, "out_dir": str(out), "seconds": round(time.perf_counter() - start, 2)}
