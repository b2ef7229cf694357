"""Studies (`smmcl study`): variants x seeds of training runs, evaluated and compared seed by seed."""

from smmcl.study.runner import run_study
from smmcl.study.spec import StudySpec, read_study
from smmcl.study.stats import mean_std, paired_difference

__all__ = ["StudySpec", "mean_std", "paired_difference", "read_study", "run_study"]
