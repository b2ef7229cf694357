"""One rule per modality: what an RGB, auxiliary or label array must be, wherever it enters smmcl.

Files are decoded in `smmcl.data.io.read_image` alone. Every reader (the dataset, `smmcl data check`, `smmcl predict`
and, through `Preprocessing`, the frame-stream `Predictor`) hands the decoded array to its modality's function here,
so what one of them refuses, all refuse, in the same words (the file or frame, what it holds, what was expected):

    check_rgb    H x W x 3 uint8. RGBA: the alpha channel is dropped; 8-bit grey (H x W): repeated to 3 channels.
                 16-bit, float and other shapes are refused (a 16-bit grey PNG read as 8-bit is 257x too bright).
    check_aux    H x W or H x W x C of an integer or float type; NaN / inf read as 0 ("no measurement", with a
                 NonFiniteWarning); the values checked against `aux_max`, the raw value mapped to 1.0
                 (`units_problem`: negative values, 8-bit for a scale above 255, float metres for a millimetre
                 scale, values far above the scale).
    check_label  H x W integer class ids; after subtracting `label_shift` (values below 0 become the ignore
                 index), each must be in 0..num_classes-1 or the ignore index.

A units mismatch in a file is refused: a dataset or a folder to predict holds it in every image. A live frame's
caller passes `on_units` and is told instead (the Predictor warns), since a robot's stream should not stop.
Values that stay far below the scale in every image (`RangeWatch`: centimetres where it counts millimetres) are
noted over a whole folder or stream, never refused.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Callable, Optional

import numpy as np

from smmcl.data.transforms import aux_full_scale, finite_aux
from smmcl.errors import DatasetError

RGB_EXPECTED = "8-bit colour, H x W x 3 uint8 (RGBA and 8-bit grey are read as RGB)"
AUX_EXPECTED = "H x W or H x W x C of an integer or float type"
LABEL_EXPECTED = "a single-channel H x W integer image of class ids"
# Auxiliary modalities measured as one value per pixel (HHA, by contrast, is three).
SINGLE_VALUED = ("depth", "thermal")

# Values beyond OVERSHOOT x the full scale are in other units (0.1 mm read as mm, 16-bit read with an 8-bit scale);
# a sensor's modest overshoot (12 m on a 10 m scale) stays below it.
OVERSHOOT = 2.0
# Float values all at most FLOAT_SMALL on a scale of at least FLOAT_LARGE_SCALE: metres (or another unit 1000x
# coarser) where the scale is in millimetres. An all-zero image (no measurement anywhere) says nothing.
FLOAT_SMALL, FLOAT_LARGE_SCALE = 100.0, 1000.0
# At most this share of pixels beyond OVERSHOOT x the scale is a marker value (65535 for "no reading"), not units.
OUTLIER_SHARE = 0.02


def _num(value: float) -> str:
    """A number as messages write it: 10000 (not 1e+04) for whole values, else 4 significant digits."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"


def describe(array: object) -> str:
    """What an array holds, as messages show it: dtype, shape and the range of its finite values."""
    if not isinstance(array, np.ndarray):
        return f"a {type(array).__name__}, not a numpy array"
    text = f"{array.dtype}, shape {tuple(array.shape)}"
    if array.size and (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        finite = array[np.isfinite(array)] if np.issubdtype(array.dtype, np.floating) else array
        if finite.size:
            text += f", values {_num(finite.min())}..{_num(finite.max())}"
    return text


def check_rgb(rgb: object, source: object) -> np.ndarray:
    """`rgb` as H x W x 3 uint8 (alpha dropped, grey repeated), or a `DatasetError` naming `source`."""
    if isinstance(rgb, np.ndarray) and rgb.size == 0:
        raise DatasetError(f"{source}: RGB image is empty (shape {tuple(rgb.shape)}); expected {RGB_EXPECTED}")
    if isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8:
        if rgb.ndim == 3 and rgb.shape[2] == 3:
            return rgb
        if rgb.ndim == 3 and rgb.shape[2] == 4:
            return rgb[..., :3]
        if rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 1):
            return np.repeat(rgb.reshape(*rgb.shape[:2], 1), 3, axis=2)
    hint = ""
    if isinstance(rgb, np.ndarray) and np.issubdtype(rgb.dtype, np.integer) and rgb.dtype.itemsize > 1:
        hint = ("; an image of more than 8 bits is no photo smmcl reads (as 8-bit it would be up to 257x too "
                "bright): a depth or thermal image among the RGB ones? Convert colour images to 8 bits")
    elif isinstance(rgb, np.ndarray) and np.issubdtype(rgb.dtype, np.floating):
        hint = "; convert float images to 8-bit values 0..255"
    raise DatasetError(f"{source}: RGB image is {describe(rgb)}; expected {RGB_EXPECTED}{hint}")


# Said wherever a remedy names data.aux_max: eval and analysis cannot change it (trial 10 #194).
TRAINED_SCALE = "a trained model's scale is its own: scoring it needs images in its units"


def _power_of_ten(ratio: float) -> float:
    """The power of ten at or below `ratio`: the unit step a value range is off by (9.8 m vs 10000 -> 1000)."""
    return 10.0 ** math.floor(math.log10(ratio))


# Depth units a factor of ten apart, for naming the likely mix-up in a range note (the images' units first).
_UNIT_PAIRS = {10: ("centimetres", "millimetres"), 100: ("metres", "centimetres"), 1000: ("metres", "millimetres")}


def _units_guess(factor: float, images_larger: bool) -> str:
    """The likely mix-up behind values `factor` (a power of ten) off a model's or scale's: "metres for millimetres"
    when the images count larger units (smaller values), the reverse when smaller (trial 11 #197: 1000x named as
    centimetres)."""
    pair = _UNIT_PAIRS.get(int(round(factor)))
    if pair is None:
        return f"units {_num(factor)}x {'larger' if images_larger else 'smaller'}"
    big, small = pair
    return f"{big} for {small}" if images_larger else f"{small} for {big}"


def _pass_scale(step: str) -> str:
    """The one remedy for frames in other units, in every caller's spelling (trial 9: a Predictor user tried it on
    the call, where it is not taken)."""
    return (f"pass aux_scale={step} (--aux-scale {step}; the Predictor takes it when made: "
            f"Predictor(..., aux_scale={step}))")


def units_problem(aux: np.ndarray, aux_max: Optional[float], aux_scale: float = 1.0,
                  for_model: bool | str = False, files_kind: Optional[str] = None) -> Optional[str]:
    """Why the (finite) values of `aux` times `aux_scale` do not fit the full scale `aux_max`, or None.

    `for_model`: the scale is a trained model's (predict, Predictor), which the remedy cannot change: it names
    `aux_scale` instead of `data.aux_max`; a string is the model's auxiliary kind (depth, thermal, hha), named too,
    for values far off its scale may be another modality rather than other units. `files_kind`: the dataset's
    `data.aux_kind`, for advice that fits it (HHA is 8-bit by construction)."""
    full = aux_full_scale(aux.dtype, aux_max)
    kind = for_model if isinstance(for_model, str) else None
    model = f"a {kind} model" if kind else "a model"
    if aux_max is not None:
        scale = f"{model} whose aux_max is {_num(full)}" if for_model else f"data.aux_max={_num(full)}"
    else:  # floats are then read as 0..1, integers up to their type's maximum
        unset = f"unset (full scale {_num(full)} for {aux.dtype})"
        scale = f"{model} whose aux_max is {unset}" if for_model else f"data.aux_max {unset}"
    link = "for" if for_model else "but"
    if aux.size and aux.min() < 0:
        # Depth, thermal intensity, HHA: all measured from 0 up (0 = no measurement). Negative values are another
        # encoding (signed offsets, disparity, degrees below zero), which the model would read as nothing it saw.
        fix = "give the frames as recorded by the sensor" if for_model else "convert the files to values from 0 up"
        return (f"negative values ({describe(aux)}): auxiliary images hold distances or intensities from 0 up "
                f"(0 = no measurement), not signed or offset values: {fix}")
    if (kind == "thermal" and full <= 255 and np.issubdtype(aux.dtype, np.floating) and aux.size
            and not np.array_equal(aux, np.round(aux))):
        # An 8-bit thermal camera gives whole numbers; fractions are depth in metres or temperatures, which no
        # aux_scale turns into its images (trial 10 #73, #217: depth in metres passed a thermal model).
        return (f"float values with fractions ({describe(aux)}) for a thermal model trained on 8-bit images (full "
                f"scale {_num(full)}): depth in metres, or temperatures? no aux_scale maps them to the camera's 8-bit "
                f"images: give frames as it was trained on; images of another modality this model cannot read")
    if kind == "thermal" and full <= 255 and aux_scale != 1 and aux.size:
        # A thermal camera's 8-bit images are its gain control's output, in no units: a scale fits other images into
        # their range without making them such images (trial 13 #350: 16-bit depth x0.098 went through).
        return (f"aux_scale {_num(aux_scale)} for a thermal model trained on 8-bit images (full scale {_num(full)}): "
                f"the camera's gain control made them, in no units, so no aux_scale maps other images to them: give "
                f"frames as it was trained on, unscaled; images of another modality this model cannot read")
    raw = float(aux.max())
    top = raw * aux_scale
    scaled = f" (x aux_scale {_num(aux_scale)} = {_num(top)})" if aux_scale != 1 else ""
    if np.issubdtype(aux.dtype, np.integer) and aux.dtype.itemsize == 1 and 255 * aux_scale < full:
        other = {"depth": "thermal", "thermal": "depth"}.get(kind or "", "")
        fix = (f"{kind} saved at 8 bits? give the frames at their full bit depth; 8-bit images of another modality "
               f"(not {kind}{f'; {other}?' if other else ''}) this model cannot read" if kind else
               "give the frames at their full bit depth" if for_model else
               "HHA images are 8-bit by construction (smmcl data hha): leave data.aux_max unset (null) for them, "
               "as an inherited value from a depth config is not theirs" if files_kind == "hha" else
               "store the images at their full bit depth; to train on 8-bit images whose true scale that is, set "
               f"data.aux_max=255 ({TRAINED_SCALE})")
        example = "16-bit radiometric values" if kind == "thermal" else "16-bit millimetres"  # trial 17 P-t16on8
        return (f"8-bit auxiliary image ({describe(aux)}) {link} {scale}, which expects larger values, "
                f"e.g. {example}: {fix}")
    # Judged on the bulk of the values: a few far outliers (205 m of a stereo mismatch) hid float metres, which were
    # then noted as "centimetres for millimetres?" (trial 17 TR-m2).
    bulk = (float(np.percentile(aux, 99)) * aux_scale if np.issubdtype(aux.dtype, np.floating) and top > FLOAT_SMALL
            and aux.size else top)
    if np.issubdtype(aux.dtype, np.floating) and 0 < bulk <= FLOAT_SMALL and full >= FLOAT_LARGE_SCALE:
        step = _power_of_ten(full / bulk) * aux_scale
        fix = (_pass_scale(_num(step)) if for_model else
               f"convert the files (x{_num(step)}), or, to train on them, set data.aux_max to their own full scale "
               f"({TRAINED_SCALE})")
        what = "given to a model trained on" if for_model else "where data.aux_max counts"
        values = (f"up to {_num(raw)}{scaled}" if bulk == top else
                  f"99% up to {_num(bulk / aux_scale)} (a few up to {_num(raw)}){scaled}")
        return f"float values {values} {link} {scale}: metres {what} millimetres? {fix}"
    if top > OVERSHOOT * full:
        over = aux * aux_scale > OVERSHOOT * full
        beyond = float(np.mean(over))
        # Pixels over the scale that all hold the type's largest value are a marker however many there are (an
        # invalid border row is 2% of a frame: trial 12 #209); other units spread over many values.
        at_top = np.issubdtype(aux.dtype, np.integer) and bool(np.all(aux[over] == np.iinfo(aux.dtype).max))
        fix = ("give such pixels as 0 (no measurement)" if for_model else
               "set such pixels to 0 in the files (smmcl reads 0 as no measurement)")
        if at_top and beyond == 1:  # a frame of no readings at all (trial 13 #245, #247: "aux_scale=0.1" advised)
            return (f"every pixel holds {_num(raw)}, the largest {aux.dtype} value: a frame with no reading at all (a "
                    f"sensor's no-reading or saturation marker)? {fix}")
        if beyond <= OUTLIER_SHARE or at_top:
            # A few pixels far off the scale, the rest within it: a marker (65535 = "no reading"), not other units;
            # a rescaling judged from them would shrink every real value.
            return (f"{100 * beyond:.2g}% of the pixels are above {_num(OVERSHOOT)}x the full scale ({scale}; up to "
                    f"{_num(raw)}{scaled}) while the rest fit it: a sensor's no-reading or saturation marker? {fix}")
        step = _num(_power_of_ten(full / top) * aux_scale)
        if kind == "thermal":
            # Radiometric (e.g. centi-kelvin) and 8-bit AGC thermal are not a rescaling of each other: no aux_scale.
            fix = ("radiometric or 16-bit thermal for a model trained on 8-bit thermal images? no aux_scale maps one "
                   "to the other (the camera's gain control made them): give frames as it was trained on; images of "
                   "another modality (not thermal)? this model cannot read them")
        elif kind:
            fix = (f"{kind} images in other units than it was trained on? {_pass_scale(step)}; images of another "
                   f"modality (not {kind})? this model cannot read them")
        elif for_model:
            fix = f"other units than it was trained on? {_pass_scale(step)}"
        else:
            fix = (f"the images are in other units than data.aux_max: to train on them, set it to their full scale "
                   f"({TRAINED_SCALE})")
        return (f"values up to {_num(raw)}{scaled} {link} {scale}, more than {_num(OVERSHOOT)}x its full scale "
                f"({describe(aux)}): {fix}")
    return None


# Auxiliary values that stay under 1/SMALL_SHARE of the full scale in every image of a dataset or folder (or in the
# first STREAM_FRAMES frames of a stream) are more likely other units than a scene that near: depth in centimetres
# where the scale counts millimetres reads 10x too near. Noted, never refused: a close-range set may be so.
SMALL_SHARE = 10
# Against the largest value a model's training images held (not a nominal scale a scene rarely fills) the margin is
# narrower: the same scenes in centimetres for millimetres sit at exactly a tenth of it, which "under a tenth" missed
# (trial 16 #14: 300 for a model trained up to 3000 said nothing). A scene a quarter as far is still noted, as such.
TRAINED_SHARE = 4


def _nearest_power_of_ten(ratio: float) -> float:
    """The power of ten nearest to `ratio` (in log): values a tenth of another's, give or take a scene's spread."""
    return 10.0 ** max(1, round(math.log10(ratio)))
STREAM_FRAMES = 30


class RangeWatch:
    """The largest auxiliary value (times `aux_scale`) over many images, and where it was; `problem` says when it
    stays under 1/SMALL_SHARE of `aux_max`, or, for a model that recorded the largest value of its training images
    (`trained_top`), stays under 1/TRAINED_SHARE of that or goes over TRAINED_SHARE times it. One rule for `data check`, training, `predict`, eval,
    recordings and the Predictor."""

    def __init__(self, aux_max: Optional[float], aux_scale: float = 1.0, trained_top: Optional[float] = None):
        self.aux_max, self.aux_scale, self.trained_top = aux_max, aux_scale, trained_top
        self.top, self.where, self.count = 0.0, None, 0

    def see(self, aux: np.ndarray, source: object) -> None:
        self.count += 1
        # Of the finite values, which the frame is read as (NaN / inf are no measurement): one NaN made the top NaN,
        # which no later frame exceeds and no rule judges, so a stream in metres with holes, then in centimetres,
        # was never noted (trial 12 #119; a fresh Predictor noted it).
        if aux.size and np.issubdtype(aux.dtype, np.floating):
            aux = aux[np.isfinite(aux)]
        # Nor a 16-bit type's largest value, a sensor's no-reading marker: scaled into range by a wrong --aux-scale it
        # stood for the scene and hid depth read at a tenth (trial 13 #40, #248b).
        if aux.size and np.issubdtype(aux.dtype, np.integer) and aux.dtype.itemsize > 1:
            aux = aux[aux != np.iinfo(aux.dtype).max]
        top = float(aux.max()) * self.aux_scale if aux.size else 0.0
        if self.where is None or top > self.top:
            self.top, self.where = top, source

    def problem(self, for_model: bool = False, unit: str = "images", files: bool = False) -> Optional[str]:
        """None, or the note: no image seen holds any measurement; every image seen stays under 1/SMALL_SHARE of the
        scale; or, `for_model`, stays under 1/TRAINED_SHARE of the largest value its training images held or goes over
        TRAINED_SHARE times it. `files`: a
        dataset scored as it is stored (eval), which takes no aux_scale: the remedy is to convert the files."""
        images = f"all {self.count} {unit}" if self.count > 1 else "the one image"
        if self.count and not self.top:
            # Nothing measured anywhere (trial 15: all-zero depth passed predict, recordings, training and data check
            # without a word); the model then sees the RGB image alone. One blank frame says nothing: a whole set does.
            use = ("the model has only the RGB image to go on" if for_model else
                   "a model trained on them learns nothing from the auxiliary modality")
            return (f"{images} {'hold' if self.count > 1 else 'holds'} no auxiliary measurement at all (every value 0, which is no reading, or "
                    f"a sensor's no-reading marker; e.g. {self.where}): a sensor that gave nothing, or files written "
                    f"wrong (values below 1, such as metres, saved as integers)? {use}")
        # Values shown as the model reads them; with a scale, as stored too (trial 11 #215: 200 shown, 2000 stored).
        stored = (f" ({_num(self.top / self.aux_scale)} as stored, x{_num(self.aux_scale)})"
                  if self.aux_scale != 1 and self.top else "")
        where = f"the largest auxiliary value in {images} is {_num(self.top)}{stored} (in {self.where}), "
        if for_model and self.trained_top and self.top > TRAINED_SHARE * self.trained_top:
            # Within aux_max, yet far beyond anything trained on: a model trained on centimetres given millimetres
            # reads every value 10x too far (trial 6 C189); its aux_max alone cannot tell.
            factor = _nearest_power_of_ten(self.top / self.trained_top)
            step = _num(self.aux_scale / factor)
            return (where + f"over {TRAINED_SHARE}x the largest its training images held ({_num(self.trained_top)}): "
                    f"other units than it was trained on ({_units_guess(factor, False)})? then "
                    + self._remedy(step, files) + "; a scene this much farther (or hotter) than any it was trained on "
                    "is read as it is")
        if for_model and self.trained_top:
            # Its own training range decides: a model trained on a near scene (in its units) reads one as it is.
            if not 0 < self.top * TRAINED_SHARE < self.trained_top:
                return None
            factor = _nearest_power_of_ten(self.trained_top / self.top)
            step = _num(factor * self.aux_scale)
            return (where + f"under 1/{TRAINED_SHARE} of the largest its training images held "
                    f"({_num(self.trained_top)}): other units than it was trained on ({_units_guess(factor, True)})? "
                    f"then " + self._remedy(step, files) + "; a scene this near is read as it is")
        if self.aux_max is None or not 0 < self.top * SMALL_SHARE < self.aux_max:
            return None
        text = where + f"under 1/{SMALL_SHARE} of "
        factor = _power_of_ten(self.aux_max / self.top)
        if not for_model:  # the scale is the config's: it may be the one that is off (trial 15 T28)
            return text + (f"data.aux_max={_num(self.aux_max)}: other units than aux_max counts "
                           f"({_units_guess(factor, True)})? or data.aux_max {_num(factor)}x larger than their "
                           f"full scale?")
        step = _num(factor * self.aux_scale)
        return text + (f"the model's aux_max {_num(self.aux_max)}: other units than it was trained on "
                       f"({_units_guess(factor, True)})? then " + self._remedy(step, files) + "; a scene this near is "
                       "read as it is")

    @staticmethod
    def _remedy(step: str, files: bool) -> str:
        if files:
            return f"convert the files into the model's units (x{step})"
        return _pass_scale(step)


def check_aux_scale(aux_scale: object) -> float:
    """`aux_scale` (the auxiliary values' factor into the model's units) as a float; a ValueError unless positive."""
    if isinstance(aux_scale, bool) or not isinstance(aux_scale, Real) or not (math.isfinite(aux_scale) and aux_scale > 0):
        raise ValueError(f"aux_scale must be a positive number (1000: metres for a millimetre model), got {aux_scale!r}")
    return float(aux_scale)


def check_aux(aux: object, source: object, aux_max: Optional[float], aux_scale: float = 1.0,
              on_units: Optional[Callable[[str], None]] = None, for_model: bool | str = False,
              kind: Optional[str] = None, trained_dtype: Optional[str] = None) -> np.ndarray:
    """`aux` with non-finite values read as 0, or a `DatasetError` naming `source`.

    A units mismatch (`units_problem`) is refused, or handed to `on_units` (a live frame's caller) as a message.
    `kind` (or `for_model` when it names one): the auxiliary modality; depth and thermal hold one value per pixel,
    so colour (3 channels that differ: a colour-mapped picture of them) is refused. `trained_dtype`: the type of
    the images a model was trained on with `aux_max` unset (each scaled by its type's maximum): another type is
    another scale, refused (or handed to `on_units`) like other units."""
    numeric = isinstance(aux, np.ndarray) and (np.issubdtype(aux.dtype, np.integer) or np.issubdtype(aux.dtype, np.floating))
    if isinstance(aux, np.ndarray) and aux.size == 0:
        raise DatasetError(f"{source}: auxiliary image is empty (shape {tuple(aux.shape)}); expected {AUX_EXPECTED}")
    if not numeric or aux.ndim not in (2, 3):  # type: ignore[union-attr]
        raise DatasetError(f"{source}: auxiliary image is {describe(aux)}; expected {AUX_EXPECTED}")
    if aux.ndim == 3 and aux.shape[2] == 2:  # type: ignore[union-attr]  # trial 16 B04: a numpy error deep inside
        raise DatasetError(f"{source}: auxiliary image with 2 channels ({describe(aux)}): grey and alpha? an "
                           f"auxiliary image holds 1 channel (depth, thermal) or 3 (HHA): give the first channel alone")
    kind = kind or (for_model if isinstance(for_model, str) else None)
    if kind == "hha" and (aux.ndim == 2 or aux.shape[2] == 1):  # type: ignore[union-attr]
        raise DatasetError(f"{source}: a single-channel image ({describe(aux)}) where HHA holds three channels "
                           f"(disparity, height, angle): raw depth? encode it as HHA with `smmcl data hha`; no "
                           f"aux_scale turns depth into HHA")
    if kind in SINGLE_VALUED and aux.ndim == 3 and aux.shape[2] >= 3 and not (  # type: ignore[union-attr]
            np.array_equal(aux[..., 0], aux[..., 1]) and np.array_equal(aux[..., 0], aux[..., 2])):  # type: ignore[index]
        raise DatasetError(f"{source}: a colour image ({describe(aux)}, its channels differ) where {kind} holds one "
                           f"value per pixel: a colour-mapped picture of {kind}? give the sensor's single-channel "
                           f"values" + ("" if kind != "depth" else "; HHA images? a model trained on HHA reads them"
                                        if for_model else "; HHA images: set data.aux_kind=hha"))
    aux = finite_aux(aux, source)  # type: ignore[arg-type]
    problem = units_problem(aux, aux_max, aux_scale, for_model, kind)
    if problem is None and aux_max is None and trained_dtype and aux.dtype.name != trained_dtype:  # type: ignore[union-attr]
        what = f"a {kind} model" if kind else "a model"
        problem = (f"{aux.dtype} auxiliary image ({describe(aux)}) for {what} trained on {trained_dtype} ones with "  # type: ignore[union-attr]
                   f"data.aux_max unset (each image scaled by its type's maximum, so {aux.dtype} would be read on "  # type: ignore[union-attr]
                   f"another scale): another bit depth or modality than it was trained on; give {trained_dtype} frames")
    if problem is not None:
        if on_units is None:
            raise DatasetError(f"{source}: {problem}")
        on_units(f"{source}: {problem}")
    return aux


def check_label(label: object, source: object, num_classes: int, ignore_index: int = 255,
                label_shift: int = 0) -> np.ndarray:
    """Class ids (H x W int64) of a stored label image, `label_shift` applied; or a `DatasetError` naming `source`."""
    if not (isinstance(label, np.ndarray) and label.ndim == 2 and np.issubdtype(label.dtype, np.integer)):
        raise DatasetError(f"{source}: label image is {describe(label)}; expected {LABEL_EXPECTED}")
    out = label.astype(np.int64)
    if label_shift:
        ignored = out == ignore_index
        out = out - label_shift
        out[(out < 0) | ignored] = ignore_index
    bad = ((out >= num_classes) | (out < 0)) & (out != ignore_index)
    if bad.any():
        values = out[bad]
        worst = int(values.max()) if values.max() >= num_classes else int(values.min())
        shift = f" after subtracting label_shift={label_shift}" if label_shift else ""
        raise DatasetError(f"{source}: has value {worst}{shift}; expected 0..{num_classes - 1} or {ignore_index} (ignore)")
    return out


def check_same_size(rgb: np.ndarray, rgb_source: object, other: np.ndarray, other_source: object) -> None:
    """The images of one sample are registered pixel to pixel: a `DatasetError` naming both when sizes differ."""
    if other.shape[:2] != rgb.shape[:2]:
        raise DatasetError(f"size mismatch: {other_source} is {other.shape[1]}x{other.shape[0]} but "
                           f"{rgb_source} is {rgb.shape[1]}x{rgb.shape[0]}")
