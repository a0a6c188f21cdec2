"""The comparison report of a pipeline run: accuracy float vs emulator vs Lava, agreement, activity,
cost estimates and figures, rebuilt from the run folder's saved results."""
from .build import build_report, load_summary
from .tables import accuracy_table_text

__all__ = ["build_report", "load_summary", "accuracy_table_text"]
