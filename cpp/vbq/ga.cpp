// Genetic algorithm over sorted codebooks (paper 003, Sec. III-B): elite + roulette
// reproduction, centred crossover, neighbour-bounded mutation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "lowbit/vbq.h"

namespace lowbit {
namespace vbq {

void ga_repair(double* u, int m, double lo, double hi, bool strict_lo) {
  std::sort(u, u + m);
  // Values must stay distinct for a codebook, also once copied to float32 (24-bit
  // mantissa): a millionth of the range or of the largest magnitude, whichever is larger.
  const double gap = 1e-6 * std::max(hi - lo, std::max(std::abs(lo), std::abs(hi)));
  const double first = strict_lo ? lo + gap : lo;
  for (int i = 0; i < m; ++i) {
    double lower = i == 0 ? first : u[i - 1] + gap;
    u[i] = std::min(std::max(u[i], lower), hi);
  }
  for (int i = m - 1; i >= 0; --i) {  // values pushed past hi come back down
    const double upper = i == m - 1 ? hi : u[i + 1] - gap;
    if (u[i] > upper) u[i] = upper;
  }
}

namespace {

// The `count` indices of u nearest to center: a contiguous run [begin, begin + count).
int nearest_run(const double* u, int m, double center, int count) {
  int right = int(std::lower_bound(u, u + m, center) - u), left = right - 1;
  for (int taken = 0; taken < count; ++taken) {
    const bool take_left =
        right >= m || (left >= 0 && center - u[left] <= u[right] - center);
    take_left ? --left : ++right;
  }
  return left + 1;
}

void exchange(const double* keep, int bk, const double* give, int bg, int m, int count,
              double* child) {
  int j = 0;
  for (int i = 0; i < m; ++i)
    if (i < bk || i >= bk + count) child[j++] = keep[i];
  for (int i = 0; i < count; ++i) child[j++] = give[bg + i];
}

}  // namespace

void ga_crossover(const double* p1, const double* p2, int m, double center, int count,
                  double lo, double hi, bool strict_lo, double* c1, double* c2) {
  count = std::max(1, std::min(count, m));
  const int b1 = nearest_run(p1, m, center, count), b2 = nearest_run(p2, m, center, count);
  exchange(p1, b1, p2, b2, m, count, c1);
  exchange(p2, b2, p1, b1, m, count, c2);
  ga_repair(c1, m, lo, hi, strict_lo);
  ga_repair(c2, m, lo, hi, strict_lo);
}

void ga_mutate(double* u, int m, int index, double r, double lo, double hi, bool strict_lo) {
  const double below = index == 0 ? lo : u[index - 1];
  const double above = index == m - 1 ? hi : u[index + 1];
  u[index] = below + r * (above - below);
  ga_repair(u, m, lo, hi, strict_lo);
}

std::vector<double> roulette_weights(const double* f, int n) {
  // -inf marks a genome the fitness rejects: it is never drawn.
  double fmin = std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i)
    if (std::isfinite(f[i])) fmin = std::min(fmin, f[i]);
  std::vector<double> w(n, 0.0);
  for (int i = 0; i < n; ++i)
    if (std::isfinite(f[i])) w[i] = fmin >= 0 ? f[i] : f[i] - fmin;
  if (std::accumulate(w.begin(), w.end(), 0.0) <= 0)  // no preference: every usable genome
    for (int i = 0; i < n; ++i) w[i] = std::isfinite(f[i]) || fmin == std::numeric_limits<double>::infinity();
  return w;
}

namespace {

// Free values <-> full codebook. Symmetric genomes keep only their positive half (the
// middle value of an odd K is 0), so the operators cannot break the symmetry.
struct Layout {
  int K, m;
  bool symmetric;
  double lo, hi;
  Layout(const GAConfig& c) : K(c.bins), symmetric(c.symmetric) {
    if (symmetric) {
      m = K / 2;
      lo = 0;
      hi = std::max(std::abs(c.lo), std::abs(c.hi));
    } else {
      m = K;
      lo = c.lo;
      hi = c.hi;
    }
  }
  void expand(const double* u, double* v) const {
    if (!symmetric) {
      std::copy(u, u + K, v);
      return;
    }
    for (int i = 0; i < m; ++i) {
      v[K - m + i] = u[i];
      v[m - 1 - i] = -u[i];
    }
    if (K % 2) v[m] = 0.0;
  }
  void free_values(const double* v, double* u) const {
    std::copy(v + (K - m), v + K, u);
  }
};

void check_config(const GAConfig& c) {
  auto bad = [](const std::string& msg) { throw std::invalid_argument(msg); };
  if (c.bins < 2 || c.bins > 256) bad("bins must be in [2, 256], got " + std::to_string(c.bins));
  if (c.population < 2 || c.population > 100000)
    bad("population must be in [2, 100000], got " + std::to_string(c.population));
  if (c.generations < 0) bad("generations must be >= 0, got " + std::to_string(c.generations));
  if (!(std::isfinite(c.lo) && std::isfinite(c.hi) && c.lo < c.hi))
    bad("bounds must be finite with lo < hi");
  if (c.symmetric && std::max(std::abs(c.lo), std::abs(c.hi)) <= 0)
    bad("symmetric bounds need max(|lo|, |hi|) > 0");
  const double rates[3] = {c.r_reproduce, c.r_crossover, c.r_mutate};
  for (double r : rates)
    if (!(r >= 0 && r <= 1)) bad("rates must each be in [0, 1]");
  if (std::abs(rates[0] + rates[1] + rates[2] - 1) > 1e-9)
    bad("rates (reproduce, crossover, mutate) must sum to 1");
}

void evaluate(const BatchFitness& fitness, const std::vector<double>& genomes, int first, int n,
              int K, std::vector<double>& out) {
  if (n <= 0) return;
  fitness(genomes.data() + size_t(first) * K, n, K, out.data() + first);
  for (int i = first; i < first + n; ++i)
    if (std::isnan(out[i]) || out[i] == std::numeric_limits<double>::infinity())
      throw std::invalid_argument("fitness returned " + std::string(std::isnan(out[i]) ? "NaN" : "+inf") +
                                  " for genome " + std::to_string(i - first) +
                                  " of the population it was given (finite values or -inf expected)");
}

}  // namespace

GAResult ga_run(const GAConfig& cfg, const BatchFitness& fitness, const Progress& progress,
                const double* init, int n_init) {
  check_config(cfg);
  const Layout L(cfg);
  const int P = cfg.population, K = L.K, m = L.m;
  Rng rng(cfg.seed);

  // Initial genomes: uniform random free values (the paper), or the caller's.
  std::vector<double> pop(size_t(P) * K), u(m), u2(m), c1(m), c2(m);
  for (int p = 0; p < P; ++p) {
    if (p < n_init) {
      L.free_values(init + size_t(p) * K, u.data());
    } else {
      for (int i = 0; i < m; ++i) u[i] = rng.uniform(L.lo, L.hi);
    }
    ga_repair(u.data(), m, L.lo, L.hi, L.symmetric);
    L.expand(u.data(), &pop[size_t(p) * K]);
  }
  std::vector<double> fit(P);
  evaluate(fitness, pop, 0, P, K, fit);

  GAResult res;
  res.evaluations = P;
  auto record = [&](int gen) {
    const int best = int(std::max_element(fit.begin(), fit.end()) - fit.begin());
    const double mean = std::accumulate(fit.begin(), fit.end(), 0.0) / P;
    res.best_history.push_back(fit[best]);
    res.mean_history.push_back(mean);
    return progress ? progress(gen, fit[best], mean) : true;
  };
  bool go_on = record(0);

  const int n_rep = std::max(1, int(std::lround(cfg.r_reproduce * P)));
  const int n_cross = std::min(P - n_rep, int(std::lround(cfg.r_crossover * P)));
  std::vector<double> next(pop.size()), next_fit(P);
  for (int gen = 1; gen <= cfg.generations && go_on; ++gen) {
    auto row = [&](std::vector<double>& v, int p) { return &v[size_t(p) * K]; };
    // 1) Reproduction: the best genome, then roulette among the rest (copies keep their fitness).
    const int best = int(std::max_element(fit.begin(), fit.end()) - fit.begin());
    std::vector<double> w = roulette_weights(fit.data(), P);
    w[best] = 0;
    double total = std::accumulate(w.begin(), w.end(), 0.0);
    if (total <= 0) {  // the rest all weigh 0: any other usable genome, else the elite again
      for (int i = 0; i < P; ++i) w[i] = i != best && std::isfinite(fit[i]);
      total = std::accumulate(w.begin(), w.end(), 0.0);
      if (total <= 0) w[best] = total = 1;
    }
    int last = P - 1;  // rounding can run past the end: fall back to the last drawable one
    while (w[last] <= 0) --last;
    int k = 0;
    std::copy(row(pop, best), row(pop, best) + K, row(next, k));
    next_fit[k++] = fit[best];
    for (; k < n_rep; ++k) {
      double r = rng.uniform() * total;
      int pick = 0;
      while (pick < last && (w[pick] <= 0 || (r -= w[pick]) >= 0)) ++pick;
      std::copy(row(pop, pick), row(pop, pick) + K, row(next, k));
      next_fit[k] = fit[pick];
    }
    const int first_new = k;
    // 2) Centred crossover on random pairs of the current generation.
    while (k < n_rep + n_cross) {
      const int a = rng.integer(P);
      int b = rng.integer(P - 1);
      b += b >= a;
      const double center = rng.uniform(L.lo, L.hi);
      const int count = 1 + rng.integer(std::max(1, m - 1));
      L.free_values(row(pop, a), u.data());
      L.free_values(row(pop, b), u2.data());
      ga_crossover(u.data(), u2.data(), m, center, count, L.lo, L.hi, L.symmetric, c1.data(),
                   c2.data());
      L.expand(c1.data(), row(next, k++));
      if (k < n_rep + n_cross) L.expand(c2.data(), row(next, k++));
    }
    // 3) Mutation: copies of random genomes with one value moved between its neighbours.
    for (; k < P; ++k) {
      L.free_values(row(pop, rng.integer(P)), u.data());
      const int index = rng.integer(m);
      double r = rng.uniform();
      if (r == 0) r = 0.5;  // stay strictly between the neighbours
      ga_mutate(u.data(), m, index, r, L.lo, L.hi, L.symmetric);
      L.expand(u.data(), row(next, k));
    }
    evaluate(fitness, next, first_new, P - first_new, K, next_fit);
    res.evaluations += P - first_new;
    pop.swap(next);
    fit.swap(next_fit);
    go_on = record(gen);
  }
  const int best = int(std::max_element(fit.begin(), fit.end()) - fit.begin());
  res.best.assign(&pop[size_t(best) * K], &pop[size_t(best) * K] + K);
  res.best_fitness = fit[best];
  res.population = pop;
  res.fitness = fit;
  return res;
}

}  // namespace vbq
}  // namespace lowbit
