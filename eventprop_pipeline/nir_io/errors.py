"""The error of a NIR graph this model cannot represent (the CLI prints it as one line)."""
from eventprop_core.errors import NetworkFileError


class NirGraphError(NetworkFileError):
    """A NIR file is unreadable, or its graph has a node, shape or parameter this model cannot represent."""
