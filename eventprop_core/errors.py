"""User-facing errors: the CLI prints their message on one line, without a traceback."""


class PipelineError(Exception):
    """Base class of every error caused by the user's input (files, options, data)."""


class NetworkFileError(PipelineError):
    """A network file is missing, truncated, corrupt or inconsistent."""


class DataError(PipelineError):
    """A data set is missing, unreadable or malformed."""


class ConfigError(PipelineError):
    """A configuration value or command-line option is invalid."""


class RunDirError(PipelineError):
    """A run folder holds an unrelated or unreadable run, or a needed result is missing."""


class OutputWriteError(PipelineError):
    """An output file cannot be written (disk full, read-only, permission denied); nothing changed."""


class Interrupted(PipelineError):
    """Ctrl-C: the command stopped cleanly; what it finished is kept (exit status 130)."""

    exit_code = 130
