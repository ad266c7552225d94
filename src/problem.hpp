// The data layout of skbpr's CPU training kernel, shared by every build of
// the kernel (one per instruction set, see bpr_kernel.cpp) and by the Python
// binding (module.cpp), which fills a Problem from typed numpy arrays.
#pragma once

#include <cstdint>

// A second build of the kernel with AVX2 and FMA, picked at import on CPUs
// that have them: x86-64 with GCC or Clang (MSVC and other targets build the
// baseline only).
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(SKBPR_NO_AVX2)
#define SKBPR_WITH_AVX2 1
#endif

namespace skbpr {

enum Loss : int64_t { BPR = 0, LOGISTIC = 1, HINGE = 2, WARP = 3, SOFTMAX = 4 };
enum Optimizer : int64_t { SGD = 0, ADAGRAD = 1, ADAM = 2 };
enum Negatives : int64_t { UNIFORM = 0, IMPLICIT = 1, MIXED = 2 };

// A weight table, its optimiser state and its gradient workspace.
struct Table {
    float* weight = nullptr;   // n_rows x n_cols
    float* state1 = nullptr;   // adagrad: sum of squares; adam: first moment (or null)
    float* state2 = nullptr;   // adam: second moment (or null)
    int64_t* step = nullptr;   // adam: step counter (or null)
    int32_t* head = nullptr;   // n_rows, -1 between batches
    int64_t n_rows = 0;
    int64_t n_cols = 0;
};

// Rows of a sparse feature matrix (CSR); indptr == null means the identity.
struct FeatureRows {
    const int64_t* indptr = nullptr;
    const int64_t* indices = nullptr;
    const float* data = nullptr;
};

struct Problem {
    int64_t n_samples = 0;
    const int32_t* users = nullptr;  // positives, n_samples each
    const int32_t* items = nullptr;
    // confidence of each positive (n_samples, finite, >= 0): multiplies the
    // gradient (and value) of that positive's loss; null means 1 for all
    const float* weights = nullptr;
    const int64_t* pos_indptr = nullptr;  // training positives per user (sorted CSR)
    const int32_t* pos_indices = nullptr;
    const int64_t* neg_indptr = nullptr;  // implicit negatives per user (or null)
    const int32_t* neg_indices = nullptr;
    int64_t n_items = 0;
    int64_t negatives = UNIFORM;
    double implicit_ratio = 0.0;
    FeatureRows user_rows;
    FeatureRows item_rows;
    Table user;  // n_cols = d
    Table item;  // n_cols = d + 1 (bias last)
    int64_t optimizer = SGD;
    double learning_rate = 0.0;
    double eps = 0.0;
    double beta1 = 0.9;
    double beta2 = 0.999;
    int64_t loss = BPR;
    double sigma = 1.0;
    double margin = 1.0;
    double alpha = 0.0;
    int64_t n_negatives = 1;
    int64_t batch_size = 1;  // effective: at most n_samples, the workspace holds this many samples
    int64_t n_threads = 1;
    bool deterministic = true;  // false: lock-free (Hogwild) updates, see train_lock_free
    // shared negatives (see train_shared): S items drawn per batch, 0 = per-positive negatives
    int64_t n_shared = 0;
    const double* shared_cdf = nullptr;   // n_items: cumulative popularity distribution (null: uniform draws)
    const float* shared_log_q = nullptr;  // n_items: the softmax's log-Q correction (or null)
    // batch workspace
    float* grad_user = nullptr;      // batch_size x d
    float* grad_item = nullptr;      // batch_size x (M + 1) x (d + 1)
    float* rep_user = nullptr;       // batch_size x d             (feature rows only)
    float* rep_item = nullptr;       // batch_size x (M + 1) x (d + 1)  (feature rows only)
    int64_t* batch_users = nullptr;  // batch_size
    int64_t* batch_items = nullptr;  // batch_size x (M + 1)
    float* batch_weights = nullptr;  // batch_size (when weights is set)
    double* sample_loss = nullptr;   // batch_size
    // shared-negatives workspace (n_shared > 0; rep_user, rep_item then hold
    // batch_size rows each, batch_items and grad_item batch_size + S entries)
    float* shared_scores = nullptr;  // batch_size x shared_stride: scores, then their gradients
    int64_t shared_stride = 0;       // S rounded up to a multiple of 16
    // the team size the last train call ran (it may run fewer threads than n_threads)
    mutable int64_t threads_used = 0;
};

// One build of the kernel (an instruction set): its entry points.
struct KernelFunctions {
    const char* isa;
    double (*train)(const Problem& P, int64_t start, int64_t count, uint64_t seed, bool shuffle,
                    const int64_t* fixed_negatives);
    void (*sample)(const Problem& P, const int64_t* users, int64_t n, uint64_t seed, int64_t* out);
    void (*permutation)(int64_t n, uint64_t seed, int64_t* out);
};

namespace baseline {
extern const KernelFunctions functions;
}
#if defined(SKBPR_WITH_AVX2)
namespace avx2 {
extern const KernelFunctions functions;
}
#endif

}  // namespace skbpr
