// skbpr._kernel: the Python binding of the CPU training kernel.
//
// Python passes numpy arrays (torch CPU tensors through .numpy(), which
// shares their memory). Every array is checked here for its dtype, shape and
// C-contiguity, and the arrays the kernel writes into (weights, optimiser
// state) must also be writeable: a mismatch raises an error naming the
// argument, never a silent copy that training would update in vain. The
// Kernel object holds a reference to every array it points into, so they
// live as long as it does.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "problem.hpp"

namespace py = pybind11;
using namespace skbpr;

namespace {

std::vector<const KernelFunctions*> supported_builds() {
    std::vector<const KernelFunctions*> out;
#if defined(SKBPR_WITH_AVX2)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back(&avx2::functions);
#endif
    out.push_back(&baseline::functions);
    return out;
}

// The build to use: the best one the CPU supports, or the one named (tests compare them).
const KernelFunctions* pick_build(const std::string& isa) {
    const auto builds = supported_builds();
    if (isa.empty()) return builds.front();
    std::string names;
    for (const auto* b : builds) {
        if (isa == b->isa) return b;
        names += (names.empty() ? "" : ", ") + std::string(b->isa);
    }
    throw py::value_error("isa must be one of the builds this CPU supports (" + names + "), got '" + isa + "'");
}

std::string shape_text(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// The data of `obj` as a T array of `ndim` dimensions; shape[k] >= 0 is checked too.
template <typename T>
T* typed(std::vector<py::object>& keep, const py::handle& obj, const char* name, const char* dtype, int ndim,
         std::vector<int64_t> shape = {}, bool writeable = false) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(name) + " must be a numpy array, got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<T>>(a))
        throw py::type_error(std::string(name) + " must have dtype " + dtype + ", got " +
                             std::string(py::str(a.dtype())));
    if (a.ndim() != ndim)
        throw py::value_error(std::string(name) + " must have " + std::to_string(ndim) + " dimensions, got shape " +
                              shape_text(a));
    for (size_t k = 0; k < shape.size(); ++k)
        if (shape[k] >= 0 && a.shape(static_cast<py::ssize_t>(k)) != shape[k])
            throw py::value_error(std::string(name) + " has shape " + shape_text(a) + ", expected " +
                                  std::to_string(shape[k]) + " along axis " + std::to_string(k));
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous");
    if (writeable && !a.writeable())
        throw py::value_error(std::string(name) + " must be writeable (the kernel updates it in place)");
    keep.push_back(a);
    return static_cast<T*>(const_cast<void*>(a.data()));
}

FeatureRows feature_rows(std::vector<py::object>& keep, const py::object& rows, const char* name,
                         int64_t n_entities) {
    FeatureRows F;
    if (rows.is_none()) return F;
    const py::tuple t = rows.cast<py::tuple>();
    if (t.size() != 3) throw py::value_error(std::string(name) + " must be None or (indptr, indices, data)");
    const std::string base(name);
    F.indptr = typed<int64_t>(keep, t[0], (base + ".indptr").c_str(), "int64", 1, {n_entities + 1});
    const auto& indices = t[1];
    F.indices = typed<int64_t>(keep, indices, (base + ".indices").c_str(), "int64", 1);
    const int64_t nnz = py::reinterpret_borrow<py::array>(indices).shape(0);
    F.data = typed<float>(keep, t[2], (base + ".data").c_str(), "float32", 1, {nnz});
    return F;
}

class Kernel {
   public:
    Kernel(py::object users, py::object items, py::object pos_indptr, py::object pos_indices, py::object neg_indptr,
           py::object neg_indices, int64_t n_items, int64_t negatives, double implicit_ratio, py::object user_rows,
           py::object item_rows, int64_t n_users, int64_t n_item_entities, py::object user_weight,
           py::object user_state1, py::object user_state2, py::object user_step, py::object item_weight,
           py::object item_state1, py::object item_state2, py::object item_step, int64_t optimizer,
           double learning_rate, double eps, double beta1, double beta2, int64_t loss, double sigma, double margin,
           double alpha, int64_t n_negatives, int64_t batch_size, bool deterministic, const std::string& isa,
           py::object weights, int64_t n_shared, py::object shared_cdf, py::object shared_log_q)
        : fn_(pick_build(isa)) {
        if (loss < BPR || loss > SOFTMAX)
            throw py::value_error("loss code must be in [0, 4], got " + std::to_string(loss));
        if (n_shared < 0) throw py::value_error("n_shared must be >= 0, got " + std::to_string(n_shared));
        if (n_shared > 0 && loss == WARP) throw py::value_error("n_shared must be 0 with the WARP loss");
        if (optimizer < SGD || optimizer > ADAM)
            throw py::value_error("optimizer code must be in [0, 2], got " + std::to_string(optimizer));
        if (negatives < UNIFORM || negatives > MIXED)
            throw py::value_error("negatives code must be in [0, 2], got " + std::to_string(negatives));
        if (n_negatives < 1) throw py::value_error("n_negatives must be >= 1, got " + std::to_string(n_negatives));
        if (batch_size < 1) throw py::value_error("batch_size must be >= 1, got " + std::to_string(batch_size));
        Problem& P = P_;
        n_users_ = n_users;
        P.users = typed<int32_t>(keep_, users, "users", "int32", 1);
        P.n_samples = py::reinterpret_borrow<py::array>(users).shape(0);
        P.items = typed<int32_t>(keep_, items, "items", "int32", 1, {P.n_samples});
        if (!weights.is_none()) {
            P.weights = typed<float>(keep_, weights, "weights", "float32", 1, {P.n_samples});
            for (int64_t i = 0; i < P.n_samples; ++i)
                if (!(P.weights[i] >= 0.0f && P.weights[i] <= 3.4e38f))  // NaN fails too
                    throw py::value_error("weights must be finite and >= 0, got " + std::to_string(P.weights[i]) +
                                          " at sample " + std::to_string(i));
        }
        P.pos_indptr = typed<int64_t>(keep_, pos_indptr, "pos_indptr", "int64", 1, {n_users + 1});
        P.pos_indices = typed<int32_t>(keep_, pos_indices, "pos_indices", "int32", 1);
        if (!neg_indptr.is_none()) {
            P.neg_indptr = typed<int64_t>(keep_, neg_indptr, "neg_indptr", "int64", 1, {n_users + 1});
            P.neg_indices = typed<int32_t>(keep_, neg_indices, "neg_indices", "int32", 1);
        }
        P.n_items = n_items;
        P.negatives = negatives;
        P.implicit_ratio = implicit_ratio;
        P.user_rows = feature_rows(keep_, user_rows, "user_rows", n_users);
        P.item_rows = feature_rows(keep_, item_rows, "item_rows", n_item_entities);
        table(P.user, user_weight, user_state1, user_state2, user_step, "user", optimizer, -1);
        table(P.item, item_weight, item_state1, item_state2, item_step, "item", optimizer, P.user.n_cols + 1);
        P.optimizer = optimizer;
        P.learning_rate = learning_rate;
        P.eps = eps;
        P.beta1 = beta1;
        P.beta2 = beta2;
        P.loss = loss;
        P.sigma = sigma;
        P.margin = margin;
        P.alpha = alpha;
        P.n_negatives = n_negatives;
        P.deterministic = deterministic;
        P.n_shared = n_shared;
        if (!shared_cdf.is_none()) {
            P.shared_cdf = typed<double>(keep_, shared_cdf, "shared_cdf", "float64", 1, {n_items});
            for (int64_t i = 1; i < n_items; ++i)
                if (!(P.shared_cdf[i] >= P.shared_cdf[i - 1]))
                    throw py::value_error("shared_cdf must be nondecreasing, got a decrease at " + std::to_string(i));
        }
        if (!shared_log_q.is_none())
            P.shared_log_q = typed<float>(keep_, shared_log_q, "shared_log_q", "float32", 1, {n_items});
        // The workspace holds one batch, and no batch is longer than the data.
        const int64_t b = std::max<int64_t>(1, std::min(batch_size, P.n_samples));
        P.batch_size = b;
        batch_size_ = batch_size;
        const int64_t d = P.user.n_cols, m1 = n_negatives + 1;
        grad_user_.resize(b * d);
        grad_item_.resize(b * m1 * (d + 1));
        if (P.user_rows.indptr) rep_user_.resize(b * d);
        if (P.item_rows.indptr) rep_item_.resize(b * m1 * (d + 1));
        batch_users_.resize(b);
        batch_items_.resize(b * m1);
        if (n_shared > 0) {  // the shared-negatives layout (see problem.hpp)
            grad_item_.resize((b + n_shared) * (d + 1));
            rep_user_.resize(b * d);
            rep_item_.resize(b * (d + 1));
            batch_items_.resize(b + n_shared);
            P.shared_stride = (n_shared + 15) / 16 * 16;
            shared_scores_.resize(b * P.shared_stride);
        }
        if (P.weights) batch_weights_.resize(b);
        sample_loss_.resize(b);
        P.grad_user = grad_user_.data();
        P.grad_item = grad_item_.data();
        P.rep_user = rep_user_.empty() ? nullptr : rep_user_.data();
        P.rep_item = rep_item_.empty() ? nullptr : rep_item_.data();
        P.batch_users = batch_users_.data();
        P.batch_items = batch_items_.data();
        P.batch_weights = batch_weights_.empty() ? nullptr : batch_weights_.data();
        P.sample_loss = sample_loss_.data();
        P.shared_scores = shared_scores_.empty() ? nullptr : shared_scores_.data();
    }

    double train(int64_t start, int64_t count, uint64_t seed, int64_t n_threads, bool shuffle,
                 const py::object& negatives) {
        const Problem& P = P_;
        if (start < 0 || start % P.batch_size)
            throw py::value_error("start must be a non-negative multiple of batch_size (" +
                                  std::to_string(P.batch_size) + "), got " + std::to_string(start));
        if (count < 0 || start + count > P.n_samples)
            throw py::value_error("start + count must be in [start, n_samples=" + std::to_string(P.n_samples) +
                                  "], got count=" + std::to_string(count));
        if (n_threads < 1) throw py::value_error("n_threads must be >= 1, got " + std::to_string(n_threads));
        std::vector<py::object> hold;
        const int64_t* fixed = nullptr;
        if (!negatives.is_none()) {
            fixed = typed<int64_t>(hold, negatives, "negatives", "int64", 2, {-1, P.n_negatives});
            if (py::reinterpret_borrow<py::array>(negatives).shape(0) < start + count)
                throw py::value_error("negatives must have a row for every position up to start + count = " +
                                      std::to_string(start + count));
        }
        P_.n_threads = n_threads;
        py::gil_scoped_release release;
        return fn_->train(P, start, count, seed, shuffle, fixed);
    }

    py::array_t<int64_t> sample(const py::object& users, uint64_t seed) {
        std::vector<py::object> hold;
        const int64_t* u = typed<int64_t>(hold, users, "users", "int64", 1);
        const int64_t n = py::reinterpret_borrow<py::array>(users).shape(0);
        for (int64_t i = 0; i < n; ++i)
            if (u[i] < 0 || u[i] >= n_users())
                throw py::value_error("users must be in [0, " + std::to_string(n_users()) + "), got " +
                                      std::to_string(u[i]));
        py::array_t<int64_t> out({n, P_.n_negatives});
        int64_t* o = out.mutable_data();
        {
            py::gil_scoped_release release;
            fn_->sample(P_, u, n, seed, o);
        }
        return out;
    }

    int64_t n_samples() const { return P_.n_samples; }
    int64_t batch_size() const { return batch_size_; }
    int64_t workspace_batch() const { return P_.batch_size; }
    int64_t n_negatives() const { return P_.n_negatives; }
    int64_t n_shared() const { return P_.n_shared; }
    int64_t n_users() const { return n_users_; }
    std::string isa() const { return fn_->isa; }
    bool deterministic() const { return P_.deterministic; }
    bool weighted() const { return P_.weights != nullptr; }
    int64_t threads_used() const { return P_.threads_used; }

   private:
    void table(Table& T, const py::object& weight, const py::object& state1, const py::object& state2,
               const py::object& step, const std::string& name, int64_t optimizer, int64_t n_cols) {
        const std::string w = name + "_weight";
        T.weight = typed<float>(keep_, weight, w.c_str(), "float32", 2, {-1, n_cols}, true);
        const py::array a = py::reinterpret_borrow<py::array>(weight);
        T.n_rows = a.shape(0);
        T.n_cols = a.shape(1);
        const std::vector<int64_t> shape{T.n_rows, T.n_cols};
        const bool needs1 = optimizer != SGD, needs2 = optimizer == ADAM;
        const std::string s1 = name + "_state1", s2 = name + "_state2", st = name + "_step";
        if (needs1 == state1.is_none())
            throw py::value_error(s1 + (needs1 ? " is required by this optimizer" : " must be None with SGD"));
        if (needs2 == state2.is_none() || needs2 == step.is_none())
            throw py::value_error(s2 + " and " + st + (needs2 ? " are required by Adam" : " are for Adam only"));
        if (needs1) T.state1 = typed<float>(keep_, state1, s1.c_str(), "float32", 2, shape, true);
        if (needs2) {
            T.state2 = typed<float>(keep_, state2, s2.c_str(), "float32", 2, shape, true);
            T.step = typed<int64_t>(keep_, step, st.c_str(), "int64", 0, {}, true);
        }
        auto& head = name == "user" ? head_user_ : head_item_;
        head.assign(static_cast<size_t>(T.n_rows), -1);
        T.head = head.data();
    }

    const KernelFunctions* fn_;
    Problem P_;
    int64_t batch_size_ = 1;
    int64_t n_users_ = 0;
    std::vector<py::object> keep_;  // every array P_ points into
    std::vector<float> grad_user_, grad_item_, rep_user_, rep_item_;
    std::vector<int64_t> batch_users_, batch_items_;
    std::vector<float> batch_weights_, shared_scores_;
    std::vector<double> sample_loss_;
    std::vector<int32_t> head_user_, head_item_;
};

}  // namespace

PYBIND11_MODULE(_kernel, m) {
    m.doc() = "skbpr's compiled CPU training kernel (see skbpr.native for the Python side)";
#ifdef _OPENMP
    m.attr("OPENMP") = true;
#else
    m.attr("OPENMP") = false;
#endif
    m.attr("ISA") = pick_build("")->isa;
    m.def(
        "max_threads",
        []() {
#ifdef _OPENMP
            return static_cast<int64_t>(omp_get_max_threads());
#else
            return int64_t{1};
#endif
        },
        "The OpenMP runtime's thread budget for a parallel region now (OMP_NUM_THREADS, omp_set_num_threads, as "
        "threadpoolctl sets it, and the CPUs of the affinity mask); 1 without OpenMP.");
    py::list isas;
    for (const auto* b : supported_builds()) isas.append(b->isa);
    m.attr("SUPPORTED_ISAS") = isas;
    m.def(
        "permutation",
        [](int64_t n, uint64_t seed) {
            if (n < 0) throw py::value_error("n must be >= 0, got " + std::to_string(n));
            py::array_t<int64_t> out(n);
            int64_t* o = out.mutable_data();
            {
                py::gil_scoped_release release;
                pick_build("")->permutation(n, seed, o);
            }
            return out;
        },
        py::arg("n"), py::arg("seed"), "The epoch order of n samples for this seed.");
    py::class_<Kernel>(m, "Kernel")
        .def(py::init<py::object, py::object, py::object, py::object, py::object, py::object, int64_t, int64_t, double,
                      py::object, py::object, int64_t, int64_t, py::object, py::object, py::object, py::object,
                      py::object, py::object, py::object, py::object, int64_t, double, double, double, double,
                      int64_t, double, double, double, int64_t, int64_t, bool, const std::string&, py::object,
                      int64_t, py::object, py::object>(),
             py::kw_only(), py::arg("users"), py::arg("items"), py::arg("pos_indptr"), py::arg("pos_indices"),
             py::arg("neg_indptr").none(true), py::arg("neg_indices").none(true), py::arg("n_items"),
             py::arg("negatives"), py::arg("implicit_ratio"), py::arg("user_rows").none(true),
             py::arg("item_rows").none(true), py::arg("n_users"), py::arg("n_item_entities"), py::arg("user_weight"),
             py::arg("user_state1").none(true), py::arg("user_state2").none(true), py::arg("user_step").none(true),
             py::arg("item_weight"), py::arg("item_state1").none(true), py::arg("item_state2").none(true),
             py::arg("item_step").none(true), py::arg("optimizer"), py::arg("learning_rate"), py::arg("eps"),
             py::arg("beta1"), py::arg("beta2"), py::arg("loss"), py::arg("sigma"), py::arg("margin"),
             py::arg("alpha"), py::arg("n_negatives"), py::arg("batch_size"), py::arg("deterministic") = true,
             py::arg("isa") = "", py::arg("weights").none(true) = py::none(), py::arg("n_shared") = 0,
             py::arg("shared_cdf").none(true) = py::none(), py::arg("shared_log_q").none(true) = py::none())
        .def("train", &Kernel::train, py::kw_only(), py::arg("start"), py::arg("count"), py::arg("seed"),
             py::arg("n_threads"), py::arg("shuffle") = true, py::arg("negatives").none(true) = py::none(),
             "Train on epoch positions [start, start + count); the summed batch-mean losses times batch sizes.")
        .def("sample", &Kernel::sample, py::arg("users"), py::arg("seed"),
             "The negatives drawn for users at epoch positions 0..len-1, shape (len, n_negatives).")
        .def_property_readonly("n_samples", &Kernel::n_samples)
        .def_property_readonly("batch_size", &Kernel::batch_size)
        .def_property_readonly("workspace_batch", &Kernel::workspace_batch)
        .def_property_readonly("n_negatives", &Kernel::n_negatives)
        .def_property_readonly("n_shared", &Kernel::n_shared)
        .def_property_readonly("isa", &Kernel::isa)
        .def_property_readonly("deterministic", &Kernel::deterministic)
        .def_property_readonly("weighted", &Kernel::weighted)
        .def_property_readonly("threads_used", &Kernel::threads_used,
                               "The number of threads the last train call ran (0 before the first).");
}
