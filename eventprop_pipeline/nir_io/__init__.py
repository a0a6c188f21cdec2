"""NIR (Neuromorphic Intermediate Representation) export and import of the float network (docs/nir.md).

One concept per module: `mapping` (this model's parameters <-> NIR CubaLIF/CubaLI parameters, per
convention), `export` (Network -> NIR graph and file), `detect` (which convention a graph from another
tool follows), `importer` (NIR graph or file -> Network, with errors naming the node).
"""
from .errors import NirGraphError
from .export import network_to_graph, write_nir
from .importer import graph_to_network, read_nir
from .mapping import CONVENTIONS

__all__ = ["CONVENTIONS", "NirGraphError", "graph_to_network", "network_to_graph", "read_nir", "write_nir"]
