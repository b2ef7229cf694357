"""Measuring one model at one frame size over its bag, in a worker process (`realtime.py --worker JOB RESULT`).

1. Load every path's `smmcl.Predictor` and run its first frame, each under a watchdog (faulthandler): a path
   that hangs there (OpenVINO bf16 on depth-wise convs can) ends the process, the parent notes it from the
   progress file and starts the worker again without it, so a hang costs only that path's row.
2. Agreement: every path labels the decoded bag frames through the Predictor itself (not the video), compared
   pixel by pixel with fp32 eager's labels. This pass also warms every path up.
3. Rounds: in each round every path runs `smmcl.deploy.recording.predict_recording(predictor, recording, out,
   video=True)` over the whole bag in turn (decode, preprocessing, inference, overlay, H.264 encode, CSV); the
   order rotates per round so no path always runs first. Times from one round pair up: a busy second of the
   shared machine falls on one round of every path, not on one path.
"""

from __future__ import annotations

import csv
import faulthandler
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from realtime_settings import BASELINE, PATHS


class Progress:
    """A JSON line per event, flushed at once: what the parent reads when the worker dies in a hang."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)

    def __call__(self, event: str, path: str, **info: Any) -> None:
        self.file.write(json.dumps({"event": event, "path": path, **info}) + "\n")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def load_path(name: str, files: dict, threads: int, aux_scale: float):
    """The Predictor of path `name` (see realtime_settings.PATHS) on the CPU with `threads` threads."""
    from smmcl import Predictor

    spec = PATHS[name]
    protocol = None
    if spec["bf16_autocast"]:
        from smmcl.engine.inference import InferenceProtocol

        protocol = InferenceProtocol(precision="bf16")
    return Predictor(files[spec["file"]], device="cpu", threads=threads, protocol=protocol, aux_scale=aux_scale,
                     backend=spec["backend"], precision=spec["precision"])


def _latencies_ms(out: Path) -> list[float]:
    with open(out / "frames.csv", newline="") as f:
        return [float(row["latency_ms"]) for row in csv.DictReader(f)]


def measure(job: dict) -> dict:
    import torch

    from smmcl.deploy.recording import aux_scale_for, predict_recording
    from smmcl.errors import SmmclError
    from smmcl.model_file import open_model_file
    from smmcl.recordings import open_recording

    from smmcl.memory import keep_freed_memory

    keep_freed_memory()  # as the `smmcl` program does for `smmcl predict --bag`, which this measures
    threads = job["threads"]
    torch.set_num_threads(threads)
    progress = Progress(job["progress"])
    recording = open_recording(job["bag"])
    cfg = open_model_file(job["files"]["weights"]).require_config()
    # As `smmcl.predict_recording` does: the recording's depth units brought into the model's (16UC1 mm -> x1).
    aux_scale, _ = aux_scale_for(recording.aux_units, cfg.data.aux_kind, cfg.data.aux_max)
    frames = list(recording)
    result: dict[str, Any] = {"frames": len(frames), "aux_units": recording.aux_units, "aux_scale": aux_scale,
                              "alignment": recording.alignment, "paths": {}}
    predictors = {}
    for name in job["paths"]:
        entry = result["paths"][name] = {}
        if PATHS[name]["file"] not in job["files"]:
            entry["status"] = f"refused: {job['refusals'].get(name, 'no model file')}"
            continue
        progress("start", name)
        faulthandler.dump_traceback_later(job["probe_timeout"], exit=True)
        try:
            t0 = time.perf_counter()
            predictor = load_path(name, job["files"], threads, aux_scale)
            entry["load_s"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            predictor(frames[0].rgb, frames[0].aux)
            entry["first_call_s"] = round(time.perf_counter() - t0, 3)
            entry["status"] = "ok"
            predictors[name] = predictor
        except (SmmclError, ValueError) as exc:  # a refusal with its reason (Bf16HangRisk, Bf16Disagrees, ...)
            entry["status"] = f"refused: {_short(exc)}"
        except Exception as exc:  # noqa: BLE001 - any other failure is this path's row, not the run's end
            entry["status"] = f"error: {_short(exc)}"
        finally:
            faulthandler.cancel_dump_traceback_later()
        progress("end", name, status=entry["status"])
        print(f"    {PATHS[name]['label']}: " + (f"loaded in {entry['load_s']:.1f} s, first frame {entry['first_call_s']:.2f} s"
                                                 if entry["status"] == "ok" else entry["status"]), flush=True)
    if BASELINE not in predictors:
        return result

    # Agreement with fp32 eager on the decoded frames; the first full pass of each path is also its warm-up.
    t0 = time.perf_counter()
    reference = [predictors[BASELINE](f.rgb, f.aux) for f in frames]
    pixels = sum(r.size for r in reference)
    # fp32 eager's classes over the bag: an agreement is only telling when the frames hold more than one class.
    result["reference_class_pixels"] = np.bincount(np.concatenate([r.ravel() for r in reference]).astype(np.int64),
                                                   minlength=predictors[BASELINE].num_classes).tolist()
    for name, predictor in predictors.items():
        same = sum(int((predictor(f.rgb, f.aux) == r).sum()) for f, r in zip(frames, reference))
        result["paths"][name]["agreement"] = same / pixels
    print(f"    agreement with fp32 eager on {len(frames)} frames (and warm-up) in {time.perf_counter() - t0:.0f} s",
          flush=True)

    names = list(predictors)
    for entry in (result["paths"][n] for n in names):
        entry.update(seconds=[], latency_ms=[], summary_fps=[])
    with tempfile.TemporaryDirectory(prefix="smmcl-realtime-") as tmp:
        for r in range(job["rounds"]):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                out = Path(tmp) / f"{r}-{name}"
                t0 = time.perf_counter()
                summary = predict_recording(predictors[name], recording, out, video=True, progress=False)
                seconds = time.perf_counter() - t0
                entry = result["paths"][name]
                entry["seconds"].append(seconds)
                entry["latency_ms"].append(float(np.median(_latencies_ms(out))))
                entry["summary_fps"].append(summary["frames_per_second_end_to_end"])
                entry["video_bytes"] = (out / "overlay.mp4").stat().st_size
                if summary["frames"] != len(frames):
                    raise RuntimeError(f"{name}: predict_recording segmented {summary['frames']} of {len(frames)} frames")
                shutil.rmtree(out)
            progress("round", "", round=r + 1)
            print(f"    round {r + 1}/{job['rounds']}: " + ", ".join(
                f"{n} {result['paths'][n]['seconds'][-1]:.1f} s" for n in names), flush=True)
    return result


def worker_main(job_file: str, result_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    Path(result_file).write_text(json.dumps(measure(job)))
