/* MKL's view of an AMD Zen processor, on an Intel one (LD_PRELOAD; tests/bench/test_numerics.py).
 *
 * MKL decides its vendor-specific code paths by asking these functions of its own service layer,
 * which PyTorch's libtorch_cpu.so exports and calls through its PLT, so a preloaded library
 * answers in their place: not Intel, and Zen whenever MKL's conditional numerical
 * reproducibility (CNR) branch is off or AUTO, as MKL's own mkl_serv_cpuiszen answers on an AMD
 * processor with AVX2 (it reads the branch first). With it, this machine computes the MKL probe
 * digests recorded on a 2-core AMD EPYC (results/reference/perf_numerics_cpu.md): c5691fa6 native
 * and c4906caa under MKL_CBWR=COMPATIBLE.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

int mkl_serv_intel_cpu_true(void) { return 0; }
int mkl_serv_intel_cpu(void) { return 0; }

int mkl_serv_cpuiszen(void) {
    static int (*branch)(int);
    if (!branch) {
        void *torch = dlopen("libtorch_cpu.so", RTLD_NOW | RTLD_NOLOAD);
        branch = torch ? (int (*)(int))dlsym(torch, "mkl_serv_cbwr_get") : 0;
    }
    int value = branch ? branch(1) : 1; /* MKL_CBWR_BRANCH: 1 off, 2 AUTO, 3 COMPATIBLE, 10 AVX2 ... */
    return value == 1 || value == 2;
}
