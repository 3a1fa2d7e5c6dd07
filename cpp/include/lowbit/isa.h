// Included by kernel sources: opens the namespace of the instruction set being built.
#pragma once
#ifndef LOWBIT_ISA
#error "kernel sources are compiled with -DLOWBIT_ISA=generic, avx2 or avx512"
#endif
#define LOWBIT_ISA_BEGIN namespace lowbit { namespace LOWBIT_ISA {
#define LOWBIT_ISA_END } }
