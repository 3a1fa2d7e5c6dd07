// lowbit._C's VBQ part (paper 003): optimizers, formula, Lloyd-Max, native objectives.
// Native work runs without the GIL; it is taken back only to call a Python fitness or
// progress callable (with a whole population, so the caller can batch).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "lowbit/vbq.h"

namespace py = pybind11;
using namespace lowbit::vbq;

namespace {

using DArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using FArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A Python exception raised inside a callback: its error indicator is restored while we
// still hold the GIL, and re-raised once the native loop has unwound back to Python.
struct PythonErrorPending {};

template <class F> auto with_python(F&& f) {
  try {
    return f();
  } catch (py::error_already_set& e) {
    e.restore();
    throw PythonErrorPending{};
  }
}

// Runs native work without the GIL, turning a pending Python error back into itself.
template <class F> auto run_released(F&& f) {
  bool pending = false;
  decltype(f()) result{};
  {
    py::gil_scoped_release release;
    try {
      result = f();
    } catch (PythonErrorPending&) {
      pending = true;
    }
  }
  if (pending) throw py::error_already_set();
  return result;
}

DArray vector_array(const std::vector<double>& v, std::vector<py::ssize_t> shape) {
  DArray a(shape);
  std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(double));
  return a;
}

void copy_result(const py::handle& r, int n, double* out, const char* what) {
  DArray a = DArray::ensure(r);
  if (!a) throw std::invalid_argument(std::string(what) + " must return numbers, one per candidate");
  if (a.size() != n)
    throw std::invalid_argument(std::string(what) + " must return " + std::to_string(n) +
                                " values (one per candidate), got " + std::to_string(a.size()));
  std::memcpy(out, a.data(), size_t(n) * sizeof(double));
}

Progress wrap_progress(const py::object& progress) {
  if (progress.is_none()) return nullptr;
  return [progress](int i, double best, double mean) {
    py::gil_scoped_acquire gil;
    return with_python([&] {  // None or True: go on; False: stop
      py::object r = progress(i, best, mean);
      return r.is_none() || r.cast<bool>();
    });
  };
}

BatchFitness wrap_ga_fitness(const py::object& fitness) {
  if (py::isinstance<Objective>(fitness)) {
    const Objective* obj = fitness.cast<const Objective*>();
    return [obj](const double* g, int n, int K, double* out) {
      obj->evaluate_many(g, n, K, out);
      for (int i = 0; i < n; ++i) out[i] = -out[i];  // lower objective = fitter
    };
  }
  return [fitness](const double* g, int n, int K, double* out) {
    py::gil_scoped_acquire gil;
    with_python([&] {
      DArray pop({n, K});
      std::memcpy(pop.mutable_data(), g, size_t(n) * K * sizeof(double));
      copy_result(fitness(pop), n, out, "fitness");
      return 0;
    });
  };
}

py::dict ga_run_py(const py::object& fitness, int bins, int population, int generations, double lo,
                   double hi, bool symmetric, std::vector<double> rates, uint64_t seed,
                   const py::object& init, const py::object& progress) {
  if (rates.size() != 3) throw std::invalid_argument("rates must be (reproduce, crossover, mutate)");
  GAConfig cfg;
  cfg.bins = bins;
  cfg.population = population;
  cfg.generations = generations;
  cfg.lo = lo;
  cfg.hi = hi;
  cfg.symmetric = symmetric;
  cfg.r_reproduce = rates[0];
  cfg.r_crossover = rates[1];
  cfg.r_mutate = rates[2];
  cfg.seed = seed;
  DArray init_arr;
  int n_init = 0;
  if (!init.is_none()) {
    init_arr = DArray::ensure(init);
    if (!init_arr || init_arr.ndim() != 2 || init_arr.shape(1) != bins)
      throw std::invalid_argument("init must be a [n, bins] array of codebooks");
    n_init = int(std::min<py::ssize_t>(init_arr.shape(0), population));
  }
  const double* init_ptr = n_init ? init_arr.data() : nullptr;
  const BatchFitness f = wrap_ga_fitness(fitness);
  const Progress p = wrap_progress(progress);
  GAResult r = run_released([&] { return ga_run(cfg, f, p, init_ptr, n_init); });
  py::dict d;
  d["best"] = vector_array(r.best, {bins});
  d["best_fitness"] = r.best_fitness;
  d["best_history"] = vector_array(r.best_history, {py::ssize_t(r.best_history.size())});
  d["mean_history"] = vector_array(r.mean_history, {py::ssize_t(r.mean_history.size())});
  d["population"] = vector_array(r.population, {population, bins});
  d["fitness"] = vector_array(r.fitness, {population});
  d["evaluations"] = r.evaluations;
  return d;
}

// Native SA fitness: minus the sum over layers of each layer's relative error.
SAFitness native_sa_fitness(std::vector<const Objective*> objs, int bins) {
  struct Cache {
    std::vector<double> state, terms;
  };
  auto cache = std::make_shared<Cache>();
  return [objs, bins, cache](int layer, const double* ab, int n, const double* state, double* out) {
    const int L = int(objs.size());
    std::vector<double> cb(bins);
    auto term = [&](int l, double a, double b) {
      formula_values(a, b, 0, 0, bins, cb.data());
      return objs[l]->eval(cb.data(), bins) / objs[l]->energy();
    };
    if (cache->state != std::vector<double>(state, state + 2 * L)) {
      cache->state.assign(state, state + 2 * L);
      cache->terms.resize(L);
      for (int l = 0; l < L; ++l) cache->terms[l] = term(l, state[2 * l], state[2 * l + 1]);
    }
    double others = 0;
    for (int l = 0; l < L; ++l)
      if (l != layer) others += cache->terms[l];
    for (int i = 0; i < n; ++i) out[i] = -(others + term(layer, ab[2 * i], ab[2 * i + 1]));
  };
}

py::dict sa_run_py(const py::object& fitness, int layers, int bins, std::vector<double> a0,
                   std::vector<double> b0, double t0, double cooling, double scale, int patience,
                   int max_iterations, uint64_t seed, const py::object& progress) {
  SAConfig cfg;
  cfg.layers = layers;
  cfg.bins = bins;
  cfg.a0 = a0;
  cfg.b0 = b0;
  cfg.t0 = t0;
  cfg.cooling = cooling;
  cfg.scale = scale;
  cfg.patience = patience;
  cfg.max_iterations = max_iterations;
  cfg.seed = seed;
  SAFitness f;
  if (py::isinstance<py::list>(fitness) || py::isinstance<py::tuple>(fitness)) {
    std::vector<const Objective*> objs;
    for (auto o : fitness) objs.push_back(o.cast<const Objective*>());
    if (int(objs.size()) != layers) throw std::invalid_argument("need one objective per layer");
    f = native_sa_fitness(objs, bins);
  } else {
    f = [fitness, layers](int layer, const double* ab, int n, const double* state, double* out) {
      py::gil_scoped_acquire gil;
      with_python([&] {
        DArray cand({n, 2}), st({layers, 2});
        std::memcpy(cand.mutable_data(), ab, size_t(n) * 2 * sizeof(double));
        std::memcpy(st.mutable_data(), state, size_t(layers) * 2 * sizeof(double));
        copy_result(fitness(layer, cand, st), n, out, "fitness");
        return 0;
      });
    };
  }
  const Progress p = wrap_progress(progress);
  SAResult r = run_released([&] { return sa_run(cfg, f, p); });
  py::dict d;
  d["state"] = vector_array(r.state, {layers, 2});
  d["best_state"] = vector_array(r.best_state, {layers, 2});
  d["fitness"] = r.fitness;
  d["best_fitness"] = r.best_fitness;
  d["fitness_history"] = vector_array(r.fitness_history, {py::ssize_t(r.fitness_history.size())});
  d["temperature_history"] =
      vector_array(r.temperature_history, {py::ssize_t(r.temperature_history.size())});
  py::list trace;
  for (const SAStep& s : r.trace)
    trace.append(py::make_tuple(s.iteration, s.layer, s.a, s.b, s.e, s.e_new, s.temperature, s.u,
                                s.accepted));
  d["trace"] = trace;
  d["iterations"] = r.iterations;
  d["evaluations"] = r.evaluations;
  d["converged"] = r.converged;
  return d;
}

std::vector<double> to_vector(const DArray& a) { return std::vector<double>(a.data(), a.data() + a.size()); }

}  // namespace

void register_vbq(py::module_& parent) {
  py::module_ m = parent.def_submodule("vbq", "Variable bin-size quantization (paper 003)");

  py::class_<Objective>(m, "Objective")
      .def("evaluate", [](const Objective& o, const DArray& genomes) {
        if (genomes.ndim() != 2) throw std::invalid_argument("genomes must be a [n, K] array");
        const int n = int(genomes.shape(0)), K = int(genomes.shape(1));
        std::vector<double> out(n);
        run_released([&] { o.evaluate_many(genomes.data(), n, K, out.data()); return 0; });
        return vector_array(out, {n});
      }, py::arg("genomes"))
      .def_property_readonly("energy", &Objective::energy);
  m.def("weight_mse", [](const DArray& w) { return make_weight_mse(w.data(), w.size()); }, py::arg("w"));
  m.def("layer_output_mse", [](const DArray& W, const FArray& X) {
    if (W.ndim() != 2 || X.ndim() != 2 || X.shape(1) != W.shape(1))
      throw std::invalid_argument("need weight [out, in] and activations [rows, in]");
    return run_released([&] {
      return make_layer_output_mse(W.data(), W.shape(0), W.shape(1), X.data(), X.shape(0));
    });
  }, py::arg("weight"), py::arg("x"));

  m.def("ga_run", &ga_run_py, py::arg("fitness"), py::arg("bins"), py::arg("population"),
        py::arg("generations"), py::arg("lo"), py::arg("hi"), py::arg("symmetric"),
        py::arg("rates"), py::arg("seed"), py::arg("init") = py::none(),
        py::arg("progress") = py::none());
  m.def("ga_repair", [](const DArray& u, double lo, double hi, bool strict_lo) {
    std::vector<double> v = to_vector(u);
    ga_repair(v.data(), int(v.size()), lo, hi, strict_lo);
    return vector_array(v, {py::ssize_t(v.size())});
  });
  m.def("ga_crossover", [](const DArray& p1, const DArray& p2, double center, int count, double lo,
                           double hi, bool strict_lo) {
    if (p1.size() != p2.size()) throw std::invalid_argument("parents must have the same length");
    const int n = int(p1.size());
    std::vector<double> c1(n), c2(n);
    ga_crossover(p1.data(), p2.data(), n, center, count, lo, hi, strict_lo, c1.data(), c2.data());
    return py::make_tuple(vector_array(c1, {n}), vector_array(c2, {n}));
  });
  m.def("ga_mutate", [](const DArray& u, int index, double r, double lo, double hi, bool strict_lo) {
    std::vector<double> v = to_vector(u);
    if (index < 0 || index >= int(v.size())) throw std::invalid_argument("index out of range");
    ga_mutate(v.data(), int(v.size()), index, r, lo, hi, strict_lo);
    return vector_array(v, {py::ssize_t(v.size())});
  });
  m.def("roulette_weights", [](const DArray& f) {
    return vector_array(roulette_weights(f.data(), int(f.size())), {f.size()});
  });

  m.def("sa_run", &sa_run_py, py::arg("fitness"), py::arg("layers"), py::arg("bins"),
        py::arg("a0"), py::arg("b0"), py::arg("t0"), py::arg("cooling"), py::arg("scale"),
        py::arg("patience"), py::arg("max_iterations"), py::arg("seed"),
        py::arg("progress") = py::none());
  m.def("sa_acceptance", &sa_acceptance);

  m.def("formula_values", [](double a, double b, double c, double d, int N) {
    std::vector<double> v(std::max(N, 0));
    formula_values(a, b, c, d, N, v.data());
    return vector_array(v, {N});
  });
  m.def("fit_formula", [](const DArray& v, bool symmetric) {
    const FormulaFit f = fit_formula(v.data(), int(v.size()), symmetric);
    return py::make_tuple(f.a, f.b, f.c, f.d, f.r2, f.sse);
  });
  m.def("lloyd_max", [](const DArray& w, int K, int max_iter, double tol, const py::object& init) {
    std::vector<double> out(std::max(K, 0));
    DArray init_arr;
    if (!init.is_none()) {
      init_arr = DArray::ensure(init);
      if (!init_arr || init_arr.size() != K) throw std::invalid_argument("init must hold `bins` values");
    }
    const double* ip = init.is_none() ? nullptr : init_arr.data();
    const int it = run_released([&] { return lloyd_max(w.data(), w.size(), K, max_iter, tol, ip, out.data()); });
    return py::make_tuple(vector_array(out, {K}), it);
  });
}
