"""Segmentation over a recording (a ROS bag or a video, opened by `smmcl.recordings`): an overlay video with the
legend, label PNGs per frame (optional), and a per-frame CSV of times, latency and class fractions.

    out/overlay.mp4      every paired frame: the classes in colour on the brightened RGB, legend of all classes
    out/labels/NNNNNN.png  class ids per pixel (with `labels=True`), named by frame index
    out/frames.csv       index, time, aux_time, latency_ms, then one column per class: its share of the pixels
    out/summary.json     the recording (sources, units, alignment, pairing counts), frames, fps, latency

Units: the frames' auxiliary units come from the recording (`Frame.aux_units`); a depth model reads millimetres,
the unit `data.aux_max` counts in smmcl's depth datasets (README, "Your own RGB-D or RGB-T data"), so depth in
metres or in a RealSense's finer units is scaled into millimetres. An explicit `aux_scale` always wins.
"""

from __future__ import annotations

import csv
import io
import json
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from smmcl.data.modality import STREAM_FRAMES, RangeWatch, units_problem
from smmcl.deploy.predictor import Predictor
from smmcl.engine.predict import label_png, overlay_picture
from smmcl.errors import AuxUnitsWarning, DatasetError
from smmcl.files import atomic_path
from smmcl.outputs import Confirmer, claim_folder, record, writing
from smmcl.progress import track

RECORDING_FILES = ("overlay.mp4", "labels", "frames.csv", "summary.json")
MODEL_DEPTH_METRES_PER_UNIT = 0.001  # millimetres


def aux_scale_for(aux_units: str, aux_kind: str, aux_max: Optional[float], stated: bool = True) -> tuple[float, str]:
    """The factor that brings a recording's auxiliary values into a model's units, and how it was found; a
    `DatasetError` for units of length (depth) `stated` by the user for a model of another kind. A bag's units come
    from its encoding (mono16 is read as millimetres, as depth drivers mean it), which a 16-bit thermal camera
    shares: those are not stated, and are read as recorded."""
    from smmcl.recordings import metres_per_unit

    frame_mpu = metres_per_unit(aux_units)
    if frame_mpu is not None and aux_kind != "depth" and stated:
        # Units of length name depth, which a thermal or HHA model cannot read: taken "as recorded" the run went
        # through silently (trial 12 #180-181: `--aux-units mm` for a thermal model).
        raise DatasetError(f"auxiliary units {aux_units!r} are a length, so the stream holds depth, but the model was "
                           f"trained on {aux_kind} images, which hold no lengths: give it a recording of {aux_kind} "
                           f"images (--aux-units raw or unknown), or use a depth model; if these values are "
                           f"{aux_kind} after all, --aux-scale 1 reads them as recorded")
    if aux_kind != "depth" or frame_mpu is None or aux_max is None or aux_max <= 255:
        return 1.0, f"as recorded ({aux_units})"
    scale = frame_mpu / MODEL_DEPTH_METRES_PER_UNIT
    return scale, f"depth in {aux_units} x{scale:g} into millimetres (the model's data.aux_max={aux_max:g} counts mm)"


def predict_recording(predictor: Predictor, recording, out: str | Path, video: bool = True, labels: bool = False,
                      progress: bool = True, log: Callable[[str], None] = lambda _: None,
                      overwrite: bool = False) -> dict:
    """Segment every paired frame of `recording` (a `smmcl.recordings.Recording`) with `predictor` and write
    the files of the module docstring into `out` (claimed first: apart from the recording, new or empty, or
    holding an earlier such output and `overwrite`). Returns what summary.json holds."""
    from smmcl.recordings import VideoWriter

    # With overwrite, a new output replaces an earlier one whole (its labels/ too): two recordings never mix in one
    # folder. The auxiliary stream may be a folder or file of its own (a video with a depth folder); a bag's is a topic.
    inputs = [recording.path, *(p for p in (recording.aux_source,) if Path(p).exists())]
    with writing(Path(out), "recording", "--out", inputs=inputs, names=RECORDING_FILES, overwrite=overwrite) as out:
        log(recording.summary())
        interval = recording.pairing.rgb.median_interval
        fps = 1.0 / interval if interval else 10.0
        names = predictor.class_names
        every_class = list(range(predictor.num_classes))
        rows, latencies = [], []
        listed = None
        if labels:
            claim_folder(out / "labels", "labels", "--out", names=[f"{i:06d}.png" for i in range(len(recording))])
            listed = Confirmer(out / "labels")
        start = time.perf_counter()
        # The Predictor judges a stream's range after its first STREAM_FRAMES frames; a shorter recording is
        # judged whole at its end, as a folder is (trial 8 #145: an 8-frame bag in centimetres said nothing).
        near = RangeWatch(predictor.preprocessing.aux_max, predictor.aux_scale, predictor.preprocessing.aux_top)
        with (VideoWriter(out / "overlay.mp4", fps=fps) if video else _NoVideo()) as writer:
            for frame in track(recording, total=len(recording), desc="predict", unit="frame", enabled=progress):
                # A recording is a file, read like a folder of images: a frame in other units than the model's
                # is refused (the Predictor alone, on a live stream, only warns).
                problem = units_problem(frame.aux, predictor.preprocessing.aux_max, predictor.aux_scale,
                                        for_model=predictor.preprocessing.aux_kind or True)
                if problem is not None:
                    raise DatasetError(f"{frame.aux_source} frame {frame.index}: {problem}; the --aux-units or "
                                       f"--aux-scale given, or another model, may be what is wrong")
                near.see(frame.aux, f"{frame.aux_source} frame {frame.index}")
                t0 = time.perf_counter()
                predicted = predictor(frame.rgb, frame.aux)
                latencies.append(time.perf_counter() - t0)
                if video:
                    writer.write(np.asarray(overlay_picture(frame.rgb, predicted, predictor.palette, names,
                                                            legend_classes=every_class)))
                if listed is not None:
                    label_png(predicted, predictor.palette).save(out / "labels" / f"{frame.index:06d}.png")
                    listed.add(f"{frame.index:06d}.png")
                counts = np.bincount(predicted.reshape(-1).astype(np.int64), minlength=predictor.num_classes)
                rows.append([frame.index, f"{frame.time:.6f}", f"{frame.aux_time:.6f}", f"{1000 * latencies[-1]:.2f}",
                             *(f"{c / predicted.size:.5f}" for c in counts[: predictor.num_classes])])
        if video:  # listed once the writer has put it under its name, not before (trial 12 #87: a run refused at
            record(out, ["overlay.mp4"])  # its first frame said it kept an overlay.mp4 that never existed)
        seconds = time.perf_counter() - start
        small = near.problem(for_model=True, unit="frames") if near.count < STREAM_FRAMES else None
        if small is not None:
            scaled = "; the --aux-units or --aux-scale given, or another model, may be what is wrong" \
                if predictor.aux_scale != 1 else ""
            warnings.warn(f"{small}{scaled}; the predictions in {out} were made as given", AuxUnitsWarning,
                          stacklevel=3)
        text = io.StringIO()
        csv.writer(text).writerows([["index", "time", "aux_time", "latency_ms", *names], *rows])
        with atomic_path(out / "frames.csv") as tmp:
            tmp.write_text(text.getvalue())
        summary = {
            "recording": str(recording.path), "rgb": recording.rgb_source, "aux": recording.aux_source,
            "aux_units": recording.aux_units, "aux_scale": predictor.aux_scale, "alignment": recording.alignment,
            "pairing": recording.pairing.summary(), "frames": len(rows),
            "unpaired": {"rgb": len(recording.pairing.unpaired_rgb), "aux": len(recording.pairing.unpaired_aux)},
            "dropped": {"rgb": recording.pairing.rgb.dropped, "aux": recording.pairing.aux.dropped},
            "model": str(predictor.source), "backend": predictor.backend,
            "latency_ms_median": round(1000 * float(np.median(latencies)), 2) if latencies else None,
            "frames_per_second_end_to_end": round(len(rows) / seconds, 2) if seconds > 0 and rows else None,
            "video": str(out / "overlay.mp4") if video else None, "video_fps": round(fps, 3),
        }
        with atomic_path(out / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
        return summary


class _NoVideo:
    def __enter__(self) -> "_NoVideo":
        return self

    def __exit__(self, *exc) -> None:
        return None
