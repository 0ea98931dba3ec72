"""An install's files on disk: InstallDir (every path), the journal (one writer, one reader), statuses."""

from hfwizard.store.install_dir import InstallDir, list_install_dirs
from hfwizard.store.journal import Journal, JournalState, StepState, read_state
from hfwizard.store.status import InstallStatus, StepStatus

__all__ = ["InstallDir", "InstallStatus", "Journal", "JournalState", "StepState", "StepStatus",
           "list_install_dirs", "read_state"]
