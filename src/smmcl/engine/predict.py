"""Prediction on user images: pairing inputs, preprocessing as the dataset does, label and overlay PNGs."""

from __future__ import annotations

import collections
import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np
from PIL import Image

from smmcl.data.io import IMAGE_SUFFIXES, read_image, split_packed
from smmcl.data.label_maps import colour_count, flat_rgb_problem
from smmcl.data.modality import RangeWatch, check_aux, check_rgb, check_same_size
from smmcl.data.names import check_folder_kind, check_rgb_named, folder_kind, names_labels
from smmcl.data.preprocess import Preprocessing
from smmcl.errors import AuxUnitsWarning, DatasetError, InputWarning
from smmcl.files import read_text
from smmcl.outputs import Confirmer, unique_outputs, writing
from smmcl.progress import track

if TYPE_CHECKING:  # PyTorch only where a PyTorch model runs: an ONNX export predicts without it
    import torch

Array = Union[np.ndarray, "torch.Tensor"]


@dataclass(frozen=True)
class InputPair:
    name: str
    rgb: Path
    aux: Optional[Path]  # None: the RGB file also holds the auxiliary channel (MFNet's 4-channel PNGs)


def _images(folder: Path) -> dict:
    """Name -> image file; two images of one name (x.png beside x.jpg or x.PNG) are refused, naming both: which
    one was meant cannot be told, and pairing by name would drop the other without a word."""
    found: dict = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            if p.stem in found:
                raise DatasetError(f"{found[p.stem]} and {p} have one name, {p.stem!r}; inputs pair by name: keep one "
                                   f"of them in {folder}")
            found[p.stem] = p
    nested = sorted(q for sub in folder.iterdir() if sub.is_dir() for q in sub.rglob("*")
                    if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
    if nested:
        # Subfolders are not read (a folder is one camera's frames, paired by name): said, never skipped silently.
        warnings.warn(f"{folder}: {len(nested)} images in its subfolders (e.g. {nested[0]}) are not read; give each "
                      f"folder of frames on its own", InputWarning, stacklevel=3)
    return found


def _unread_hint(names: Sequence[str], *folders: Path) -> str:
    """For names found in one folder only: a file of that name in another that smmcl does not read (depth saved as
    `.npy` or `.exr`), named with what it reads, rather than reporting the frame as missing its partner."""
    for name in names:
        for folder in folders:
            other = next((p for p in sorted(folder.glob(f"{name}.*")) if p.is_file()
                          and p.suffix.lower() not in IMAGE_SUFFIXES), None)
            if other is not None:
                return (f" ({other} is there, but {other.suffix} files are not images smmcl reads: it reads "
                        f"{', '.join(IMAGE_SUFFIXES)}; save depth or thermal arrays as 16-bit PNG, or TIFF (float too))")
    return ""


def _find(folder: Path, name: str, role: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    raise DatasetError(f"no {role} image named {name!r} in {folder}")


def pair_inputs(rgb: Optional[Path], aux: Optional[Path] = None, list_file: Optional[Path] = None) -> List[InputPair]:
    """Inputs from two files, two folders paired by name, or a list file.

    A list line holds `RGB_PATH AUX_PATH` (relative to the list's folder) or one sample name looked up in
    the `rgb` / `aux` folders. Without `aux`, every RGB image must carry the auxiliary image as a 4th channel.
    An RGB image given as its own auxiliary image is refused.
    """
    pairs = _pairs(rgb, aux, list_file)
    same = next((p for p in pairs if p.aux is not None and Path(p.aux).resolve() == Path(p.rgb).resolve()), None)
    if same is not None:
        raise DatasetError(f"{same.rgb} is given as both the RGB and the auxiliary image (--rgb and --aux name the same "
                           f"{'folder' if rgb is not None and aux is not None and Path(rgb).is_dir() else 'file'}): "
                           f"give the depth or thermal images as --aux")
    return pairs


def _check_list_paths(list_file: Path, fields: Sequence[str]) -> None:
    """Paths in a list are read from the list's folder; one missing there but found from the current folder is the
    other reading, said so rather than guessed (trial 11 #88: `mine/mine/...` missing, with no word why)."""
    base = list_file.parent
    for written in map(Path, fields):
        if not written.is_absolute() and not (base / written).is_file() and written.is_file() and base != Path("."):
            raise DatasetError(f"{list_file}: {written} is read as {base / written}, which is not there: paths in a "
                               f"list are read from the list file's folder ({base}), and {written} exists from the "
                               f"current folder: write the list's paths from {base}, or absolute")


def _pairs(rgb: Optional[Path], aux: Optional[Path] = None, list_file: Optional[Path] = None) -> List[InputPair]:
    rgb = Path(rgb) if rgb is not None else None
    aux = Path(aux) if aux is not None else None
    if list_file is not None:
        list_file = Path(list_file)
        if list_file.is_dir():
            raise DatasetError(f"--list {list_file} is a folder; --list takes a text file of sample names or image "
                               f"paths (a folder of images goes to --rgb)")
        if not list_file.is_file():
            raise DatasetError(f"list file not found: {list_file}")
        for flag, folder in (("--rgb", rgb), ("--aux", aux)):
            if folder is not None and not folder.is_dir():
                raise DatasetError(f"{flag} {folder} is not a folder; with a list file, {flag} names the folder its "
                                   f"sample names are looked up in")
        pairs = []
        text = read_text(list_file, "a list of RGB_PATH AUX_PATH lines or sample names")
        for number, line in enumerate(text.splitlines(), start=1):
            fields = [] if line.lstrip().startswith("#") else line.split()  # a comment line
            where = f"{list_file}, line {number}: {line.strip()!r}"
            if len(fields) > 2:
                raise DatasetError(f"{where} has {len(fields)} fields; a line holds RGB_PATH AUX_PATH or one sample "
                                   f"name, separated by spaces, so paths with spaces in them must be renamed")
            if len(fields) == 2:
                _check_list_paths(list_file, fields)
                a, b = (list_file.parent / f for f in fields)
                pairs.append(InputPair(a.stem, a, b))
            elif fields and (rgb is None or "/" in fields[0] or Path(fields[0]).suffix.lower() in IMAGE_SUFFIXES):
                if rgb is not None or aux is not None:
                    raise DatasetError(f"{where} is a path; beside --rgb/--aux folders a line holds a sample name")
                raise DatasetError(f"{where} holds one path but no auxiliary path: a line holds RGB_PATH AUX_PATH, "
                                   f"or a sample name with --rgb (and --aux) folders to look it up in")
            elif fields:
                pairs.append(InputPair(fields[0], _find(rgb, fields[0], "RGB"), _find(aux, fields[0], "auxiliary") if aux else None))
        if not pairs:
            raise DatasetError(f"list file {list_file} names no inputs")
        return pairs
    if rgb is None:
        raise DatasetError("no input: give an RGB file or folder, or a list file")
    if rgb.is_dir():
        rgb_files = _images(rgb)
        if not rgb_files:  # what is there instead, and what is read (trial 17 Q-gif: "no images" beside an f.gif)
            others = sorted(p.name for p in rgb.iterdir() if p.is_file() and not p.name.startswith("."))
            there = f"; it holds {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}" if others else ""
            raise DatasetError(f"no images in {rgb} (read: {', '.join(IMAGE_SUFFIXES)} files){there}")
        if aux is None:
            return [InputPair(n, p, None) for n, p in rgb_files.items()]
        if not aux.is_dir():
            raise DatasetError(f"--rgb is a folder, so --aux must be one too: {aux}")
        aux_files = _images(aux)
        lonely = sorted(set(rgb_files) ^ set(aux_files))
        if lonely:
            where = ", ".join(f"{n} (only in {rgb if n in rgb_files else aux})" for n in lonely[:5])
            more = f" and {len(lonely) - 5} more" if len(lonely) > 5 else ""
            raise DatasetError(f"unpaired inputs: {where}{more}; RGB and auxiliary images are paired by file name"
                               + _unread_hint(lonely, rgb, aux))
        return [InputPair(n, rgb_files[n], aux_files[n]) for n in rgb_files]
    if not rgb.is_file():
        raise DatasetError(f"RGB input not found: {rgb}")
    if aux is not None and aux.is_dir():
        raise DatasetError(f"--rgb is a file, so --aux must be one too (its auxiliary image), not the folder {aux}")
    if aux is not None and not aux.is_file():
        raise DatasetError(f"auxiliary input not found: {aux}")
    return [InputPair(rgb.stem, rgb, aux)]


def load_pair(pair: InputPair, aux_max: Optional[float] = None, aux_scale: float = 1.0,
              aux_kind: Optional[str] = None, aux_dtype: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """RGB H x W x 3 uint8 and the auxiliary array of one input pair, each checked by its modality's rule
    (`smmcl.data.modality`) against the model's `aux_max` (values times `aux_scale`), sizes checked. Files are
    refused where they do not fit, as the dataset refuses them: every image of a folder shares the fault. `aux_kind`:
    the model's auxiliary modality, named when the values do not fit it."""
    rgb = read_image(pair.rgb)
    if pair.aux is None:
        rgb, aux = split_packed(rgb, pair.rgb)
        aux_source = f"{pair.rgb} (its 4th channel, read as the auxiliary image: no --aux given)"
    else:
        aux, aux_source = read_image(pair.aux), pair.aux
    rgb = check_rgb(rgb, pair.rgb)
    aux = check_aux(aux, aux_source, aux_max, aux_scale, for_model=aux_kind or True, trained_dtype=aux_dtype)
    check_same_size(rgb, pair.rgb, aux, aux_source)
    return rgb, aux


def to_batch(rgb: np.ndarray, aux: np.ndarray, aux_max: Optional[float], source: object = "the auxiliary image",
             aux_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw arrays -> normalised 1 x 3 x H x W tensors, exactly as the evaluation dataset prepares them."""
    rgb_t, aux_t = Preprocessing(aux_max=aux_max).pair(rgb, aux, source=source, aux_scale=aux_scale)
    return rgb_t[None], aux_t[None]


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's inputs go: its parameters' device (a model without parameters, e.g. an ONNX Runtime
    session, takes CPU tensors)."""
    import torch

    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def predict_labels(model: torch.nn.Module, rgb: Array, aux: Array, aux_max: Optional[float] = None, protocol=None,
                   source: object = "the auxiliary image", aux_scale: float = 1.0) -> Array:
    """Class ids: raw numpy images -> H x W int64 array; normalised B x 3 x H x W tensors -> B x H x W tensor.
    `aux_scale` multiplies raw auxiliary values into the units `aux_max` counts (1000: metres for millimetres)."""
    import torch

    from smmcl.engine.inference import predict_probs

    raw = isinstance(rgb, np.ndarray)
    if raw:
        rgb_t, aux_t = to_batch(rgb, np.asarray(aux), aux_max, source, aux_scale)
    else:
        rgb_t, aux_t = rgb, aux
        # Normalised tensors have no "no measurement" value to put in their place.
        for name, t in (("rgb", rgb_t), ("aux", aux_t)):
            if not torch.isfinite(t).all():
                raise ValueError(f"{name} holds {int((~torch.isfinite(t)).sum())} NaN / infinite values; "
                                 f"pass raw numpy images (non-finite depth is then read as no measurement)")
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        rgb_t, aux_t = rgb_t.to(device), aux_t.to(device)
        with torch.no_grad():
            probs = protocol.apply(model, rgb_t, aux_t) if protocol is not None else predict_probs(model, rgb_t, aux_t)
    finally:
        model.train(was_training)
    labels = probs.argmax(1)
    return labels[0].cpu().numpy() if raw else labels


def output_names(name: str) -> tuple[str, str]:
    """The files one input writes: its label PNG and its overlay."""
    return f"{name}.png", f"{name}_overlay.png"


def label_png(labels: np.ndarray, palette: np.ndarray) -> Image.Image:
    """A palette PNG whose pixel values are the class ids (shown in the class colours)."""
    label_img = Image.fromarray(labels.astype(np.uint8), mode="P")
    flat = np.zeros((256, 3), np.uint8)
    flat[: len(palette)] = np.asarray(palette, np.uint8)
    label_img.putpalette(flat.ravel().tolist())
    return label_img


def overlay_picture(rgb: np.ndarray, labels: np.ndarray, palette: np.ndarray, class_names: Sequence[str] = (),
                    alpha: float = 0.5, legend_classes: Optional[Sequence[int]] = None) -> Image.Image:
    """Class colours on the RGB, with a legend of the classes it shows when `class_names` are given
    (`legend_classes`: these instead, e.g. all of them, so that every frame of a video has one size)."""
    from smmcl.visualize import beside, brighten, legend

    palette = np.asarray(palette, np.uint8)
    # Dark scenes are near black as captured: blend onto a brightened copy so the scene stays readable.
    if alpha == 0.5:  # the default, in integers: the same rounding (halves up) at a third of the cost per frame
        mixed = brighten(rgb).astype(np.uint16) + palette[labels]
        overlay = Image.fromarray(((mixed + 1) >> 1).astype(np.uint8))
    else:
        blend = (1 - alpha) * brighten(rgb).astype(np.float32) + alpha * palette[labels].astype(np.float32)
        overlay = Image.fromarray(np.clip(blend + 0.5, 0, 255).astype(np.uint8))
    if class_names:
        shown = list(legend_classes) if legend_classes is not None else [int(k) for k in np.unique(labels)]
        shown = [k for k in shown if k < len(class_names)]
        overlay = beside(overlay, legend([class_names[k] for k in shown], palette[shown]))
    return overlay


def write_prediction(out: Path, name: str, rgb: np.ndarray, labels: np.ndarray, palette: np.ndarray,
                     class_names: Sequence[str] = (), alpha: float = 0.5) -> List[Path]:
    """`<name>.png`: palette PNG whose pixel values are the class ids; `<name>_overlay.png`: colours on the
    RGB, with a legend of the classes it shows when `class_names` are given."""
    out.mkdir(parents=True, exist_ok=True)
    label_path, overlay_path = (out / n for n in output_names(name))
    label_png(labels, palette).save(label_path)
    overlay_picture(rgb, labels, palette, class_names, alpha).save(overlay_path)
    return [label_path, overlay_path]


def check_input_kinds(pairs: Sequence[InputPair], aux_kind: str) -> None:
    """Refuse auxiliary images from a folder named for another modality than the model's, as training refuses
    them: 8-bit depth from a `Depth/` folder fits a thermal model's scale, and only the name tells (trial 11 #156)."""
    for folder in dict.fromkeys(Path(p.rgb).parent for p in pairs):  # grey images pass as RGB: the name tells
        check_rgb_named(folder, f"predict reads colour images as --rgb and {aux_kind} images as --aux")
    for folder in dict.fromkeys(Path(p.aux).parent for p in pairs if p.aux is not None):
        if names_labels(folder):  # trial 14 #183: a list of RGB LABEL lines was read as 8-bit depth
            raise DatasetError(f"{folder}: a folder named for label images, given as the auxiliary ones: predict "
                               f"reads RGB and {aux_kind} images (a list line holds RGB_PATH AUX_PATH), and writes "
                               f"the labels")
        check_folder_kind(folder, aux_kind, f"the model was trained on {aux_kind} images",
                          f"predict them with a model trained on {folder_kind(folder)} images")


@contextlib.contextmanager
def writing_predictions(out: Path, pairs: Iterable[InputPair],
                        inputs: Sequence[Optional[str | Path]] = (), overwrite: bool = False) -> Iterator[List[InputPair]]:
    """Check, before anything is written, that `out` may take the predictions of `pairs` (`smmcl.outputs`): apart
    from every input file and from `inputs` (the folders and list given, the model file), holding only earlier
    predictions, which only `overwrite` replaces (whole), and one output name per input (x.png beside x.jpg, or two folders' x.png, are refused with both
    named); then hold the folder for the block (a second predict into it stops at once)."""
    pairs = list(pairs)
    counts = collections.Counter(p.rgb for p in pairs)  # one pass: a folder may hold thousands of frames
    twice = sorted({p.name for p in pairs if counts[p.rgb] > 1})
    if twice:
        raise DatasetError(f"{', '.join(twice)}: given twice among the inputs; each input is predicted once")
    unique_outputs(((n, p.rgb) for p in pairs for n in output_names(p.name)), f"--out folder {out}")
    files = [f for p in pairs for f in (p.rgb, p.aux) if f is not None]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:  # before anything is written: a list naming a file that is not there leaves no partial output
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DatasetError(f"missing file: {missing[0]}{more}; nothing was predicted")
    with writing(out, "predictions", "--out", [*inputs, *files], names=[n for p in pairs for n in output_names(p.name)],
                 overwrite=overwrite):
        yield pairs


def predict_files(model: Optional[torch.nn.Module], pairs: Iterable[InputPair], out: Path,
                  palette: Sequence[Sequence[int]], class_names: Sequence[str] = (), aux_max: Optional[float] = None,
                  protocol=None, progress: bool = True, aux_scale: float = 1.0,
                  inputs: Sequence[Optional[str | Path]] = (),
                  labels_of: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
                  aux_kind: Optional[str] = None, overwrite: bool = False,
                  trained: Optional[Preprocessing] = None) -> List[Path]:
    """Predict every input pair and write its label PNG and overlay into `out`; returns the written files.
    `palette` has one colour per class: the dataset's (`data.classes.dataset_palette`), as the demo and
    the report use. `aux_scale` multiplies the auxiliary values into the units `aux_max` counts. `out` is
    claimed first and held throughout (`writing_predictions`), apart also from `inputs` (the folders and list
    given, the model). `labels_of` (raw RGB, raw auxiliary -> class ids) replaces `model` and `protocol`: an
    export's runtime on numpy, without PyTorch. `trained`: what the model file records of its training images
    (`ModelFile.preprocessing`: their auxiliary type, their largest value), which the inputs are checked against."""
    aux_dtype, aux_top = (trained.aux_dtype, trained.aux_top) if trained is not None else (None, None)
    pairs = list(pairs)
    if aux_kind is not None:
        check_input_kinds(pairs, aux_kind)
    colours = np.asarray(palette, np.uint8)
    written: List[Path] = []
    with writing_predictions(Path(out), pairs, inputs, overwrite) as pairs:
        near, flat, listed = RangeWatch(aux_max, aux_scale, aux_top), [], Confirmer(out)
        for pair in track(pairs, desc="predict", unit="img", enabled=progress):
            rgb, aux = load_pair(pair, aux_max, aux_scale, aux_kind, aux_dtype)
            near.see(aux, pair.aux or pair.rgb)
            count = colour_count(rgb, len(colours) + 1)
            if count is not None:
                flat.append((pair.rgb, count))
            labels = (labels_of(rgb, aux) if labels_of is not None else
                      predict_labels(model, rgb, aux, aux_max, protocol, source=pair.aux or pair.rgb, aux_scale=aux_scale))
            written += write_prediction(Path(out), pair.name, rgb, labels, colours, class_names)
            listed.add(*output_names(pair.name))
        if flat:
            warnings.warn(f"{flat_rgb_problem(flat, len(written) // 2)} their predictions in {out} mean nothing",
                          InputWarning, stacklevel=2)
        small = near.problem(for_model=True)
        if small is not None:  # every file fits the scale, so none was refused; together they say other units
            warnings.warn(f"{small}; the predictions in {out} were made as given", AuxUnitsWarning, stacklevel=2)
    return written
