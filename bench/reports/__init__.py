"""Reports: tables and plots from records (`report`), the published figures and the
reproduction table (`literature`), the protocol comparison (`verdict`)."""
