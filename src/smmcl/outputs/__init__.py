"""Where smmcl writes, checked one way for every command: an output never lands on an input, a folder holds only
what one kind of smmcl command wrote there, and `--overwrite` removes only that.

Each output folder gets a manifest, `.smmcl-written.json`: the kind of command that writes there (a training run,
predictions, a dataset, ...) and the names it wrote, directly in that folder. A folder is claimed before anything
is written:

- the output must not be an input, lie inside an input folder or hold one (paths compared resolved, so symlinks
  and `..` do not hide a clash);
- a folder that holds anything not in its manifest is refused, naming what: smmcl writes only into a new or empty
  folder, or one the same kind of command wrote (a subfolder with a manifest of its own, such as a run's report,
  counts as smmcl's);
- `overwrite` removes the manifest's names and nothing else; a folder without a manifest is never emptied. A folder
  a command writes files into (a run's checkpoints, a dataset's images) gets a manifest of its own (`claim_folder`
  on it, `record` before each file), so that only those files go: a user's file in there, whatever its name, is
  refused, never removed;
- a single file another command writes into such a folder (an export into a run, scores beside a model) is listed
  as `kept`: smmcl's, so never foreign there, but never removed by the folder's own command either.

A name counts as smmcl's only once its file was written. A command claims its names first as `planned`, and they
become `written` (or `kept`) when it has written them: a long-lived writer says so as it goes (`record`, after
each file), and `writing` settles the rest as it ends, however it ends (a name whose file exists is written; the
others are dropped). A file under a name that is only planned (a command killed before writing it) is foreign:
refused, never replaced, for smmcl cannot tell it from a user's (trial 8: a user's `summary.json` put into a killed
run, or a file under a name a failed `predict` never wrote, was replaced by `--overwrite`).
A command holds the folder's OS lock while it writes (`writing`): a second command into the same folder stops at
once with an error naming the first, rather than mixing its files in.
Two inputs that would write one output name are refused before anything is written (`unique_outputs`).
"""

from smmcl.outputs.claims import (check_apart, check_claim, check_no_earlier, check_output_file, check_path, claim_folder,
                                  output_file, partial_writes, remove_written, resolved, unique_outputs,
                                  warn_other_outputs, writing)
from smmcl.outputs.manifest import (KILLED_GRACE_S, MANIFEST_NAME, OWN_FILES, Confirmer, OutputError, forget,
                                    read_manifest, record, settle, written)

__all__ = [
    "KILLED_GRACE_S", "MANIFEST_NAME", "OWN_FILES", "Confirmer", "OutputError", "check_apart", "check_claim",
    "check_no_earlier", "check_output_file", "check_path", "claim_folder", "forget", "output_file", "partial_writes",
    "read_manifest", "record", "remove_written", "resolved", "settle", "unique_outputs", "warn_other_outputs",
    "writing", "written",
]
