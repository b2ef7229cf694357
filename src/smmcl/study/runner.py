"""`smmcl study`: variants x seeds, each a resumable training run plus an evaluation; a killed study continues.

    OUT/runs/<variant>/seed<k>/   train.out_dir of one run (config, log, checkpoints, weights) + scores.json
    OUT/runs/_pretrain/           the pretraining run, when the study has one
    OUT/results.json, results.md, results.png

A run whose `scores.json` holds the same config is done; one with checkpoints resumes from the newest; a
folder holding another config is refused, never overwritten. Runs go in seed order, so a stopped study
has whole seeds (complete pairs) first.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

from smmcl.config import Config, load_config, to_dict, to_yaml
from smmcl.data.synth import generate_dataset, other_dataset
from smmcl.engine.evaluate import evaluate
from smmcl.engine.run_dir import flatten
from smmcl.engine.trainer import Trainer
from smmcl.errors import ConfigError, SmmclError
from smmcl.files import atomic_path, folder_lock
from smmcl.losses import CONTRASTS
from smmcl.outputs import OWN_FILES, check_apart, check_claim, claim_folder, record as record_written
from smmcl.study.disclosure import non_paper_options
from smmcl.study.imports import check_import, import_runs
from smmcl.study.report import write_results
from smmcl.study.spec import StudySpec, SynthSpec, pretrain_config, read_study, variant_config


@dataclass
class RunTask:
    """One run of the study: what it is and its fully resolved config (a plain dict, to cross processes)."""

    variant: str
    seed: int
    run_dir: str
    config: dict
    split: str
    evaluate: bool = True


def config_difference(old: dict, new: dict) -> List[str]:
    """Dotted keys whose values differ between two config dicts."""
    a, b = flatten(old), flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


# What a study writes in its --out folder (each run folder under runs/ is claimed by its training run).
STUDY_FILES = ("results.json", "results.md", "results.png", "runs")


def check_synth(synth: SynthSpec) -> bool:
    """Refuse a `synth.root` that holds another dataset, or files smmcl did not write there (writing nothing);
    returns whether it already holds exactly the study's dataset."""
    root = Path(synth.root)
    changed = other_dataset(root, kind=synth.kind, num=synth.num, size=list(synth.size), seed=synth.seed,
                            test_fraction=synth.test_fraction, val_fraction=synth.val_fraction)
    if changed:
        raise ConfigError(f"{root} holds another dataset ({', '.join(changed)}); point synth.root elsewhere or remove "
                          f"the folder")
    if (root / "meta.json").is_file():
        return True
    check_claim(root, "dataset", "the study's synth.root")
    return False


def ensure_synth(synth: SynthSpec, log: Callable[[str], None] = print) -> None:
    """Generate the study's synthetic data unless `root` already holds exactly that dataset."""
    root = Path(synth.root)
    if check_synth(synth):
        return
    log(f"[study] generating {synth.num} {synth.kind} scenes of {synth.size[0]}x{synth.size[1]} in {root}")
    generate_dataset(synth.kind, root, synth.num, size=tuple(synth.size), seed=synth.seed, what="the study's synth.root",
                     test_fraction=synth.test_fraction, val_fraction=synth.val_fraction)


def _scores_path(run_dir: Path) -> Path:
    return run_dir / "scores.json"


def finished_scores(task: RunTask) -> Optional[dict]:
    """The saved scores of a run that already finished with this config, else None."""
    path = _scores_path(Path(task.run_dir))
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("config") == task.config:
            return saved
    return None


def finished_records(spec: StudySpec, tasks: List[RunTask]) -> Dict[str, Dict[int, dict]]:
    """Per variant, seed -> saved scores of the tasks already finished with their config."""
    records: Dict[str, Dict[int, dict]] = {v: {} for v in spec.variants}
    for t in tasks:
        if (done := finished_scores(t)) is not None:
            records[t.variant][t.seed] = done
    return records


def check_run_dir(task: RunTask) -> None:
    """Refuse a run folder that holds a run of another config (nothing of it is touched)."""
    run_dir = Path(task.run_dir)
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    cfg = load_config(task.config)
    if saved.read_text() == to_yaml(cfg):
        return
    old = to_dict(load_config(saved, dataset_meta=False))
    keys = config_difference(old, task.config)
    raise ConfigError(f"{run_dir} holds a run of another config ({', '.join(keys[:6]) or 'formatting'} differ); "
                      f"use another --out, or delete that folder to retrain it")


def execute(task: RunTask) -> dict:
    """Train (or resume, or skip when finished) one run, evaluate it and write its scores.json."""
    done = finished_scores(task)
    if done is not None:
        return done
    check_run_dir(task)
    cfg: Config = load_config(task.config)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, resume="auto")
    start = trainer.step
    trainer.run()
    record = {"variant": task.variant, "seed": task.seed, "iterations": trainer.plan.total_iters,
              "resumed_from": start, "train_seconds": round(time.perf_counter() - t0, 1),
              "summary": trainer.summary}
    if task.evaluate:
        record.update(evaluate(trainer.evaluation_model, cfg, task.split, cfg.eval.subset))
        record["split"] = f"{task.split}/{cfg.eval.subset}" if cfg.eval.subset else task.split
    record["config"] = task.config
    path = _scores_path(Path(task.run_dir))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    record_written(path.parent, [path.name])  # the run folder's manifest (smmcl.outputs) takes it as smmcl's
    return record


PARENT_POLL_SECONDS = 2.0


def _exit_when_orphaned(parent: int) -> None:
    # A pool worker outlives a killed study and would go on with the runs already queued to it; the
    # half-trained run resumes from its newest checkpoint when the study is started again.
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(threads: int, parent: Optional[int] = None) -> None:
    torch.set_num_threads(threads)
    if parent is not None:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def plan_study(spec: StudySpec, out: Path, origin: str = "study") -> tuple[Optional[RunTask], List[RunTask]]:
    """The pretraining task (or None) and every variant x seed task, seed by seed; all configs resolved now."""
    try:
        return _plan(spec, out)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def _plan(spec: StudySpec, out: Path) -> tuple[Optional[RunTask], List[RunTask]]:
    pre: Optional[RunTask] = None
    extra: List[str] = []
    if spec.pretrain is not None:
        pre_dir = out / "runs" / "_pretrain"
        pre_cfg = pretrain_config(spec, pre_dir)
        pre = RunTask("_pretrain", spec.pretrain.seed, str(pre_dir), to_dict(pre_cfg), pre_cfg.eval.split, evaluate=False)
        extra = [f"model.pretrained={pre_dir / 'model.safetensors'}", f"model.pretrained_parts={spec.pretrain.load}"]
    tasks = []
    for seed in spec.seeds:
        for variant in spec.variants:
            run_dir = out / "runs" / variant / f"seed{seed}"
            try:
                cfg = variant_config(spec, variant, seed, run_dir, extra)
            except ConfigError as exc:
                raise ConfigError(f"variant {variant}: {exc}") from None
            if cfg.loss.contrast not in CONTRASTS:
                raise ConfigError(f"variant {variant}: loss.contrast={cfg.loss.contrast!r}: unknown; valid: {', '.join(CONTRASTS)}")
            tasks.append(RunTask(variant, seed, str(run_dir), to_dict(cfg), spec.split or cfg.eval.split))
    return pre, tasks


def departures(spec: StudySpec, tasks: List[RunTask]) -> dict:
    """The study's departures from the paper's setting, from the resolved configs of its first seed."""
    first = {t.variant: load_config(t.config) for t in tasks if t.seed == tasks[0].seed}
    initialisation = None
    if spec.pretrain is not None:
        pre = pretrain_config(spec, Path(tasks[0].run_dir))
        loss = pre.loss
        objective = "CE" if not (loss.cm_weight or loss.vis_weight or loss.aux_weight) else f"{loss.contrast} + CE"
        length = f"{pre.train.max_iters} iterations" if pre.train.max_iters else f"{pre.train.epochs} epochs"
        source = f"{objective} pretraining ({length} on {Path(pre.data.root).name}, classes {pre.model.num_classes})"
        initialisation = (f"encoder branches from {source}, the rest from scratch" if spec.pretrain.load == "branches"
                          else f"the whole model (decoder too) from {source}")
    return non_paper_options(first[spec.reference], first, initialisation)


def report_study(spec: StudySpec, study_path: str, tasks: List[RunTask], out: Path,
                 log: Callable[[str], None] = print) -> dict:
    """Write the results of the finished runs among `tasks`, training nothing (a study still running, or stopped)."""
    records = finished_records(spec, tasks)
    if not any(records.values()):
        raise ConfigError(f"{study_path}: no run of this study has finished in {out}; nothing to report")
    out.mkdir(parents=True, exist_ok=True)
    results = write_results(spec, study_path, records, load_config(tasks[0].config), out, planned=len(tasks),
                            non_paper=departures(spec, tasks))
    log(f"[study] {results['runs_finished']} of {len(tasks)} runs finished; results: {out / 'results.md'}")
    return results


def _describe(record: dict) -> str:
    score = f"mIoU {100 * record['miou']:.2f}%" if "miou" in record else "trained"
    return f"{record['variant']} seed {record['seed']}: {score}"


def default_out(path: str | Path) -> Path:
    return Path("runs") / "studies" / Path(path).stem


def check_study(path: str | Path, out: str | Path | None = None, jobs: int = 1, threads: Optional[int] = None,
                imports: Sequence[str | Path] = ()) -> tuple:
    """What a study run refuses before it starts, checked alike by `--dry-run` (nothing written): `jobs` and
    `threads`, the study file, its `--out` folder, and `imports` (results of this same study). Returns the spec,
    the output folder and the planned tasks (pretraining, runs)."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    spec = read_study(path)
    out = Path(out) if out is not None else default_out(path)
    check_claim(out, "study", "--out", inputs=[path])
    for synth in (spec.synth, spec.pretrain.synth if spec.pretrain is not None else None):
        if synth is not None:
            check_synth(synth)
    pre, tasks = plan_study(spec, out, str(path))
    for task in ([pre] if pre is not None else []) + tasks:
        check_run_dir(task)  # a run folder of another config: refused by the dry run too (trial 9 #131)
        # A run folder inside its data, as the run itself refuses it (trial 18 T019: the dry run passed it).
        check_apart(task.config["train"]["out_dir"], [task.config["data"]["root"]], "train.out_dir")
    for source in imports:  # each run's config digest too: a dry run passes no import the run refuses (trial 10 #57)
        check_import(spec, tasks, source)
    return spec, out, pre, tasks


def describe_plan(path: str | Path, out: str | Path | None = None, jobs: int = 1, threads: Optional[int] = None,
                  imports: Sequence[str | Path] = ()) -> List[str]:
    """The runs a study would make, with their lengths and what each variant changes (nothing is run or written;
    refused as the run itself would be, `check_study`)."""
    spec, out, pre, tasks = check_study(path, out, jobs, threads, imports)
    lines = [f"study {path}: {len(spec.variants)} variants x {len(spec.seeds)} seeds = {len(tasks)} runs -> {out}"]
    if pre is not None:
        lines.append(f"  pretraining: {pre.config['train']['max_iters'] or pre.config['train']['epochs']} "
                     f"{'iterations' if pre.config['train']['max_iters'] else 'epochs'} on {pre.config['data']['root']}")
    for source in imports:
        taken = check_import(spec, tasks, source)
        lines.append(f"  imports from {source}: {len(taken)} finished runs" + (f" ({', '.join(taken)})" if taken else ""))
    ref = next(t for t in tasks if t.variant == spec.reference)
    for t in tasks[: len(spec.variants)]:
        length = f"{t.config['train']['max_iters']} iterations" if t.config["train"]["max_iters"] else f"{t.config['train']['epochs']} epochs"
        subset = t.config["eval"]["subset"]
        values = flatten(t.config)
        changed = [f"{k}={values.get(k)}" for k in config_difference(ref.config, t.config) if k not in ("name", "train.out_dir")]
        lines.append(f"  {t.variant:<16} {length}, scored on {t.split}{'/' + subset if subset else ''}; "
                     f"{'reference' if t.variant == spec.reference else 'vs reference: ' + (', '.join(changed) or 'nothing')}")
    cfg = load_config(ref.config)
    lines.append(f"  data {cfg.data.root} ({cfg.data.preset or 'no preset'}), model {cfg.model.backbone.name} "
                 f"{cfg.model.backbone.preset}, projector stage {cfg.model.projector.stage}, batch {cfg.train.batch_size}, "
                 f"crop {cfg.data.crop_size[0]}x{cfg.data.crop_size[1]}")
    return lines


def run_study(path: str | Path, out: str | Path | None = None, jobs: int = 1,
              log: Callable[[str], None] = print, report_only: bool = False, imports: Sequence[str | Path] = (),
              threads: Optional[int] = None) -> dict:
    """Run (or continue) a study; returns the results also written to OUT/results.json, which is rewritten
    after every finished run (so a long study can be committed run by run). With `report_only`, nothing is
    trained: the results are written from the runs already finished. `imports`: earlier results.json files of
    this study whose runs count as finished (`smmcl.study.imports`). `threads`: torch threads per job
    (default: the CPU cores shared out among the jobs)."""
    spec, out, pre, tasks = check_study(path, out, jobs, threads, imports)
    new = not out.exists()
    try:
        if report_only:
            _claim(out, path)
            for source in imports:
                import_runs(spec, tasks, source, log)
            return report_study(spec, str(path), tasks, out, log)
        # One study writing a folder at a time (its results files; every run also locks its own folder).
        check_claim(out, "study", "--out", inputs=[path])  # before the lock: a refused folder is left as it was
        with folder_lock(out, "--out"):
            _claim(out, path)
            for source in imports:
                import_runs(spec, tasks, source, log)
            return _run_locked(spec, path, out, jobs, threads, pre, tasks, log)
    except SmmclError:
        if new and out.is_dir() and not any(p.name not in OWN_FILES and not p.is_dir() for p in out.rglob("*")):
            shutil.rmtree(out)  # refused before anything was written: leave no empty folder behind
        raise


def _claim(out: Path, path) -> None:
    """The study's folder claimed (`smmcl.outputs`), with its `runs/` made and listed at once: the run folders in it
    list their own files."""
    claim_folder(out, "study", "--out", inputs=[path], names=STUDY_FILES)
    (out / "runs").mkdir(exist_ok=True)
    record_written(out, ["runs"])


def _run_locked(spec: StudySpec, path, out: Path, jobs: int, threads: Optional[int], pre: Optional[RunTask],
                tasks: List[RunTask], log: Callable[[str], None]) -> dict:
    if spec.synth is not None:
        ensure_synth(spec.synth, log)
    if spec.pretrain is not None and spec.pretrain.synth is not None:
        ensure_synth(spec.pretrain.synth, log)
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    log(f"[study] {Path(path)}: {len(spec.variants)} variants x {len(spec.seeds)} seeds = {len(tasks)} runs"
        f"{' after a pretraining run' if pre else ''}, {jobs} at a time x {threads} threads -> {out}")
    if pre is not None:
        _init_worker(threads * jobs)
        log(f"[study] pretraining ({pre.run_dir})")
        execute(pre)
    records = finished_records(spec, tasks)
    todo = [t for t in tasks if t.seed not in records[t.variant]]
    if len(todo) < len(tasks):
        log(f"[study] {len(tasks) - len(todo)} runs already finished")
    for t in todo:  # before any training: a foreign run folder stops the study at once
        check_run_dir(t)
    count = len(tasks) - len(todo)
    cfg = load_config(tasks[0].config)
    non_paper = departures(spec, tasks)
    log(f"[study] {non_paper['headline']}")

    def finished(record: dict) -> None:
        nonlocal count
        records[record["variant"]][record["seed"]] = record
        count += 1
        write_results(spec, str(path), records, cfg, out, planned=len(tasks), non_paper=non_paper)
        log(f"[study] {count}/{len(tasks)} {_describe(record)}")

    if jobs == 1:
        before = torch.get_num_threads()
        _init_worker(threads)
        try:  # in-process: the caller's thread count comes back afterwards (a test suite runs on after it)
            for t in todo:
                finished(execute(t))
        finally:
            torch.set_num_threads(before)
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads, os.getpid())) as pool:
            futures = {pool.submit(execute, t): t for t in todo}
            for future in as_completed(futures):
                finished(future.result())
    results = write_results(spec, str(path), records, cfg, out, planned=len(tasks), non_paper=non_paper)
    log(f"[study] results: {out / 'results.md'}, {out / 'results.json'}, {out / 'results.png'}")
    return results
