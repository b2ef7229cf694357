"""Exception types: each names the file or value at fault and what was expected."""


class SmmclError(Exception):
    """Base class of the errors smmcl reports to users (the CLI prints them without a traceback)."""


class ConfigError(SmmclError, ValueError):
    """A configuration file or override that does not fit the schema."""


class DatasetError(SmmclError, ValueError):
    """A dataset folder, list or file that is missing, unreadable or inconsistent."""


class CheckpointError(SmmclError, ValueError):
    """A checkpoint that is missing, unreadable or does not match the model."""


class NonFiniteWarning(UserWarning):
    """An auxiliary image held NaN or infinite values; they were read as "no measurement" (0)."""


class AuxUnitsWarning(UserWarning):
    """An auxiliary frame's values do not fit the model's `aux_max` (e.g. metres given to a model trained on
    millimetres); files with the same fault are refused with a `DatasetError` instead."""


class HeldOutWarning(UserWarning):
    """The split being scored shares samples with the train list: those scores are not of held-out images."""


class StaleOutputWarning(UserWarning):
    """A folder's own files were replaced while other commands' outputs inside it (an HHA folder, a report, an
    export), made from what was replaced, were kept."""


class ConfigWarning(UserWarning):
    """A config value departs from the dataset's own `meta.json` by an explicit override, which is used; or a model
    is scored on a dataset that does not say its classes."""


class InputWarning(UserWarning):
    """Inputs that are probably not what the command reads (label maps given as photos); used as given."""
