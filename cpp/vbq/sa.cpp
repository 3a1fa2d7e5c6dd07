// Simulated annealing on the (a, b) of Eq. 2 for every layer (paper 003, Sec. IV-B).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "lowbit/vbq.h"

namespace lowbit {
namespace vbq {

double sa_acceptance(double e, double e_new, double temperature, double scale) {
  if (e_new >= e) return 1.0;
  if (!std::isfinite(e_new)) return 0.0;
  return std::exp((e_new - e) * scale / temperature);
}

namespace {

void check_config(const SAConfig& c) {
  auto bad = [](const std::string& msg) { throw std::invalid_argument(msg); };
  if (c.layers < 1) bad("layers must be >= 1, got " + std::to_string(c.layers));
  if (c.bins < 2 || c.bins > 256) bad("bins must be in [2, 256], got " + std::to_string(c.bins));
  if (int(c.a0.size()) != c.layers || int(c.b0.size()) != c.layers)
    bad("a0 and b0 need one value per layer");
  for (int l = 0; l < c.layers; ++l)
    if (!(c.a0[l] > 0 && std::isfinite(c.a0[l]) && std::isfinite(c.b0[l]) && c.b0[l] != 0))
      bad("a0 must be > 0 and b0 finite and non-zero, layer " + std::to_string(l));
  if (!(c.t0 > 0 && std::isfinite(c.t0))) bad("t0 must be > 0");
  if (!(c.cooling > 0 && c.cooling < 1)) bad("cooling must be in (0, 1)");
  if (!(c.scale > 0 && std::isfinite(c.scale))) bad("scale must be > 0");
  if (c.patience < 1) bad("patience must be >= 1");
  if (c.max_iterations < 1) bad("max_iterations must be >= 1");
}

// Eq. 2 is odd in x, so (a, b) and (a, -b) give the same set of values, in opposite
// orders; the codebook is that set sorted. A neighbour therefore takes the sign of b that
// lists them increasing, sign(a - 1): a move of a across 1 goes from the a > 1 family
// (values dense near zero) to the a < 1 family (dense at the ends) instead of being
// skipped, so the search reaches both. b = 0 or a = 1 stay unusable.
double with_increasing_sign(double a, double b) { return a < 1 ? -std::abs(b) : std::abs(b); }

// Eq. 2 gives a usable codebook only when its values strictly increase.
bool usable(double a, double b, int N, std::vector<double>& tmp) {
  if (!(a > 0) || !std::isfinite(a) || !std::isfinite(b)) return false;
  formula_values(a, b, 0, 0, N, tmp.data());
  for (int i = 0; i < N; ++i)
    if (!std::isfinite(tmp[i]) || (i && !(tmp[i] > tmp[i - 1]))) return false;
  return true;
}

}  // namespace

SAResult sa_run(const SAConfig& cfg, const SAFitness& fitness, const Progress& progress) {
  check_config(cfg);
  const int L = cfg.layers;
  Rng rng(cfg.seed);
  std::vector<double> state(2 * L), tmp(cfg.bins);
  for (int l = 0; l < L; ++l) {
    state[2 * l] = cfg.a0[l];
    state[2 * l + 1] = cfg.b0[l];
    if (!usable(cfg.a0[l], cfg.b0[l], cfg.bins, tmp))
      throw std::invalid_argument("the start (a0, b0) of layer " + std::to_string(l) +
                                  " gives no increasing codebook: need (a - 1) * b > 0");
  }
  SAResult res;
  auto call = [&](int layer, const double* ab, int n, double* out) {
    fitness(layer, ab, n, state.data(), out);
    res.evaluations += n;
    for (int i = 0; i < n; ++i)
      if (std::isnan(out[i]))
        throw std::invalid_argument("fitness returned NaN for layer " + std::to_string(layer));
  };
  double e;
  call(0, &state[0], 1, &e);
  res.best_state = state;
  res.best_fitness = e;

  double T = cfg.t0;
  int still = 0;  // consecutive iterations in which no layer moved
  for (int it = 0; it < cfg.max_iterations; ++it) {
    bool moved = false;
    for (int l = 0; l < L; ++l) {
      const double a = state[2 * l], b = state[2 * l + 1];
      const double da = rng.uniform(-0.5 * a * T, 0.5 * a * T);
      const double db = rng.uniform(-0.5 * b * T, 0.5 * b * T);
      const double a1 = a + da;
      const double cand[6] = {a1, with_increasing_sign(a1, b), a, with_increasing_sign(a, b + db),
                              a1, with_increasing_sign(a1, b + db)};
      const double u = rng.uniform();  // drawn every time: the stream does not depend on e
      // Unusable neighbours (a = 1 or b = 0: values not distinct) are never taken.
      double ab[6], got[3];
      int n = 0;
      for (int k = 0; k < 3; ++k)
        if (usable(cand[2 * k], cand[2 * k + 1], cfg.bins, tmp)) {
          ab[2 * n] = cand[2 * k];
          ab[2 * n + 1] = cand[2 * k + 1];
          ++n;
        }
      if (n == 0) continue;
      call(l, ab, n, got);
      // The best of the three neighbours competes with the current state.
      const int pick = int(std::max_element(got, got + n) - got);
      const double e_new = got[pick];
      const bool accept = e_new >= e || u < sa_acceptance(e, e_new, T, cfg.scale);
      res.trace.push_back({it, l, ab[2 * pick], ab[2 * pick + 1], e, e_new, T, u, accept});
      if (accept) {
        moved = moved || ab[2 * pick] != a || ab[2 * pick + 1] != b;
        state[2 * l] = ab[2 * pick];
        state[2 * l + 1] = ab[2 * pick + 1];
        e = e_new;
        if (e > res.best_fitness) {
          res.best_fitness = e;
          res.best_state = state;
        }
      }
    }
    res.fitness_history.push_back(e);
    res.temperature_history.push_back(T);
    res.iterations = it + 1;
    T *= cfg.cooling;
    still = moved ? 0 : still + 1;
    if (still >= cfg.patience) {
      res.converged = true;
      break;
    }
    if (progress && !progress(it, res.best_fitness, e)) break;
  }
  res.state = state;
  res.fitness = e;
  return res;
}

}  // namespace vbq
}  // namespace lowbit
