"""What a report shows about its runs: each run folder read as `smmcl train` left it, every run scored on
the reference run's test split with the project's evaluation, predictions for the picture grid, the
t-SNE figures `smmcl analyze features` may have left, and the environment the scores were computed in."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from smmcl.config import Config, load_config
from smmcl.data.classes import class_names, dataset_palette
from smmcl.data.dataset import RGBXDataset
from smmcl.engine.evaluate import evaluate
from smmcl.engine.inference import InferenceProtocol
from smmcl.engine.loading import check_dataset_classes, check_scored_data, load_trained
from smmcl.engine.metrics import confusion_matrix, segmentation_scores
from smmcl.engine.predict import model_device
from smmcl.engine.run_log import read_log
from smmcl.errors import CheckpointError, ConfigError
from smmcl.files import folder_holder
from smmcl.model_file import open_model_file

# The files of a finished run (see `smmcl.engine.run_dir.RUN_FILES`) that a report reads.
RUN_NEEDS = ("config.yaml", "log.jsonl", "model.safetensors")
# Where `smmcl analyze features --out` may have been pointed: a subfolder of the run, or the run itself.
FEATURE_PLACES = ("features", ".")


@dataclass
class Features:
    """A t-SNE figure of `smmcl analyze features` and its `features.json` (None when absent or unreadable)."""

    figure: Path
    numbers: Optional[dict]


@dataclass
class Run:
    """One run folder, and once scored: its scores (with the confusion matrix) and predictions."""

    name: str
    folder: Path
    cfg: Config
    config_text: str
    log: List[dict]
    weights: Path
    scores: dict = field(default_factory=dict)
    # Per grid image: H x W class ids and that image's mIoU (NaN when no scored class is in it).
    predictions: List[np.ndarray] = field(default_factory=list)
    image_miou: List[float] = field(default_factory=list)
    features: Optional[Features] = None
    device: str = ""

    @property
    def iterations(self) -> int:
        return max((int(row.get("step", 0)) for row in self.log if "loss" in row), default=0)


@dataclass
class ScoredSplit:
    """The images every run was scored on: the reference run's data, split and exclusions."""

    dataset: RGBXDataset
    split_name: str
    subset: Optional[str]
    class_names: List[str]
    excluded: List[int]
    palette: list


def open_run(folder: str | Path, name: str, overrides: Sequence[str] = ()) -> Run:
    """Read a run folder; a folder that is not a finished run is refused, naming what is missing."""
    folder = Path(folder)
    expected = f"expected a finished `smmcl train` run folder holding {', '.join(RUN_NEEDS)}"
    if not folder.is_dir():
        raise CheckpointError(f"run folder not found: {folder} ({expected})")
    missing = [n for n in RUN_NEEDS if not (folder / n).is_file()]
    if missing:
        hint = ""
        holder = folder_holder(folder)
        if holder is not None:
            hint = f"; smmcl is writing it now ({holder}): report on it when that training ends"
        elif "model.safetensors" in missing and any((folder / "checkpoints").glob("ckpt_*.pt")):
            # A killed run has checkpoints but no final weights: say how to finish it.
            hint = "; it has checkpoints but no final weights (not finished?): smmcl train CONFIG --resume auto"
        raise CheckpointError(f"{folder}: no {' and no '.join(missing)} ({expected}){hint}")
    cfg = load_config(folder / "config.yaml", overrides, dataset_meta=False)  # as trained: meta.json was applied then
    if overrides:  # scored elsewhere (data.root=...): that dataset's own description against the model's classes
        check_dataset_classes(open_model_file(folder / "model.safetensors"), cfg)  # its units: `score_run`
    log = read_log(folder / "log.jsonl")
    if not any("loss" in row for row in log):
        raise CheckpointError(f"{folder / 'log.jsonl'} holds no training rows ({expected})")
    return Run(name, folder, cfg, (folder / "config.yaml").read_text(), log, folder / "model.safetensors",
               features=find_features(folder))


def run_names(folders: Sequence[Path], names: Optional[Sequence[str]] = None) -> List[str]:
    """Given names, else folder names; two folders of one name (study seeds) get their parent's name too."""
    if names is not None:
        if len(names) != len(folders) or len(set(names)) != len(names):
            raise ConfigError(f"names: {len(folders)} distinct names are needed, one per run; got {list(names)}")
        return list(names)
    short = [Path(f).resolve().name for f in folders]
    if len(set(short)) == len(short):
        return short
    longer = ["/".join(Path(f).resolve().parts[-2:]) for f in folders]
    return longer if len(set(longer)) == len(longer) else [str(f) for f in folders]


def find_features(folder: Path) -> Optional[Features]:
    """The first t-SNE figure found in the run's `features/` subfolder or the run folder itself."""
    for place in FEATURE_PLACES:
        where = folder / place
        if (where / "tsne.png").is_file():
            numbers = None
            try:
                numbers = json.loads((where / "features.json").read_text())
            except (OSError, ValueError):
                pass  # the figure alone is still worth showing
            return Features(where / "tsne.png", numbers if isinstance(numbers, dict) else None)
    return None


def scored_split(ref: Run) -> ScoredSplit:
    """The reference run's eval split, class names (numbers when the config has none) and palette."""
    cfg, k = ref.cfg, ref.cfg.model.num_classes
    names = class_names(cfg)
    dataset = RGBXDataset(cfg.data, cfg.eval.split, k, train=False, subset=cfg.eval.subset)
    return ScoredSplit(dataset, cfg.eval.split, cfg.eval.subset, names, list(cfg.eval.exclude_classes),
                   dataset_palette(cfg.data.class_names, cfg.data.palette, k))


def check_comparable(runs: Sequence[Run]) -> None:
    """Runs compared class by class must predict the same classes under the same names, and read the same inputs:
    every run is scored on the reference's images, prepared by the reference's auxiliary scaling (trial 9 #143: a
    thermal model scored on depth images, a delta of -83 points without a word)."""
    ref = runs[0]

    def trained_dtype(run: Run) -> Optional[str]:
        return open_model_file(run.weights).preprocessing.aux_dtype if run.weights.is_file() else None

    for run in runs[1:]:
        for what, mine, theirs in (("model.num_classes", run.cfg.model.num_classes, ref.cfg.model.num_classes),
                                   ("data.class_names", list(run.cfg.data.class_names), list(ref.cfg.data.class_names)),
                                   ("eval.exclude_classes", list(run.cfg.eval.exclude_classes),
                                    list(ref.cfg.eval.exclude_classes)),
                                   ("data.aux_kind", run.cfg.data.aux_kind, ref.cfg.data.aux_kind),
                                   ("data.aux_max", run.cfg.data.aux_max, ref.cfg.data.aux_max),
                                   ("the auxiliary image type it was trained on", trained_dtype(run), trained_dtype(ref))):
            if mine != theirs:
                inputs = (" (every run is scored on the reference's images, read with its auxiliary scaling)"
                          if what.startswith(("data.aux", "the aux")) else "")
                raise ConfigError(f"{run.folder} cannot be compared with {ref.folder}: {what} is {mine} there "
                                  f"and {theirs} in the reference{inputs}")


def score_run(run: Run, split: ScoredSplit, num_images: int, device: Optional[str] = None, progress: bool = True) -> None:
    """Evaluate the run's weights on the split (`engine.evaluate`: scores and confusion matrix) under the
    run's own eval protocol, and predict the first `num_images` images for the picture grid."""
    k = len(split.class_names)
    file = open_model_file(run.weights)
    if file.num_classes != k:
        raise CheckpointError(f"{run.weights} predicts {file.num_classes} classes but the reference's dataset has {k}")
    # Eval's list of checks, of each run against the reference's images: its training range (trial 10 #207: a model
    # trained on centimetres scored on millimetres beside one trained on them), and whether it trained on them
    # (trial 15 RP10: test images byte for byte training images went unsaid). What a run owns was compared with the
    # reference's (`check_comparable`); its palette, which scores nothing, is its own.
    scored_data = replace(split.dataset.cfg, palette=run.cfg.data.palette)
    check_scored_data(file, replace(run.cfg, data=scored_data), split.split_name, split.subset,
                      where=f"the reference run's data ({split.dataset.cfg.root})")
    model = load_trained(run.cfg, file, device=device)
    protocol = InferenceProtocol.from_config(run.cfg)
    ignore = split.dataset.cfg.ignore_index
    # The reference's split, under the run's own protocol (check_comparable: the same classes and exclusions).
    run.scores = evaluate(model, run.cfg, split.split_name, split.subset, dataset=split.dataset, progress=progress)
    dev = model_device(model)
    run.device = str(dev)
    run.predictions, run.image_miou = [], []
    with torch.no_grad():
        for i in range(min(num_images, len(split.dataset))):
            sample = split.dataset[i]
            pred = protocol.apply(model, sample["rgb"][None].to(dev), sample["aux"][None].to(dev)).argmax(1)[0].cpu()
            label = torch.as_tensor(sample["label"])
            # The caption's per-image mIoU comes from the same metric functions as the split's scores.
            one = segmentation_scores(confusion_matrix(pred, label, k, ignore), split.excluded)
            run.predictions.append(pred.numpy().astype(np.uint8))
            run.image_miou.append(one["miou"])


def environment(devices: Sequence[str]) -> dict:
    """Versions and machine the scores were computed with (they are deterministic per machine, not across)."""
    import smmcl

    env = {"smmcl": smmcl.__version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__}
    try:
        import matplotlib

        env["matplotlib"] = matplotlib.__version__
    except ImportError:  # pragma: no cover - figures.py refuses first
        pass
    env.update({"device": ", ".join(sorted(set(devices))) or "-", "torch threads": str(torch.get_num_threads()),
                "platform": platform.platform()})
    if any(d.startswith("cuda") for d in devices) and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env
