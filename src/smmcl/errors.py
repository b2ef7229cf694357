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
