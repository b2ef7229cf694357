"""Cases measured on their own: one training step (`train`) or one inference pass (`infer`), each the median of
its timed calls after the warm-up."""

from __future__ import annotations

import time
from typing import Callable

import torch

from cases import IGNORE_INDEX, NUM_CLASSES, SMMCL_WEIGHT, Case, make_inputs
from onnx_candidate import onnx_model
from timing import current_rss_mb, summarize, time_calls, write_profile


def _model(case: Case) -> torch.nn.Module:
    from smmcl.models import build_model

    torch.manual_seed(case.seed)
    return build_model(case.model_spec)


def train_step(case: Case) -> tuple[Callable[[str], None], float]:
    """`step(loss)` for loss "base" | "smmcl": one call of `smmcl.engine.step.train_step` (forward, Eq. 7
    with CE [+ 0.2 x each SMMCL term], backward, AdamW step); and the setup seconds. Both losses share
    one model and optimizer, so they can be timed side by side."""
    from smmcl.config import LossConfig, TrainConfig
    from smmcl.engine.optim import build_optimizer
    from smmcl.models.compiled import prepare_model, to_channels_last
    from smmcl.engine.step import train_step as one_step
    from smmcl.losses import Objective, build_objective

    t_setup = time.perf_counter()
    model = prepare_model(_model(case).train(), channels_last=case.channels_last, compile=False)
    optimizer = build_optimizer(model, TrainConfig())  # the paper's AdamW groups (6e-5, wd 0.01 on weights)
    net = torch.compile(model) if case.compile else model
    weights = LossConfig(cm_weight=SMMCL_WEIGHT, vis_weight=SMMCL_WEIGHT, aux_weight=SMMCL_WEIGHT)
    objectives = {
        "base": Objective(None, {}, IGNORE_INDEX),  # Base never runs the projectors
        "smmcl": build_objective(weights, NUM_CLASSES, IGNORE_INDEX, model.encoder.projector_vis.project[-1].out_channels),
    }
    generator = torch.Generator().manual_seed(case.seed)
    rgb, aux, labels = make_inputs(case.batch, case.size, case.seed)
    rgb, aux = to_channels_last(rgb, case.channels_last), to_channels_last(aux, case.channels_last)

    def step(loss_kind: str) -> None:
        with torch.profiler.record_function(f"bench::step_{loss_kind}"):
            one_step(net, objectives[loss_kind], optimizer, rgb, aux, labels, lr=TrainConfig().lr,
                     precision=case.precision, generator=generator)

    return step, time.perf_counter() - t_setup


def run_train(case: Case) -> dict:
    """Median seconds of one training step of `case.loss`."""
    step, setup_s = train_step(case)

    def call() -> None:
        step(case.loss)

    rss_before = current_rss_mb()
    warm, times = time_calls(call, case.warmup, case.reps)
    out = summarize(case, warm, times, setup_s, rss_before)
    if case.profile:
        write_profile(call, case.profile, f"case {case.name}: training step")
    return out


def infer_call(case: Case) -> tuple[Callable[[], None], float]:
    """One inference pass `model(rgb, aux)` in eval mode under no_grad, and the setup seconds."""
    from smmcl.config import load_config
    from smmcl.engine.precision import autocast
    from smmcl.models.compiled import prepare_model, to_channels_last

    cpu = torch.device("cpu")
    t_setup = time.perf_counter()
    model = _model(case).eval()
    if case.path == "onnxruntime":
        model = onnx_model(model, load_config({"model": case.model_spec}), case.size, case.threads)
    else:
        model = prepare_model(model, channels_last=case.channels_last, compile=case.compile, freeze=True)
    rgb, aux, _ = make_inputs(case.batch, case.size, case.seed)
    rgb, aux = to_channels_last(rgb, case.channels_last), to_channels_last(aux, case.channels_last)

    def call() -> None:
        with torch.no_grad(), autocast(cpu, case.precision), torch.profiler.record_function("bench::forward"):
            model(rgb, aux)

    return call, time.perf_counter() - t_setup


def run_infer(case: Case) -> dict:
    """Median seconds of one inference pass."""
    call, setup_s = infer_call(case)
    rss_before = current_rss_mb()
    warm, times = time_calls(call, case.warmup, case.reps)
    out = summarize(case, warm, times, setup_s, rss_before)
    if case.profile:
        write_profile(call, case.profile, f"case {case.name}: inference", iters=2)
    return out
