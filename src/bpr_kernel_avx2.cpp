// The kernel built for CPUs with AVX2 and FMA (x86-64, GCC or Clang), in the
// namespace skbpr::avx2; module.cpp uses it when the CPU has both.
//
// Every standard header is included before the target pragma: the
// templates and inline functions they define (std::vector, std::log...) then
// keep the baseline instruction set, so the linker may merge them with the
// baseline build's copies without ever running AVX2 code on a CPU that
// lacks it. Only this file's own functions get AVX2 and FMA.
#include <cmath>
#include <cstdint>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "problem.hpp"

#if defined(SKBPR_WITH_AVX2)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define SKBPR_ISA avx2
#include "bpr_kernel.cpp"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
