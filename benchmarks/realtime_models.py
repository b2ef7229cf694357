"""The models of `benchmarks/realtime.py`: MSCAN-T/S/B + LightHam trained briefly on the synthetic rooms, scored on
their test split, and exported to ONNX (fp32, and int8 where `smmcl export --calibration` accepts it) per frame size.

Everything is cached under runs/bench-realtime/models/<name>-<hash>/, the hash taken over every setting that
changes the weights, so a rerun trains nothing; cache.json there keeps the training time, the score and each
export's outcome (an int8 refusal included: calibrating MSCAN-B at 480x640 takes minutes)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from realtime_settings import CACHE, DECODER_CHANNELS, DEMO_CONFIG, size_name


def train_overrides(preset: str, iters: int, data_root: Path) -> list[str]:
    """The demo config turned into MSCAN-<preset> + LightHam, trained as Base (cross-entropy only: the demo's
    Base score is the bar goal (c) compares with, and the contrast adds training time without changing the
    deployed network), for `iters` iterations on the data at `data_root`."""
    return [
        f"model.backbone.preset={preset}", "model.backbone.embed_dims=null", "model.backbone.depths=null",
        "model.decoder.name=lightham", f"model.decoder.channels={DECODER_CHANNELS[preset]}",
        "loss.cm_weight=0", "loss.vis_weight=0", "loss.aux_weight=0",
        f"train.max_iters={iters}", "train.device=cpu", "train.tensorboard=false", f"data.root={data_root}",
    ]


def model_dir(preset: str, iters: int, data_meta: dict) -> Path:
    """runs/bench-realtime/models/mscan-<preset>-<iters>it-<hash>: the hash covers the config file, the overrides
    and the training data, so any change trains a new model beside the old one."""
    text = json.dumps({"config": DEMO_CONFIG.read_text(), "overrides": train_overrides(preset, iters, Path("DATA")),
                       "data": {k: data_meta.get(k) for k in ("kind", "num", "size", "seed", "test_fraction")}},
                      sort_keys=True)
    return CACHE / "models" / f"mscan-{preset.lower()}-{iters}it-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


class CachedModel:
    """One trained model's folder: train/ (the run), onnx/ (exports), cache.json (what was measured making them)."""

    def __init__(self, preset: str, iters: int, data_root: Path, log: Callable[[str], None] = print) -> None:
        self.preset, self.iters, self.data_root, self.log = preset, iters, data_root, log
        self.dir = model_dir(preset, iters, json.loads((data_root / "meta.json").read_text()))
        self.cache_file = self.dir / "cache.json"
        self.cache: dict[str, Any] = json.loads(self.cache_file.read_text()) if self.cache_file.is_file() else {}

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cache_file.write_text(json.dumps(self.cache, indent=2) + "\n")

    @property
    def weights(self) -> Path:
        return self.dir / "train" / "model.safetensors"

    def train(self) -> Path:
        """Train (or resume) unless the weights are there; the seconds per step go to cache.json."""
        import smmcl
        from smmcl.config import load_config

        if self.weights.is_file() and "train" in self.cache:
            return self.weights
        cfg = load_config(DEMO_CONFIG, [*train_overrides(self.preset, self.iters, self.data_root),
                                        f"name=realtime_mscan_{self.preset.lower()}", f"train.out_dir={self.dir / 'train'}"])
        self.log(f"  training MSCAN-{self.preset} + LightHam: {self.iters} iterations -> {self.dir / 'train'}")
        # An interrupted run resumes from its newest checkpoint (ckpt_<step>.pt): only the steps run now are timed.
        done = [int(p.stem.split("_")[-1]) for p in (self.dir / "train" / "checkpoints").glob("ckpt_*.pt")]
        t0 = time.perf_counter()
        result = smmcl.train(cfg, resume="auto")
        seconds = time.perf_counter() - t0
        if result["weights"] is None:
            raise RuntimeError(f"training MSCAN-{self.preset} stopped at step {result['step']} of {result['total_iters']}")
        steps = result["total_iters"] - max(done, default=0)
        self.cache["train"] = {"iterations": result["total_iters"], "seconds": round(seconds, 1),
                               "seconds_per_step": round(seconds / max(steps, 1), 3), "batch": cfg.train.batch_size,
                               "crop": list(cfg.data.crop_size), "loss": "cross-entropy only (Base)"}
        self._save()
        self.log(f"  trained in {seconds:.0f} s ({self.cache['train']['seconds_per_step']:.2f} s/step incl. data loading)")
        return self.weights

    def test_miou(self) -> float:
        """mIoU (void excluded, the demo's protocol) on the data's test split, by `smmcl.evaluate_checkpoint`."""
        import smmcl

        if "test" not in self.cache:
            t0 = time.perf_counter()
            scores = smmcl.evaluate_checkpoint(self.weights, progress=False)
            self.cache["test"] = {"miou": scores["miou"], "pixel_acc": scores["pixel_acc"],
                                  "seconds": round(time.perf_counter() - t0, 1)}
            self._save()
        return self.cache["test"]["miou"]

    def onnx(self, size) -> Path:
        """The fp32 export traced at `size` (dynamic axes: it runs at any size; traced and verified at this one)."""
        import smmcl

        out = self.dir / "onnx" / f"fp32-{size_name(size)}.onnx"
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            smmcl.export(self.weights, out, size=tuple(size), dynamic=True)
            self.cache[f"export/{size_name(size)}"] = {"seconds": round(time.perf_counter() - t0, 1)}
            self._save()
        return out

    def int8(self, size, calibration: Path) -> tuple[Path | None, str | None]:
        """The int8 export calibrated on `calibration` (scenes of this size): its path, or None and the reason
        `smmcl export` refused it (its numbers: agreement, mIoU, speed against fp32)."""
        import smmcl
        from smmcl.errors import SmmclError

        key = f"int8/{size_name(size)}/{calibration.name}"
        out = self.dir / "onnx" / f"int8-{size_name(size)}.onnx"
        if out.is_file() and key in self.cache and self.cache[key].get("refused") is None:
            return out, None
        if key in self.cache and self.cache[key].get("refused"):
            return None, self.cache[key]["refused"]
        out.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        # ONNX Runtime's quantiser logs a warning per tensor on the root logger (hundreds per model): not this
        # benchmark's output. The outcome is in the report or the refusal.
        logging.disable(logging.WARNING)
        try:
            report = smmcl.export(self.weights, out, size=tuple(size), dynamic=True, calibration=calibration,
                                  overwrite=True)  # this benchmark's own cache, stale when its entry is gone
            entry = {"refused": None, "report": str(report)}
        except SmmclError as exc:
            entry = {"refused": str(exc)}
        finally:
            logging.disable(logging.NOTSET)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        self.cache[key] = entry
        self._save()
        return (None, entry["refused"]) if entry["refused"] else (out, None)
