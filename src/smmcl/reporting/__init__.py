"""Static report pages of finished training runs: scores, curves, confusion, pictures (`smmcl report`).

Named `reporting`, not `report`: `smmcl.report` is the public API function, and a subpackage of that name
would replace it as an attribute of `smmcl` as soon as it is imported.
"""

from smmcl.reporting.build import write_report

__all__ = ["write_report"]
