// The representative-value formula of paper 003 (Eq. 1, Eq. 2) and its regression.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "lowbit/vbq.h"

namespace lowbit {
namespace vbq {

namespace {
double x_of(int i, int N) { return double(i) / double(N - 1) - 0.5; }
double sgn(double u) { return double((u > 0) - (u < 0)); }
}  // namespace

void formula_values(double a, double b, double c, double d, int N, double* out) {
  if (N < 2) throw std::invalid_argument("bins must be >= 2, got " + std::to_string(N));
  if (!(a > 0)) throw std::invalid_argument("a must be > 0");
  for (int i = 0; i < N; ++i) {
    const double u = x_of(i, N) - d;
    out[i] = sgn(u) * b * (std::pow(a, std::abs(u)) - 1.0) + c;
  }
}

namespace {

// Parameters p = (log a, b[, c, d]); the fit works with log a so that a stays > 0.
struct Model {
  const double* v;
  int N;
  bool symmetric;
  int np() const { return symmetric ? 2 : 4; }
  double value(const Eigen::Vector4d& p, int i) const {
    const double u = x_of(i, N) - (symmetric ? 0 : p[3]);
    return sgn(u) * p[1] * (std::exp(p[0] * std::abs(u)) - 1.0) + (symmetric ? 0 : p[2]);
  }
  double sse(const Eigen::Vector4d& p) const {
    double s = 0;
    for (int i = 0; i < N; ++i) s += (value(p, i) - v[i]) * (value(p, i) - v[i]);
    return std::isfinite(s) ? s : std::numeric_limits<double>::infinity();
  }
  // For fixed (log a, d) the model is linear in (b, c): solve them exactly.
  double profile(double alpha, double d, Eigen::Vector4d& p) const {
    double sff = 0, sf = 0, sfv = 0, sv = 0;
    for (int i = 0; i < N; ++i) {
      const double u = x_of(i, N) - d;
      const double f = sgn(u) * std::expm1(alpha * std::abs(u));
      sff += f * f;
      sf += f;
      sfv += f * v[i];
      sv += v[i];
    }
    double b, c = 0;
    if (symmetric) {
      if (sff <= 0) return std::numeric_limits<double>::infinity();
      b = sfv / sff;
    } else {
      const double det = sff * N - sf * sf;
      if (!(det > 1e-300)) return std::numeric_limits<double>::infinity();
      b = (sfv * N - sf * sv) / det;
      c = (sff * sv - sf * sfv) / det;
    }
    p << alpha, b, c, symmetric ? 0 : d;
    return sse(p);
  }
};

// Levenberg-Marquardt with the analytic Jacobian; never returns a worse point.
void polish(const Model& M, Eigen::Vector4d& p, double& best) {
  const int np = M.np();
  double lambda = 1e-3;
  for (int it = 0; it < 200; ++it) {
    Eigen::MatrixXd J(M.N, np);
    Eigen::VectorXd r(M.N);
    for (int i = 0; i < M.N; ++i) {
      const double u = x_of(i, M.N) - (M.symmetric ? 0 : p[3]);
      const double s = sgn(u), t = std::abs(u), e = std::exp(p[0] * t);
      r[i] = M.value(p, i) - M.v[i];
      J(i, 0) = s * p[1] * t * e;
      J(i, 1) = s * (e - 1.0);
      if (!M.symmetric) {
        J(i, 2) = 1.0;
        J(i, 3) = -p[1] * p[0] * e;
      }
    }
    const Eigen::MatrixXd A = J.transpose() * J;
    const Eigen::VectorXd g = J.transpose() * r;
    bool improved = false;
    for (int tries = 0; tries < 20 && !improved; ++tries) {
      Eigen::MatrixXd H = A;
      for (int k = 0; k < np; ++k) H(k, k) += lambda * std::max(A(k, k), 1e-12);
      const Eigen::VectorXd step = H.ldlt().solve(-g);
      Eigen::Vector4d q = p;
      q.head(np) += step;
      const double s = M.sse(q);
      if (s < best) {
        const double gain = best - s;
        p = q;
        best = s;
        lambda = std::max(lambda / 3, 1e-12);
        improved = true;
        if (gain <= 1e-15 * (1 + s)) return;
      } else {
        lambda *= 4;
      }
    }
    if (!improved) return;
  }
}

// Golden-section search of g over [lo, hi] (g unimodal near its grid minimum).
template <class G> double golden(G&& g, double lo, double hi) {
  const double r = 0.6180339887498949;
  double x1 = hi - r * (hi - lo), x2 = lo + r * (hi - lo), f1 = g(x1), f2 = g(x2);
  for (int it = 0; it < 100 && hi - lo > 1e-13 * (1 + std::abs(lo)); ++it) {
    if (f1 <= f2) {
      hi = x2; x2 = x1; f2 = f1; x1 = hi - r * (hi - lo); f1 = g(x1);
    } else {
      lo = x1; x1 = x2; f1 = f2; x2 = lo + r * (hi - lo); f2 = g(x2);
    }
  }
  return f1 <= f2 ? x1 : x2;
}

}  // namespace

FormulaFit fit_formula(const double* v, int N, bool symmetric) {
  if (N < 3) throw std::invalid_argument("values must hold at least 3 entries, got " + std::to_string(N));
  for (int i = 0; i < N; ++i)
    if (!std::isfinite(v[i])) throw std::invalid_argument("values must be finite");
  const Model M{v, N, symmetric};
  Eigen::Vector4d p, best_p = Eigen::Vector4d::Zero();
  double best = std::numeric_limits<double>::infinity();
  // log a over [-20, 20] (a from 2e-9 to 5e8: the paper's fits span 0.3 .. 385).
  const int n_alpha = 401, n_d = symmetric ? 1 : 41;
  for (int j = 0; j < n_d; ++j) {
    const double d = symmetric ? 0 : -0.5 + double(j) / (n_d - 1);
    for (int k = 0; k < n_alpha; ++k) {
      double alpha = -20.0 + 40.0 * k / (n_alpha - 1);
      if (std::abs(alpha) < 1e-6) alpha = 1e-3;  // a = 1 makes V identically c
      const double s = M.profile(alpha, d, p);
      if (s < best) {
        best = s;
        best_p = p;
      }
    }
  }
  if (!std::isfinite(best)) throw std::invalid_argument("could not fit the values (degenerate input)");
  // Refine the profiled SSE between the neighbouring grid points, (log a) then d, a few
  // rounds; LM then polishes every parameter (it never accepts a worse point).
  const double da = 40.0 / (n_alpha - 1), dd = symmetric ? 0 : 1.0 / (n_d - 1);
  for (int round = 0; round < (symmetric ? 1 : 4); ++round) {
    const double d0 = best_p[3], a0 = best_p[0];
    auto by_alpha = [&](double al) { return M.profile(std::abs(al) < 1e-9 ? 1e-9 : al, d0, p); };
    const double al = golden(by_alpha, a0 - da, a0 + da);
    if (by_alpha(al) < best) { best = M.profile(std::abs(al) < 1e-9 ? 1e-9 : al, d0, p); best_p = p; }
    if (symmetric) break;
    const double a1 = best_p[0];
    auto by_d = [&](double d) { return M.profile(a1, d, p); };
    const double dbest = golden(by_d, best_p[3] - dd, best_p[3] + dd);
    if (by_d(dbest) < best) { best = M.profile(a1, dbest, p); best_p = p; }
  }
  polish(M, best_p, best);
  double mean = 0, sst = 0;
  for (int i = 0; i < N; ++i) mean += v[i] / N;
  for (int i = 0; i < N; ++i) sst += (v[i] - mean) * (v[i] - mean);
  FormulaFit f;
  f.a = std::exp(best_p[0]);
  f.b = best_p[1];
  f.c = symmetric ? 0 : best_p[2];
  f.d = symmetric ? 0 : best_p[3];
  f.sse = best;
  f.r2 = sst > 0 ? 1.0 - best / sst : (best == 0 ? 1.0 : 0.0);
  return f;
}

}  // namespace vbq
}  // namespace lowbit
