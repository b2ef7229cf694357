"""The typed experiment configuration: one dataclass per section, the defaults every config file starts from.

A config file may hold any subset of the sections below; everything it leaves out keeps the dataclass default
(`smmcl.config.loading` reads files, bases and overrides into these).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional

# The choices of `model.backbone.preset` (all backbones together; config.rules checks the name against the
# backbone) and of `data.preset`, spelled out for the type; a test keeps them equal to the tables in
# smmcl.config.presets. YAML reads `preset: 101` as a number: load_config turns it into "101" first.
BackbonePreset = Literal["auto", "T", "S", "B", "L", "B0", "B1", "B2", "B3", "B4", "B5",
                         "18", "34", "50", "101", "152"]
DatasetPreset = Literal["llrgbd", "mfnet", "mfnet-split", "nyudv2", "generic"]


@dataclass
class BackboneConfig:
    name: Literal["mscan", "mit", "resnet"] = "mscan"
    # A named preset fills every field below that is left as None: MSCAN T/S/B/L, MiT B0-B5,
    # ResNet 18/34/50/101/152; "auto" is the paper's choice (MSCAN-B, MiT-B2, ResNet-101);
    # null means no preset, every field set explicitly. The names per backbone are
    # smmcl.config.presets.BACKBONE_PRESETS; one of another backbone is refused at load (smmcl.config.rules).
    preset: Optional[BackbonePreset] = "auto"
    embed_dims: Optional[List[int]] = None
    depths: Optional[List[int]] = None
    mlp_ratios: Optional[List[float]] = None
    drop_path_rate: Optional[float] = None
    # MiT only.
    num_heads: Optional[List[int]] = None
    sr_ratios: Optional[List[int]] = None
    # ResNet only.
    block: Optional[Literal["basic", "bottleneck"]] = None


@dataclass
class DecoderConfig:
    # "auto" is the backbone's paper decoder (LightHam for MSCAN, MLP otherwise).
    name: Literal["auto", "lightham", "mlp"] = "auto"
    channels: int = 512
    dropout: float = 0.1
    # LightHam (Hamburger NMF) settings; ignored by the MLP head.
    ham_rank: int = 64
    ham_train_steps: int = 6
    ham_eval_steps: int = 7
    # Seed of the NMF bases drawn in eval mode, so evaluation is deterministic.
    ham_eval_seed: int = 0
    # GroupNorm after the Hamburger output conv (SegNeXt); the released SMMCL code has a biased conv
    # and no norm there, so its checkpoints need false.
    ham_out_norm: bool = True


@dataclass
class CrossModalConfig:
    # Eq. 1-2 scale on the exchanged terms: the paper writes 1, the released code uses 0.5.
    scale: float = 0.5


@dataclass
class ProjectorConfig:
    dim: int = 256
    # Encoder stage (1-4) whose output the projectors read, before that stage's cross-modal module.
    # The paper projects stage 4; an earlier stage gives a larger map (more classes per batch) and
    # is not the paper's method: report it as its own row.
    stage: int = 4


@dataclass
class ModelConfig:
    num_classes: int = 14
    # Normalisation layer injected into backbone, projectors and MLP decoder.
    norm: Literal["bn", "syncbn"] = "bn"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    cross_modal: CrossModalConfig = field(default_factory=CrossModalConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    # Weights to start training from: an ImageNet backbone file of the backbone's own release
    # (SegNeXt mscan_*.pth, SegFormer mit_b*.pth, torchvision resnet*.pth; loaded into both
    # branches), a released SMMCL checkpoint, or smmcl weights (.safetensors).
    pretrained: Optional[str] = None
    # What of `pretrained` to load: all (every part the file holds) or branches (the two encoder branches only;
    # cross-modal modules, fusion, projectors and decoder start as initialised, as from the paper's ImageNet
    # weights). An ImageNet backbone file holds the branches only either way.
    pretrained_parts: Literal["all", "branches"] = "all"


@dataclass
class PhotometricConfig:
    # Not in the paper (default off; the paper's configs leave it off): photometric augmentation for dark
    # scenes on the raw training images, before normalisation (smmcl/data/photometric.py,
    # docs/configuration.md). Ranges are [low, high], drawn per sample; multiplicative ones log-uniformly.
    enabled: bool = False
    # RGB: gain on the stored intensities, gamma (out = in ** gamma), shot noise (std at full scale,
    # Poisson) and read noise (std, fraction of full scale, Gaussian), then 8-bit requantisation.
    exposure: List[float] = field(default_factory=lambda: [0.5, 2.0])
    gamma: List[float] = field(default_factory=lambda: [0.8, 1.25])
    shot_noise: List[float] = field(default_factory=lambda: [0.0, 0.03])
    read_noise: List[float] = field(default_factory=lambda: [0.0, 0.01])
    # Depth and HHA: this fraction of pixels set to 0 (no measurement), as single pixels (hole size 1)
    # or blobs of about `aux_hole_size` pixels. Depth only: relative Gaussian noise (std).
    aux_holes: float = 0.0
    aux_hole_size: int = 1
    aux_noise: float = 0.0
    # Thermal only: gain range and offset range (a fraction of the value mapped to 1.0, data.aux_max).
    aux_gain: List[float] = field(default_factory=lambda: [1.0, 1.0])
    aux_offset: List[float] = field(default_factory=lambda: [0.0, 0.0])


@dataclass
class DataConfig:
    # A release's layout, label coding, classes and scoring (smmcl.config.presets.DATASET_PRESETS,
    # docs/configuration.md, "Data layout"), applied under every config file and override. Any case is read (MFNet -> mfnet).
    preset: Optional[DatasetPreset] = None
    root: str = "data/synth-indoor"
    # split: separate RGB / auxiliary / label folders; packed: RGB and auxiliary as the channels of one
    # image in `rgb_dir` (MFNet's 4-channel PNGs).
    layout: Literal["split", "packed"] = "split"
    rgb_dir: str = "RGB"
    aux_dir: str = "Depth"
    label_dir: str = "Label"
    rgb_ext: str = ".png"
    aux_ext: str = ".png"
    label_ext: str = ".png"
    train_list: str = "train.txt"
    test_list: str = "test.txt"
    # Raw auxiliary value mapped to 1.0 before normalisation; None = the file's dtype maximum.
    aux_max: Optional[float] = None
    class_names: List[str] = field(default_factory=list)
    # One RGB colour per class for pictures; empty: a generated palette.
    palette: List[List[int]] = field(default_factory=list)
    # How pictures and `data check` describe the auxiliary image.
    aux_kind: Literal["depth", "hha", "thermal"] = "depth"
    # Subtracted from stored label values; values that become negative are ignored (NYUDv2: 1).
    label_shift: int = 0
    # Per-split subfolder of `root` holding that split's folders and list (LLRGBD: train/, test/).
    split_dirs: Dict[str, str] = field(default_factory=dict)
    # Named subsets of a split chosen by the end of the sample name (MFNet: day -> D, night -> N);
    # a list file `<split>_<subset>.txt` takes precedence when present.
    subsets: Dict[str, str] = field(default_factory=dict)
    ignore_index: int = 255
    crop_size: List[int] = field(default_factory=lambda: [480, 640])
    scales: List[float] = field(default_factory=lambda: [0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    hflip: bool = True
    num_workers: int = 2
    # Keep decoded images in memory (small datasets, repeated epochs).
    cache: bool = False
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)


@dataclass
class LossConfig:
    # The auxiliary objective the weights apply to (smmcl.losses.CONTRASTS): smmcl (the paper; terms
    # cm, vis, aux) | cross_modal_pixel (Meyer et al. [36]; term cm) | region (Hu et al. [26]; vis, aux) |
    # region_released ([26] as its released code does it, on the decoder's features; term vis).
    contrast: Literal["smmcl", "cross_modal_pixel", "region", "region_released"] = "smmcl"
    cm_weight: float = 0.2
    vis_weight: float = 0.2
    aux_weight: float = 0.2
    temperature: float = 0.1
    cm_temperature: float = 0.1
    sampling: Literal["paired", "independent"] = "paired"
    min_views: int = 5
    max_views: int = 300
    max_total: int = 4800
    # Multi-GPU: sample per rank and contrast locally (the released code), or gather every rank's sampled
    # embeddings first (more negatives; gradients flow back to each rank's own embeddings).
    gather_embeddings: bool = False
    # region contrast [26]: regions kept per class in its memory (FIFO).
    region_memory: int = 256
    # region_released: its own temperature (the released code's 0.2; loss.temperature is not read) and the
    # length of its queue per class (the released code's 2975 is the Cityscapes train size; 300, the built-in
    # training set's).
    region_temperature: float = 0.2
    region_queue: int = 300
    # Not in the paper (default off): the contrastive weights are 0 before iteration `contrast_start`,
    # then ramp linearly to their value over `contrast_ramp` iterations.
    contrast_start: int = 0
    contrast_ramp: int = 0


@dataclass
class EMAConfig:
    # Not in the paper (default off): PyTorch's exponential moving average of the weights and BatchNorm
    # statistics (torch.optim.swa_utils.AveragedModel), updated after every optimizer step, kept in the
    # checkpoints and used for validation and model.safetensors (docs/configuration.md).
    enabled: bool = False
    # ema = decay x ema + (1 - decay) x weights at every step: it averages over about 1 / (1 - decay) steps
    # (0.9999: 10,000), so pick it well below the run's length.
    decay: float = 0.9999


@dataclass
class TrainConfig:
    epochs: int = 500
    # When set, overrides epochs as the length of the run in iterations.
    max_iters: Optional[int] = None
    batch_size: int = 16
    # Gradient accumulation: one iteration (optimizer step, lr-schedule step, log step) runs `accumulate`
    # forward/backward passes of `batch_size` each, so the effective batch is batch_size x accumulate
    # (batch_size is the global batch of one pass, split across the ranks). docs/configuration.md.
    accumulate: int = 1
    # The effective batch the published setting was trained with (the paper: 16, Sec. 4.1); `train --dry-run`
    # warns when batch_size x accumulate differs. Only checked, never used in training. The paper's dataset
    # presets (data.preset llrgbd, mfnet, mfnet-split, nyudv2) set it to 16; null: nothing stated.
    paper_batch: Optional[int] = None
    lr: float = 6e-5
    weight_decay: float = 0.01
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_epochs: float = 10.0
    poly_power: float = 0.9
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    out_dir: str = "runs/default"
    # Checkpoint every N iterations (0: at the end of every epoch) and always at the end.
    checkpoint_every: int = 0
    # The newest N training checkpoints are kept, older ones removed as new ones are written; 0 keeps every one.
    keep_checkpoints: int = 2
    log_every: int = 10
    # Every N iterations (0: never) also log the gradient norm that CE and the weighted contrastive
    # terms each put on the shared encoder, and their cosine (two extra backward passes on that step).
    grad_probe_every: int = 0
    # Show training progress (rank 0): a bar when stderr is a terminal, otherwise a plain line at each
    # tenth of the run (and at least once a minute); false (or the CLI's --quiet) shows none. Display only:
    # it changes nothing in the run, and may differ on resume.
    progress: bool = True
    # fp32 | bf16 | fp16 autocast (fp16 with loss scaling); the contrastive terms always run in fp32.
    # Evaluation and prediction use the same switches.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    compile: bool = False
    # Deterministic kernels for the whole process (torch.use_deterministic_algorithms, cuDNN autotuning off):
    # on CUDA two runs of one seed, and a resumed run and an uninterrupted one, then agree bit for bit; without
    # it CUDA's atomic-add kernels let them drift apart (docs/cli.md, "train"). The CPU is deterministic either way.
    deterministic: bool = False
    # Validate every N iterations (0: never) on `val_split` with the eval protocol; it is only monitored,
    # never used to pick a checkpoint (the last one is the result).
    val_every: int = 0
    val_split: str = "val"
    # Every N iterations (0: never) also score `eval.split` (the reported split; `eval.subset` too), logged as
    # test_miou: the trajectory of the reported score over training, for a report only. Nothing is chosen by it.
    test_every: int = 0
    # TensorBoard event files in <out_dir>/tb: every loss term, lr, throughput, validation mIoU.
    tensorboard: bool = True
    # Not in the paper (off by default): an exponential moving average of the weights (docs/configuration.md).
    ema: EMAConfig = field(default_factory=EMAConfig)


@dataclass
class EvalConfig:
    split: str = "test"
    # A named subset of the split (data.subsets), e.g. MFNet's night images.
    subset: Optional[str] = None
    batch_size: int = 4
    # whole: one pass per image; slide: windows of crop_size moved by stride_rate x crop (released code).
    mode: Literal["whole", "slide"] = "whole"
    crop_size: List[int] = field(default_factory=lambda: [480, 640])
    stride_rate: float = 2 / 3
    # Multi-scale and flip testing: softmax probabilities averaged over scales (x2 with flip).
    scales: List[float] = field(default_factory=lambda: [1.0])
    flip: bool = False
    # Classes left out of the headline mIoU (LLRGBD: void = 0).
    exclude_classes: List[int] = field(default_factory=list)


@dataclass
class Config:
    name: str = "smmcl"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# What a trained model file fixes: its classes and the scaling its inputs were trained with, checked wherever a config
# meets a model (eval, predict --config, analysis, report, save_pretrained). The modality before its scale: a thermal
# model given a depth config is told of the modality (trial 16 #128, #269).
MODEL_OWNS = ("model.num_classes", "data.class_names", "data.palette", "data.aux_kind", "data.aux_max")
