"""Data sets (SHD, SSC, built-in synthetic) as binned spike events, plus batching."""
from .batching import batch_indices, iterate_batches
from .binning import time_to_step
from .events import SpikeDataset, from_events
from .registry import DATASETS, load_dataset
from .spike_files import default_data_root, read_spike_file, spike_file_path, write_spike_file
from .synthetic import SyntheticConfig, generate_split

__all__ = ["SpikeDataset", "from_events", "load_dataset", "DATASETS", "SyntheticConfig", "generate_split",
           "read_spike_file", "write_spike_file", "spike_file_path", "default_data_root", "time_to_step",
           "batch_indices", "iterate_batches"]
