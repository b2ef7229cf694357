"""A paired frame of a recording, the units its auxiliary values are in, the one gate every frame passes, and the
opened recording (`Recording`) each reader returns.

Units text (`Frame.aux_units`), as the recording states them:
    "mm"          integer depth in millimetres (ROS 16UC1 / mono16, REP 118; a RealSense "Depth Units" of 0.001)
    "m"           float depth in metres (ROS 32FC1)
    "<x> m"       integer depth, x metres per unit (a RealSense "Depth Units" other than 0.001, e.g. "0.0001 m")
    "raw"         values with no physical unit (8-bit thermal or infrared)
    "unknown"     a 16-bit or float image whose source states no units (an image-sequence folder)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from smmcl.data import modality
from smmcl.recordings.pairing import Pairing

MM, METRES, RAW, UNKNOWN = "mm", "m", "raw", "unknown"


@dataclass(frozen=True)
class Frame:
    """One RGB frame and its auxiliary partner.

    `time`: the RGB frame's time in seconds (a bag's header stamp, else its record time; a video's presentation
    time); `aux_time` the partner's. `rgb`: H x W x 3 uint8 in RGB order. `aux`: H x W, uint16 depth, float32
    metres or uint8 thermal, registered to `rgb` pixel for pixel. `rgb_source` / `aux_source`: the topic or file
    each came from."""

    index: int
    time: float
    rgb: np.ndarray
    aux: np.ndarray
    aux_units: str
    rgb_source: str
    aux_source: str
    aux_time: float


def depth_units_text(metres_per_unit: float) -> str:
    """The units text of integer depth stored at `metres_per_unit`: "mm" for 0.001, else "<x> m".

    Six significant digits: a float32 option value (0.0010000000474974513) names the unit it was set to."""
    text = f"{metres_per_unit:.6g}"
    return MM if text == "0.001" else f"{text} m"


def metres_per_unit(aux_units: str) -> Optional[float]:
    """Metres per raw auxiliary value for a units text ("mm" -> 0.001, "m" -> 1.0, "0.0001 m" -> 0.0001); None
    for values with no length unit ("raw", "unknown"). Divide a model's own metres per unit by it for the factor
    (`aux_scale`) that brings the frames into the model's units."""
    if aux_units == MM:
        return 0.001
    if aux_units == METRES:
        return 1.0
    if aux_units.endswith(" m"):
        try:
            value = float(aux_units[:-2])
        except ValueError:
            return None
        return value if math.isfinite(value) and value > 0 else None
    return None


def _ignore_units(message: str) -> None:
    """A recording knows no model: its values are checked against one when they are predicted on."""


def check_frame(rgb: np.ndarray, aux: np.ndarray, rgb_source: str, aux_source: str) -> tuple[np.ndarray, np.ndarray]:
    """The project's per-modality rules (`smmcl.data.modality`) on a decoded pair: RGB as 8-bit colour, the
    auxiliary image numeric with non-finite values read as 0, both the same size; a `DatasetError` otherwise.

    The one place this package calls those rules, so a change to their names or arguments is made here alone."""
    rgb = modality.check_rgb(rgb, rgb_source)
    aux = modality.check_aux(aux, aux_source, None, on_units=_ignore_units)
    modality.check_same_size(rgb, rgb_source, aux, aux_source)
    return rgb, aux


@dataclass(frozen=True)
class Recording:
    """Iterate for the paired `Frame`s, in time order (each pass reads the recording again).

    `alignment`: how the auxiliary frames were registered to the RGB ones ("aligned stream", "reprojected",
    "as recorded"). `aux_units`: the units of the first auxiliary frame (each frame carries its own, which a
    mid-recording option change can alter)."""

    path: Path
    rgb_source: str
    aux_source: str
    pairing: Pairing
    alignment: str
    aux_units: str
    frames: Callable[[], Iterator[Frame]] = field(repr=False)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def __len__(self) -> int:
        return len(self.pairing.pairs)

    def summary(self) -> str:
        """What a log shows before the frames: sources, units, alignment, and the pairing's counts."""
        # Units and registration named as such: "(0.0001 m, as recorded)" read as the scale applied (trial 11 #215).
        return (f"{self.path}: rgb {self.rgb_source}, aux {self.aux_source} (units {self.aux_units}; registration "
                f"{self.alignment}); "
                f"{self.pairing.summary()}")
