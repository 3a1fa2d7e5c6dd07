// Variable bin-size quantization (paper 003): the GA and SA searches, the V(x) formula
// and its regression, Lloyd-Max, and native objectives. Torch-free, compiled once
// (cpp/vbq/); the hot arithmetic goes through lowbit::kernels and Eigen.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

namespace lowbit {
namespace vbq {

// One generator for every stochastic routine: mt19937_64's sequence is fixed by the C++
// standard, and uniform() is built from its bits (not std::uniform_real_distribution,
// whose algorithm differs between standard libraries), so a seed means one run anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double uniform() { return double(gen_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int integer(int n) { return int(uniform() * n); }  // [0, n)
 private:
  std::mt19937_64 gen_;
};

// Fitness of n candidates (row-major [n x K] codebooks) written to out[n]; larger is
// better, -inf rejects a candidate, NaN and +inf are errors. A Python callable is wrapped into one of these by the bindings.
using BatchFitness = std::function<void(const double* genomes, int n, int K, double* out)>;
// Called after each generation / iteration with (index, best, mean); return false to stop.
using Progress = std::function<bool(int, double, double)>;

// ---- genetic algorithm (ga.cpp) ----------------------------------------------------------
struct GAConfig {
  int bins = 16;               // K values per genome, 2..256
  int population = 50;         // 2..100000
  int generations = 100;       // new generations after the initial one
  double lo = -1, hi = 1;      // bounds of every value (symmetric: [-max(|lo|,|hi|), +])
  bool symmetric = false;      // v[K-1-i] = -v[i]
  double r_reproduce = 0.3;    // elite + roulette copies (R_r)
  double r_crossover = 0.5;    // centred-crossover children (2 R_c)
  double r_mutate = 0.2;       // mutants (R_m); the three rates sum to 1
  uint64_t seed = 0;
};
struct GAResult {
  std::vector<double> best;                         // [K]
  double best_fitness = 0;
  std::vector<double> best_history, mean_history;   // per generation, initial one first
  std::vector<double> population, fitness;          // the final population [P x K], [P]
  int evaluations = 0;
};
// init: optional [n_init x K] genomes that replace the first random ones (repaired).
GAResult ga_run(const GAConfig& cfg, const BatchFitness& fitness, const Progress& progress,
                const double* init = nullptr, int n_init = 0);

// The operators, on the free values u (asymmetric: the whole genome; symmetric: its
// positive half) with bounds [lo, hi], exposed so tests can compare them with the
// reference. All keep u sorted, strictly increasing (at least 1e-6 of the bounds' scale
// apart, so float32 copies stay distinct) and inside the bounds.
// strict_lo: u[0] must be > lo (the positive half of a symmetric genome excludes 0).
void ga_repair(double* u, int m, double lo, double hi, bool strict_lo);
// Paper's centred crossover: in each parent the `count` values nearest to `center`
// (a contiguous run) are swapped with the other parent's run; the children are re-sorted.
void ga_crossover(const double* p1, const double* p2, int m, double center, int count,
                  double lo, double hi, bool strict_lo, double* c1, double* c2);
// Moves u[index] to a point r in (0, 1) of the way between its neighbours (or bounds).
void ga_mutate(double* u, int m, int index, double r, double lo, double hi, bool strict_lo);
// Roulette weights: fitness itself when all >= 0 (the paper), else fitness - min;
// a genome with fitness -inf (rejected) gets weight 0.
std::vector<double> roulette_weights(const double* f, int n);

// ---- the formula (fit.cpp) -----------------------------------------------------------------
// V(x) = sign(x - d) * b * (a^|x - d| - 1) + c at x_i = i / (N - 1) - 1/2, i = 0..N-1.
void formula_values(double a, double b, double c, double d, int N, double* out);
struct FormulaFit {
  double a = 1, b = 0, c = 0, d = 0, r2 = 0, sse = 0;
};
// Least-squares fit of sorted values onto V (symmetric: c = d = 0): for fixed (a, d) the
// model is linear in (b, c), so a dense grid over (log a, d) with b, c solved exactly
// finds the basin and Levenberg-Marquardt polishes all parameters.
FormulaFit fit_formula(const double* v, int N, bool symmetric);

// ---- simulated annealing (sa.cpp) ------------------------------------------------------------
struct SAConfig {
  int layers = 1, bins = 16;
  std::vector<double> a0, b0;  // start per layer
  double t0 = 1.0, cooling = 0.95, scale = 100.0;
  int patience = 30;           // stop after this many iterations in which nothing moved
  int max_iterations = 1000;   // and never run longer than this
  uint64_t seed = 0;
};
// e' of n candidate (a, b) pairs [n x 2] for `layer`, every other layer at state [L x 2].
using SAFitness = std::function<void(int layer, const double* ab, int n, const double* state,
                                     double* out)>;
struct SAStep {  // one acceptance decision, for tests and plots
  int iteration, layer;
  double a, b, e, e_new, temperature, u;
  bool accepted;
};
struct SAResult {
  std::vector<double> state, best_state;  // [L x 2] final and best seen
  double fitness = 0, best_fitness = 0;
  std::vector<double> fitness_history, temperature_history;  // per iteration
  std::vector<SAStep> trace;
  int iterations = 0, evaluations = 0;
  bool converged = false;  // stopped by patience (not by max_iterations / progress)
};
SAResult sa_run(const SAConfig& cfg, const SAFitness& fitness, const Progress& progress);
// The paper's acceptance probability P(e, e', T).
double sa_acceptance(double e, double e_new, double temperature, double scale);

// ---- Lloyd-Max (lloyd.cpp) --------------------------------------------------------------------
// The K-level MSE-optimal quantizer of w (1-D k-means). Starts from the quantiles
// (i + 1/2) / K of w unless init is given; stops when no value moves more than
// tol * (max - min) or after max_iter iterations. Returns the iterations used.
int lloyd_max(const double* w, int64_t n, int K, int max_iter, double tol, const double* init,
              double* out);

// ---- native objectives (objectives.cpp) -------------------------------------------------------
// Lower is better. eval() is thread-safe; evaluate_many spreads genomes over OpenMP threads.
class Objective {
 public:
  virtual ~Objective() = default;
  virtual double eval(const double* codebook, int K) const = 0;
  // The objective's scale: mean(w^2) or ||X W^T||^2 (what a zero codebook would cost).
  virtual double energy() const = 0;
  void evaluate_many(const double* genomes, int n, int K, double* out) const;
};
// mean((Q(w) - w)^2) over the weights, from prefix sums of the sorted weights (O(K log n)).
std::unique_ptr<Objective> make_weight_mse(const double* w, int64_t n);
// ||X W^T - X Q(W)^T||_F^2 for W [out x in] and calibration rows X [rows x in], as
// trace(E G E^T) with E = W - Q(W) and the Gram matrix G = X^T X computed once.
std::unique_ptr<Objective> make_layer_output_mse(const double* W, int64_t out, int64_t in,
                                                 const float* X, int64_t rows);

void check_codebook(const double* cb, int K, const char* what);  // finite, strictly increasing

}  // namespace vbq
}  // namespace lowbit
