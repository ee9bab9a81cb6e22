"""Whether a CUDA device is usable here: libcuda.so.1 loads, initializes
and reports at least one device. Shared by lit.cfg.py (the `cuda-device`
feature) and tests whose expectations depend on it."""
import ctypes


def has_cuda_device():
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    return (cuda.cuInit(0) == 0 and
            cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and
            count.value > 0)
