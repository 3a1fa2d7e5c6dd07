// Native objectives for the VBQ searches: weight MSE and layer-output MSE, evaluated for a
// whole population at once with OpenMP across genomes.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lowbit/common.h"
#include "lowbit/kernels.h"
#include "lowbit/vbq.h"

namespace lowbit {
namespace vbq {

void check_codebook(const double* cb, int K, const char* what) {
  if (K < 2 || K > 256)
    throw std::invalid_argument(std::string(what) + " must hold 2..256 values, got " + std::to_string(K));
  for (int j = 0; j < K; ++j) {
    if (!std::isfinite(cb[j])) throw std::invalid_argument(std::string(what) + " must be finite");
    if (j && !(cb[j] > cb[j - 1]))
      throw std::invalid_argument(std::string(what) + " must be strictly increasing");
  }
}

void Objective::evaluate_many(const double* genomes, int n, int K, double* out) const {
  for (int i = 0; i < n; ++i) check_codebook(genomes + size_t(i) * K, K, "codebook");
  if (n == 1) {  // one genome: let Eigen use the threads inside it
    out[0] = eval(genomes, K);
    return;
  }
#pragma omp parallel for num_threads(std::min(n, num_threads())) schedule(dynamic, 1)
  for (int i = 0; i < n; ++i) out[i] = eval(genomes + size_t(i) * K, K);
}

namespace {

// Bin boundary in the sorted weights with the quantizer's tie rule (see lloyd.cpp).
int64_t boundary(const std::vector<double>& s, double m) {
  auto it = m >= 0 ? std::lower_bound(s.begin(), s.end(), m) : std::upper_bound(s.begin(), s.end(), m);
  return int64_t(it - s.begin());
}

class WeightMSE final : public Objective {
 public:
  WeightMSE(const double* w, int64_t n) : s_(w, w + n), s1_(n + 1, 0.0L), s2_(n + 1, 0.0L) {
    std::sort(s_.begin(), s_.end());
    for (int64_t i = 0; i < n; ++i) {
      s1_[i + 1] = s1_[i] + s_[i];
      s2_[i + 1] = s2_[i] + (long double)s_[i] * s_[i];
    }
  }
  // Each bin contributes sum (x - c)^2 = S2 - 2 c S1 + c^2 n over its run of sorted weights.
  double eval(const double* c, int K) const override {
    const int64_t n = int64_t(s_.size());
    long double total = 0;
    int64_t begin = 0;
    for (int j = 0; j < K; ++j) {
      const int64_t end = j + 1 < K ? boundary(s_, c[j] * 0.5 + c[j + 1] * 0.5) : n;
      if (end > begin) {
        const long double cj = c[j], S1 = s1_[end] - s1_[begin], S2 = s2_[end] - s2_[begin];
        total += std::max(0.0L, S2 - 2 * cj * S1 + cj * cj * (end - begin));
      }
      begin = std::max(begin, end);
    }
    return double(total / n);
  }
  double energy() const override { return double(s2_.back() / (long double)s_.size()); }

 private:
  std::vector<double> s_;
  std::vector<long double> s1_, s2_;
};

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class LayerOutputMSE final : public Objective {
 public:
  LayerOutputMSE(const double* W, int64_t out, int64_t in, const float* X, int64_t rows)
      : W_(Eigen::Map<const RowMat>(W, out, in)), direct_(rows < in) {
    // Few rows: keep X and multiply directly. Many rows: factor G = X^T X once as
    // P^T L D L^T P (LDLT); then e^T G e = sum_i d_i ((L^T P e)_i)^2 costs a triangular
    // product, out * in^2 / 2, whatever the number of calibration rows.
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
        Xf(X, rows, in);
    if (direct_) {
      X_ = Xf.cast<double>();
      return;
    }
    Eigen::MatrixXd G = Eigen::MatrixXd::Zero(in, in);
    const int64_t chunk = 4096;
    for (int64_t r = 0; r < rows; r += chunk) {
      const Eigen::MatrixXd Xc = Xf.middleRows(r, std::min(chunk, rows - r)).cast<double>();
      G.selfadjointView<Eigen::Lower>().rankUpdate(Xc.transpose());
    }
    G.triangularView<Eigen::StrictlyUpper>() = G.transpose();
    const Eigen::LDLT<Eigen::MatrixXd> ldlt(G);
    L_ = ldlt.matrixL();
    d_ = ldlt.vectorD();
    // Quantization is elementwise, so permuting W's columns once (P e) costs nothing later.
    Eigen::VectorXi perm = Eigen::VectorXi::LinSpaced(int(in), 0, int(in) - 1);
    perm = ldlt.transpositionsP() * perm;
    const RowMat Wc = W_;
    for (int64_t i = 0; i < in; ++i) W_.col(i) = Wc.col(perm[i]);
  }
  double eval(const double* c, int K) const override {
    RowMat Q(W_.rows(), W_.cols());
    if (!kernels::codebook_quantize<double>(W_.data(), 1, W_.size(), c, K, nullptr, Q.data(), nullptr))
      throw std::invalid_argument("layer weights must be finite");
    const RowMat E = W_ - Q;
    return quadratic(E);
  }
  double energy() const override { return quadratic(W_); }
  double quadratic(const RowMat& E) const {  // ||X E^T||^2 (columns in W_'s order)
    if (direct_) return (X_ * E.transpose()).squaredNorm();
    RowMat Z(E.rows(), E.cols());
    Z.noalias() = E * L_.triangularView<Eigen::UnitLower>();
    return (Z.array().square().rowwise() * d_.transpose().array()).sum();
  }

 private:
  RowMat W_, X_;
  Eigen::MatrixXd L_;
  Eigen::VectorXd d_;
  bool direct_;
};

}  // namespace

std::unique_ptr<Objective> make_weight_mse(const double* w, int64_t n) {
  if (n < 1) throw std::invalid_argument("w must not be empty");
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(w[i])) throw std::invalid_argument("w must be finite (found NaN or Inf)");
  return std::make_unique<WeightMSE>(w, n);
}

std::unique_ptr<Objective> make_layer_output_mse(const double* W, int64_t out, int64_t in,
                                                 const float* X, int64_t rows) {
  if (out < 1 || in < 1 || rows < 1) throw std::invalid_argument("weight and activations must not be empty");
  for (int64_t i = 0; i < out * in; ++i)
    if (!std::isfinite(W[i])) throw std::invalid_argument("weight must be finite (found NaN or Inf)");
  for (int64_t i = 0; i < rows * in; ++i)
    if (!std::isfinite(X[i])) throw std::invalid_argument("activations must be finite (found NaN or Inf)");
  return std::make_unique<LayerOutputMSE>(W, out, in, X, rows);
}

}  // namespace vbq
}  // namespace lowbit
