// One place decides how many threads native kernels use.
#include <omp.h>
#include <sched.h>

#include <atomic>
#include <cstdlib>

#include "lowbit/common.h"

namespace lowbit {
namespace {

int default_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  // Debian's torch leaves omp_get_max_threads() at 1; use the CPUs we may run on.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

std::atomic<int> g_threads{0};

}  // namespace

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_threads();
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(n > 0 ? n : default_threads()); }

int current_cpu() { return sched_getcpu(); }

void leave_cpu(int cpu) {
  if (cpu < 0 || omp_get_thread_num() == 0 || sched_getcpu() != cpu) return;
  cpu_set_t mine, others;
  if (sched_getaffinity(0, sizeof(mine), &mine) != 0 || !CPU_ISSET(cpu, &mine) || CPU_COUNT(&mine) < 2)
    return;  // nowhere else to go
  others = mine;
  CPU_CLR(cpu, &others);
  // Moving off `cpu` happens at once; the old mask comes straight back, so the thread
  // stays where it landed only because the scheduler keeps woken threads on their CPU.
  if (sched_setaffinity(0, sizeof(others), &others) == 0) sched_setaffinity(0, sizeof(mine), &mine);
}

}  // namespace lowbit
