"""Finished runs taken from an earlier `results.json` of the same study (`smmcl study --import`).

A study's run folders hold checkpoints of tens of MB each and are often not kept (a scratch disk, another
machine, a cluster that ran some of the seeds); its `results.json` is small and is what gets committed.
Importing writes a `scores.json` for every run that `results.json` holds and the run folder lacks, so the
study trains only the rest. Nothing is imported unless the earlier study is this one: same base config,
same overrides for every variant and the same number of iterations. Imported runs say so in
`results.json` (`imported_from`) and on the results page.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, List

from smmcl.errors import ConfigError
from smmcl.files import read_text
from smmcl.study.spec import StudySpec

# What `results.json` keeps of a run's training summary, under its name there -> its name in the summary.
_SUMMARY_KEYS = {"contrast_zero_fraction": "contrast_zero_fraction", "classes_per_step": "classes",
                 "rows_per_step": "rows", "grad_ratio": "grad_ratio", "grad_cos": "grad_cos", "warnings": "warnings",
                 "test_miou": "test_miou", "retrieval_top1": "retrieval_top1"}
_SCORE_KEYS = ("miou", "miou_all", "pixel_acc", "mean_acc", "iou", "iterations", "train_seconds")


# Keys that say where a run was trained, not what: another --out, data folder or machine keeps a result valid.
_PLACE_KEYS = (("train", "out_dir"), ("data", "root"), ("data", "num_workers"), ("train", "device"))


def config_digest(config: dict) -> str:
    """A digest of a run's resolved config (`results.json` keeps it per run), without the keys of where it ran and
    with only the file name of pretrained weights: an earlier run is imported only when it trained the same thing,
    so a base config whose content changed (same path, same overrides) is caught."""
    setting = json.loads(json.dumps(config))
    for section, key in _PLACE_KEYS:
        setting.get(section, {}).pop(key, None)
    model = setting.get("model", {})
    if model.get("pretrained"):
        model["pretrained"] = Path(model["pretrained"]).name
    text = json.dumps(setting, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"--import: {path} not found (expected a results.json written by `smmcl study`)")
    try:
        results = json.loads(read_text(path, "a results.json written by `smmcl study`"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--import: {path} is not JSON ({exc})") from None
    if not isinstance(results, dict) or not isinstance(results.get("variants"), dict):
        raise ConfigError(f"--import: {path} is not a study's results.json (no 'variants')")
    return results


def _check_same_study(spec: StudySpec, results: dict, path: Path) -> None:
    differ = []
    runs = [r for v in results["variants"].values() if isinstance(v, dict) for r in v.get("runs", {}).values()]
    digests = bool(runs) and all(isinstance(r, dict) and r.get("config_digest") for r in runs)
    # With each run's resolved config as a digest, those decide (a copy of the base config under another name is the
    # same study, trial 10 #56); an older results.json has only the base config's path to go by.
    if results.get("base") != spec.base and not digests:
        differ.append(f"base config {results.get('base')!r} vs {spec.base!r}")
    if list(results.get("overrides", [])) != list(spec.overrides):
        differ.append("the overrides for every variant")
    for name, entry in results["variants"].items():
        if name in spec.variants and list(entry.get("overrides", [])) != list(spec.variants[name]):
            differ.append(f"variant {name}'s overrides")
    if differ:
        raise ConfigError(f"--import: {path} is from another study ({'; '.join(differ)} differ); nothing imported")


def check_import(spec: StudySpec, tasks: list, path: str | Path) -> List[str]:
    """Refuse, before anything runs (the dry run too), an `--import` that is no results.json of this study or holds
    a run trained otherwise than this study's; returns the runs it would import (`variant/seed<k>`)."""
    return [f"{task.variant}/seed{task.seed}" for task, _, _ in _chosen(spec, tasks, Path(path), _read(Path(path)))]


def _chosen(spec: StudySpec, tasks: list, path: Path, results: dict) -> list:
    """The (task, entry, run folder) that `results` holds among `tasks` whose folders are empty, every one checked
    before any is written: a refusal imports nothing."""
    _check_same_study(spec, results, path)
    chosen = []
    for task in tasks:
        entry = results["variants"].get(task.variant, {}).get("runs", {}).get(str(task.seed))
        run_dir = Path(task.run_dir)
        if entry is None or (run_dir.is_dir() and any(run_dir.iterdir())):
            continue
        wanted = task.config["train"]["max_iters"]
        if entry.get("iterations") != wanted:
            raise ConfigError(f"--import: {path}: {task.variant} seed {task.seed} ran {entry.get('iterations')} "
                              f"iterations, this study runs {wanted}; nothing imported")
        if entry.get("config_digest") not in (None, config_digest(task.config)):
            raise ConfigError(f"--import: {path}: {task.variant} seed {task.seed} was trained with another config than "
                              f"this study's run (the base config's content changed since?); nothing imported")
        chosen.append((task, entry, run_dir))
    return chosen


def import_runs(spec: StudySpec, tasks: list, path: str | Path, log: Callable[[str], None] = print) -> List[str]:
    """Write `scores.json` for the runs among `tasks` that `path` holds and whose folders are empty;
    returns their names (`variant/seed<k>`). A run folder that already holds anything is left alone."""
    path = Path(path)
    results = _read(path)
    chosen = _chosen(spec, tasks, path, results)
    imported = []
    for task, entry, run_dir in chosen:
        record = {"variant": task.variant, "seed": task.seed, **{k: entry.get(k) for k in _SCORE_KEYS},
                  "summary": {mine: entry.get(theirs) for theirs, mine in _SUMMARY_KEYS.items()},
                  "split": results.get("split"), "num_images": results.get("num_images"),
                  "imported_from": str(path), "config": task.config}
        run_dir.mkdir(parents=True, exist_ok=True)
        target = run_dir / "scores.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, target)
        imported.append(f"{task.variant}/seed{task.seed}")
    log(f"[study] imported {len(imported)} finished runs from {path}" + (f": {', '.join(imported)}" if imported else ""))
    return imported
