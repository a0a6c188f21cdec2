"""What runs inside Lava's Python 3.10 environment: the worker and its two Lava processes.

A folder of its own because Lava's compiler imports every module next to a process class while it
searches for process models; nothing here may need more than numpy and Lava.
"""
