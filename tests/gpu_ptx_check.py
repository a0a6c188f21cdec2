"""Compiles the fused CUDA kernels to PTX for an H100 (sm_90) with numba's real CUDA target, no GPU
needed (only libNVVM): the device-side typing and code generation that the simulator cannot check.
Run by test_gpu_engine_ptx.py in a process without NUMBA_ENABLE_CUDASIM. Exit 3: no libNVVM."""
import sys

from numba import config, cuda
from numba import types as t

if config.ENABLE_CUDASIM:
    sys.exit("NUMBA_ENABLE_CUDASIM is set: this check needs numba's real CUDA target")
from numba.cuda.cudadrv import nvvm

if not nvvm.is_available():
    print("numba finds no libNVVM here")
    sys.exit(3)

from eventprop_pipeline.eventprop import cuda_kernels as K  # noqa: E402


def arr(dtype, ndim):
    return t.Array(dtype, ndim, "C")


i32, i64, f32, f64 = t.int32, t.int64, t.float32, t.float64
for f in (f32, f64):
    # The argument types cuda_engine launches with (state dtype f; weights float32; VAvg, rw float64).
    forward = (arr(i64, 2), arr(i32, 1), arr(f, 1), i64, arr(f32, 2), arr(f32, 2), arr(f32, 2), f, f, f, f, f,
               arr(f64, 1), arr(f, 2), arr(f, 2), arr(f, 2), arr(f, 2), arr(i32, 3), arr(i32, 2), arr(f, 2),
               arr(i32, 2), arr(f64, 2), arr(i32, 2), arr(f, 3), t.boolean, arr(i32, 1))
    backward = (arr(i64, 2), arr(i32, 1), arr(f, 1), i64, arr(f32, 2), arr(f32, 2), f, f, f, f, f,
                arr(i32, 2), arr(f, 2), arr(i32, 2), arr(f, 2), arr(f64, 1), arr(f, 3), t.boolean, arr(f, 1),
                arr(f, 2), arr(f, 2), arr(f, 2), arr(f, 2), arr(f, 2), arr(f, 2), arr(i32, 2),
                arr(f64, 2), arr(f64, 2), arr(f64, 2))
    for name, kernel, sig in (("forward", K.forward_kernel, forward), ("backward", K.backward_kernel, backward)):
        ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
        assert ".entry" in ptx and "bar.sync" in ptx
        print(f"{name} {f} ok")
ptx, _ = cuda.compile_ptx(K.zero_kernel.py_func, (arr(f64, 2),) * 3, cc=(9, 0))
print("zero ok")
