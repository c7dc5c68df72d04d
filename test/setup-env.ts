// Pins LibTorch and OpenBLAS to one thread before the addon loads, as the Python reference does, so that
// results are bit-for-bit comparable (OpenBLAS reads its setting only when the library loads).
process.env.OPENBLAS_NUM_THREADS = '1';
process.env.OMP_NUM_THREADS = '1';
