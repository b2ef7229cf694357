"""`smmcl study`: a tiny study end to end, resuming a killed one, refusing foreign runs; the statistics."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from smmcl.cli import main
from smmcl.errors import ConfigError
from smmcl.outputs import OutputError
from smmcl.study import mean_std, paired_difference, read_study, run_study
from smmcl.study.stats import verdict
from smmcl.study.runner import describe_plan

from support import ROOT, TINY_CONFIG


def _write_study(path: Path, data_root: Path, **changes) -> Path:
    study = {
        "description": "two variants, two seeds",
        "base": str(TINY_CONFIG),
        "reference": "base",
        "seeds": [0, 1],
        "overrides": ["train.max_iters=4", "train.checkpoint_every=2", "train.keep_checkpoints=3",
                      "train.tensorboard=false", "model.projector.stage=2", "train.test_every=2"],
        "variants": {"base": ["loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0"], "smmcl": []},
        "synth": {"kind": "indoor-rgbd", "root": str(data_root), "num": 16, "size": [64, 80], "seed": 2,
                  "test_fraction": 0.25, "val_fraction": 0.0},
    }
    study.update(changes)
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    path = _write_study(root / "tiny.yaml", root / "data")
    written = []  # runs_finished in results.json each time a run is reported finished

    def log(line: str) -> None:
        if re.match(r"\[study\] \d/4 ", line):
            written.append(json.loads((root / "out" / "results.json").read_text())["runs_finished"])

    results = run_study(path, out=root / "out", log=log)
    assert written == [1, 2, 3, 4]
    return path, root / "out", results


def test_study_writes_scores_per_run_and_paired_results(tiny_study):
    _, out, results = tiny_study
    scores = {(v, s): json.loads((out / "runs" / v / f"seed{s}" / "scores.json").read_text())
              for v in ("base", "smmcl") for s in (0, 1)}
    assert all(r["iterations"] == 4 and r["split"] == "test" for r in scores.values())
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    smmcl = saved["variants"]["smmcl"]
    deltas = [scores["smmcl", s]["miou"] - scores["base", s]["miou"] for s in (0, 1)]
    assert smmcl["delta_mean"] == pytest.approx(sum(deltas) / 2)
    assert smmcl["miou_mean"] == pytest.approx((scores["smmcl", 0]["miou"] + scores["smmcl", 1]["miou"]) / 2)
    lo, hi = smmcl["delta_ci95"]
    assert lo <= smmcl["delta_mean"] <= hi
    assert set(smmcl["per_class_delta"]) == set(saved["class_names"])
    assert smmcl["runs"]["0"]["contrast_zero_fraction"] is not None
    assert "delta_mean" not in saved["variants"]["base"]
    page = (out / "results.md").read_text()
    assert "| smmcl |" in page and "95% CI" in page and "results.png" in page
    assert (out / "results.png").stat().st_size > 10_000


def test_the_non_paper_options_are_named_wherever_the_numbers_stand(tiny_study, tmp_path, monkeypatch, capsys):
    """Computed from the resolved configs against the paper's setting; in results.json, on the page above and in
    the caption of the table, in the chart's title and in the command's summary."""
    from smmcl.study import report as report_module

    path, out, results = tiny_study
    non_paper = results["non_paper"]
    for expected in ("projectors on stage 2 (paper: stage 4)", "encoders trained from scratch (paper: ImageNet-pretrained)",
                     "64x80 crops (paper: 480x640)", "4 iterations (paper: 300-600 epochs)"):
        assert expected in non_paper["setting"] and expected in non_paper["headline"]
    page = (out / "results.md").read_text()
    assert page.count(non_paper["headline"][len("Not the paper's setting: "):]) >= 2
    titles = []
    monkeypatch.setattr(report_module, "plot_results", lambda results, path, title="": titles.append(title))
    assert main(["study", str(path), "--out", str(out), "--report"]) == 0
    assert titles and non_paper["headline"] in titles[0]
    printed = capsys.readouterr().out
    assert non_paper["headline"] in printed
    # A variant whose contrast never acted says so beside its verdict (trial 5 #116: "no clear difference, [+0, +0]").
    never = results["variants"]["smmcl"]["contrast_zero_fraction"] == 1
    assert ("its contrast was 0 on every step" in printed) == never


def test_the_test_split_trajectory_is_logged_and_summarised(tiny_study):
    """train.test_every: the reported split scored during training; its last point is the run's own score."""
    _, out, results = tiny_study
    for v in ("base", "smmcl"):
        for s in (0, 1):
            run = results["variants"][v]["runs"][s]
            assert [step for step, _ in run["test_miou"]] == [2, 4]
            assert run["test_miou"][-1][1] == pytest.approx(run["miou"], abs=1e-12)
    rows = results["variants"]["smmcl"]["trajectory"]
    assert [r["step"] for r in rows] == [2, 4] and all(r["n"] == 2 for r in rows)
    assert rows[-1]["mean"] == pytest.approx(results["variants"]["smmcl"]["miou_mean"])
    assert rows[-1]["delta_mean"] == pytest.approx(results["variants"]["smmcl"]["delta_mean"])
    assert "delta_mean" not in results["variants"]["base"]["trajectory"][0]
    page = (out / "results.md").read_text()
    assert "Test mIoU during training" in page and "| 2 |" in page and "| 4 |" in page


def test_a_killed_study_continues_where_it_stopped(tiny_study):
    path, out, results = tiny_study
    run = out / "runs" / "smmcl" / "seed1"
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/seed*/scores.json") if p.parent != run}
    # As if killed after the checkpoint at step 2 of its 4 steps.
    for p in (run / "scores.json", run / "model.safetensors", run / "checkpoints" / "ckpt_00000004.pt"):
        p.unlink()
    again = run_study(path, out=out, log=lambda _: None)
    record = json.loads((run / "scores.json").read_text())
    assert record["resumed_from"] == 2
    # Exact resume: the same final scores as the uninterrupted run; the other runs were not touched.
    assert again["variants"]["smmcl"]["runs"][1]["miou"] == results["variants"]["smmcl"]["runs"][1]["miou"]
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_changed_study_refuses_to_touch_the_old_runs(tiny_study, tmp_path):
    path, out, _ = tiny_study
    study = yaml.safe_load(path.read_text())
    changed = _write_study(tmp_path / "changed.yaml", Path(study["synth"]["root"]),
                           overrides=[*study["overrides"], "train.lr=0.01"])
    with pytest.raises(ConfigError, match=r"another config \(train.lr differ\)"):
        run_study(changed, out=out, log=lambda _: None)
    assert main(["study", str(changed), "--out", str(out), "--dry-run"]) == 2  # the dry run refuses it too (trial 9)


def test_dry_run_prints_the_plan_and_trains_nothing(tiny_study, tmp_path, capsys):
    path, _, _ = tiny_study
    assert main(["study", str(path), "--out", str(tmp_path / "x"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 variants x 2 seeds = 4 runs" in text and "loss.cm_weight=0.2" in text
    assert not (tmp_path / "x").exists()


def test_report_writes_the_finished_runs_only_and_trains_nothing(tiny_study, tmp_path, capsys):
    path, out, results = tiny_study
    scores = out / "runs" / "smmcl" / "seed1" / "scores.json"
    hidden = scores.with_name("hidden.json")
    scores.rename(hidden)  # as if that run were still training
    try:
        before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
        assert main(["study", str(path), "--out", str(out), "--report"]) == 0
        assert {p: p.stat().st_mtime_ns for p in before} == before and not scores.exists()
        saved = json.loads((out / "results.json").read_text())
        assert (saved["runs_finished"], saved["runs_planned"]) == (3, 4)
        smmcl = saved["variants"]["smmcl"]
        assert list(smmcl["runs"]) == ["0"] and smmcl["delta_ci95"] is None
        assert smmcl["miou_std"] is None  # one seed has no spread (trial 16 #133: 0.0 claimed one)
        assert smmcl["delta_mean"] == pytest.approx(results["variants"]["smmcl"]["runs"][0]["miou"]
                                                    - results["variants"]["base"]["runs"][0]["miou"])
        assert "**partial**: 3 of 4 runs" in (out / "results.md").read_text()
        printed = capsys.readouterr().out
        assert "too few seeds" in printed and re.search(r"smmcl +mIoU +[\d.]+ \(1 seed\)", printed)
    finally:
        hidden.rename(scores)
    with pytest.raises(ConfigError, match="no run of this study has finished"):
        run_study(path, out=tmp_path / "empty", report_only=True, log=lambda _: None)


def test_import_takes_an_earlier_results_json_and_trains_only_the_rest(tiny_study, tmp_path, capsys):
    path, out, results = tiny_study
    earlier = json.loads(json.dumps(results))  # as written to results.json
    del earlier["variants"]["smmcl"]["runs"]["1"]  # that run was not in the earlier results
    source = tmp_path / "earlier.json"
    source.write_text(json.dumps(earlier))
    again = tmp_path / "again"
    assert main(["study", str(path), "--out", str(again), "--import", str(source)]) == 0
    assert "imported 3 finished runs" in capsys.readouterr().out
    trained = [f"{p.parent.parent.name}/{p.parent.name}" for p in (again / "runs").rglob("model.safetensors")]
    assert trained == ["smmcl/seed1"]
    saved = json.loads((again / "results.json").read_text())
    for variant in ("base", "smmcl"):
        for seed, run in saved["variants"][variant]["runs"].items():
            assert run.pop("imported_from", None) == (None if (variant, seed) == ("smmcl", "1") else str(source))
            # Deterministic training: the retrained run matches its first training except for its time.
            run.pop("train_seconds")
            first = dict(results["variants"][variant]["runs"][int(seed)])
            first.pop("train_seconds")
            assert run == first
    assert "3 of the runs were imported from" in (again / "results.md").read_text()


def test_import_refuses_another_study_and_other_run_lengths(tiny_study, tmp_path):
    path, _, results = tiny_study
    earlier = json.loads(json.dumps(results))
    other = dict(earlier, variants={**earlier["variants"], "smmcl": {**earlier["variants"]["smmcl"], "overrides": ["loss.tau=0.2"]}})
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ConfigError, match=r"from another study \(variant smmcl's overrides differ\); nothing imported"):
        run_study(path, out=tmp_path / "a", imports=[tmp_path / "other.json"], log=lambda _: None)
    assert not (tmp_path / "a").exists()
    earlier["variants"]["base"]["runs"]["0"]["iterations"] = 9
    (tmp_path / "short.json").write_text(json.dumps(earlier))
    with pytest.raises(ConfigError, match="base seed 0 ran 9 iterations, this study runs 4"):
        run_study(path, out=tmp_path / "b", imports=[tmp_path / "short.json"], log=lambda _: None)
    with pytest.raises(ConfigError, match="not found"):
        run_study(path, out=tmp_path / "c", imports=[tmp_path / "missing.json"], log=lambda _: None)


def test_import_refuses_runs_of_a_base_config_whose_content_changed(tiny_study, tmp_path):
    """Same base path, same overrides, same length: only the resolved config tells an edited base apart."""
    path, _, results = tiny_study
    edited = tmp_path / "tiny.yaml"
    edited.write_text(f"base: {TINY_CONFIG}\nloss: {{temperature: 0.2}}\n")
    spec = yaml.safe_load(path.read_text())
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({**spec, "base": str(edited)}))
    earlier = json.loads(json.dumps(results))
    earlier["base"] = str(edited)
    assert all(r["config_digest"] for v in earlier["variants"].values() for r in v["runs"].values())
    (tmp_path / "earlier.json").write_text(json.dumps(earlier))
    with pytest.raises(ConfigError, match="base seed 0 was trained with another config than this study's run"):
        run_study(study, out=tmp_path / "a", imports=[tmp_path / "earlier.json"], log=lambda _: None)
    assert not (tmp_path / "a" / "runs").exists()
    # The dry run refuses it alike (trial 10 #57: it printed the plan, the run then refused).
    with pytest.raises(ConfigError, match="base seed 0 was trained with another config than this study's run"):
        describe_plan(study, tmp_path / "a", imports=[tmp_path / "earlier.json"])
    # The same config under another name (a copy, another machine's path) is the same study: the digests decide.
    same = tmp_path / "same.yaml"
    same.write_text(TINY_CONFIG.read_text())
    copied = tmp_path / "copied.yaml"
    copied.write_text(yaml.safe_dump({**spec, "base": str(same)}))
    original = tmp_path / "original.json"
    original.write_text(json.dumps(json.loads(json.dumps(results))))
    plan = describe_plan(copied, tmp_path / "b", imports=[original])
    assert any(line.startswith(f"  imports from {original}: 4 finished runs (base/seed0") for line in plan), plan
    again = run_study(copied, out=tmp_path / "b", imports=[original], log=lambda _: None)
    assert all(r.get("imported_from") for v in again["variants"].values() for r in v["runs"].values())


@pytest.mark.parametrize("study", sorted((ROOT / "studies").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_study_files_resolve(study, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = read_study(study)
    assert spec.reference in spec.variants and len(spec.seeds) >= 3
    assert main(["study", str(study.relative_to(ROOT)), "--dry-run"]) == 0


@pytest.mark.parametrize("change,message", [
    ({"reference": "nope"}, "reference 'nope' is not one of the variants"),
    ({"seeds": []}, "seeds must be distinct"),
    ({"variants": {"base": [], "bad name": []}}, "variant name 'bad name'"),
    ({"overrides": ["train.seed=3"]}, "sets train.seed"),
    ({"variants": {"base": [], "x": ["loss.bogus=1"]}}, "variant x: .*bogus"),
    ({"variants": {"base": [], "x": ["loss.contrast=simclr"]}}, r"expected one of \[.smmcl., .cross_modal_pixel., .region."),
    ({"colour": "red"}, "colour"),
])
def test_bad_study_files_are_named_errors(tmp_path, change, message):
    path = _write_study(tmp_path / "bad.yaml", tmp_path / "data", **change)
    with pytest.raises(ConfigError, match=message):
        run_study(path, out=tmp_path / "out", log=lambda _: None)


def test_mean_std_and_paired_difference_against_hand_computation():
    mean, std = mean_std([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3) and std == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    d = paired_difference({0: 3.0, 1: 5.0, 2: 7.0, 9: 100.0}, {0: 2.0, 1: 3.0, 2: 4.0, 5: 0.0})
    assert d["seeds"] == [0, 1, 2] and d["deltas"] == [1.0, 2.0, 3.0]
    assert d["delta_mean"] == pytest.approx(2.0) and d["delta_std"] == pytest.approx(1.0)
    # t(0.975, 2) = 4.302653 (tables): half width 4.302653 * 1 / sqrt(3)
    lo, hi = d["delta_ci95"]
    assert (hi - lo) / 2 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert paired_difference({0: 1.0}, {0: 0.5})["delta_ci95"] is None
    assert [verdict(c) for c in ([0.1, 0.5], [-0.5, -0.1], [-0.1, 0.1], None)] == [
        "better", "worse", "no clear difference", "too few seeds"]


def test_the_retrieval_of_36_stands_beside_its_row(tmp_path):
    """A run's retrieval_top1 (logged by the [36] contrast) is averaged per variant and shown as its own column."""
    from smmcl.config import load_config
    from smmcl.study.report import write_results

    path = _write_study(tmp_path / "s.yaml", tmp_path / "data",
                        variants={"base": ["loss.cm_weight=0"], "pixel36": ["loss.contrast=cross_modal_pixel"]})
    spec = read_study(path)
    cfg = load_config(TINY_CONFIG)

    def record(miou, retrieval=None):
        summary = {"retrieval_top1": retrieval} if retrieval is not None else {}
        return {"miou": miou, "iou": [miou] * cfg.model.num_classes, "summary": summary, "split": "test", "num_images": 4}

    records = {"base": {0: record(0.5), 1: record(0.6)}, "pixel36": {0: record(0.5, 0.9), 1: record(0.62, 0.8)}}
    results = write_results(spec, str(path), records, cfg, tmp_path)
    assert results["variants"]["pixel36"]["retrieval_top1"] == pytest.approx(0.85)
    assert "retrieval_top1" not in results["variants"]["base"]
    page = (tmp_path / "results.md").read_text()
    assert "[36] positive retrieved top-1" in page
    row = next(line for line in page.splitlines() if line.startswith("| pixel36 |"))
    assert row.endswith("| 85.0% |")


def test_a_study_folder_in_use_is_refused(tmp_path):
    """Two studies into one --out: the second stops at once, naming the holder (the lock of smmcl.files)."""
    from smmcl.files import FolderBusyError, folder_lock

    path = _write_study(tmp_path / "s.yaml", tmp_path / "data")
    with folder_lock(tmp_path / "out", "--out"):
        with pytest.raises(FolderBusyError, match=r"out is being written by another smmcl process \(pid \d+ on "):
            run_study(path, out=tmp_path / "out", log=lambda _: None)
    assert main(["study", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0  # a plan writes nothing


def test_a_dry_run_refuses_a_study_folder_inside_its_data(tmp_path):
    """Trial 18 T019: `--dry-run` accepted an --out inside the dataset, which the real run refused."""
    data = tmp_path / "data"
    path = _write_study(tmp_path / "s.yaml", data)
    from smmcl.data.synth import generate_dataset

    generate_dataset("indoor-rgbd", data, 16, size=(64, 80), seed=2, test_fraction=0.25)
    with pytest.raises(OutputError, match=r"train.out_dir .*lies inside the input folder"):
        describe_plan(path, out=data / "study")
