// The CPU training kernel of skbpr: epochs of mini-batches for the built-in
// losses, built into the extension module skbpr._kernel when the package is
// installed (module.cpp is the binding; problem.hpp the data layout).
//
// This file is compiled once per instruction set, each time in its own
// namespace: as itself for the baseline of the target (SSE2 on x86-64), and
// through bpr_kernel_avx2.cpp with AVX2 and FMA enabled; module.cpp picks
// the build the CPU supports when the module is imported.
//
// One batch is two parallel phases separated by a barrier, so that the
// weights after a batch do not depend on the number of threads:
//
//   1. per sample (threads split the batch): draw the negatives, score the
//      positive and the negatives, and write the gradients with respect to
//      the user and item representations (closed form, L2 included);
//   2. per table row (each row has one owning thread, picked by a hash of
//      the row): sum the gradients of the row in sample order, then apply
//      the optimiser to it.
//
// A positive may carry a confidence (Problem::weights): it multiplies the
// gradient of that positive's loss with respect to its scores, and the loss
// value, in both modes; L2 terms are not weighted.
//
// This is the same update as the torch engine of skbpr/training/torch_engine.py: same
// losses, same L2 on representations, same sparse-row optimisers.
// Randomness (the epoch order and the negatives) comes from counter-based
// hashes of the epoch seed, so each draw depends only on its position.

// Every standard header comes before any target pragma (see
// bpr_kernel_avx2.cpp): templates and inline functions defined in them must
// keep the baseline instruction set in every translation unit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "problem.hpp"

#ifndef SKBPR_ISA
#define SKBPR_ISA baseline
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <xmmintrin.h>
#define SKBPR_ALWAYS_INLINE __forceinline
#define SKBPR_PREFETCH(p) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0)
#define SKBPR_PREFETCH_W(p) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0)
#else
#define SKBPR_PREFETCH(p) __builtin_prefetch(p)
#define SKBPR_PREFETCH_W(p) __builtin_prefetch(p, 1)
#define SKBPR_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

namespace skbpr {
namespace SKBPR_ISA {

namespace {

inline uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Uniform double in [0, 1) from a seed and a counter.
inline double uniform01(uint64_t seed, uint64_t counter) {
    return static_cast<double>(mix64(seed ^ mix64(counter)) >> 11) * 0x1.0p-53;
}

// A pseudo-random permutation of [0, n): a 4-round Feistel network on the
// smallest even number of bits that covers n, with cycle walking.
struct Permutation {
    uint64_t n;
    int half;
    uint64_t mask;
    uint64_t keys[4];

    Permutation(uint64_t n_, uint64_t seed) : n(n_) {
        int bits = 2;
        while ((uint64_t{1} << bits) < n) bits += 2;
        half = bits / 2;
        mask = (uint64_t{1} << half) - 1;
        for (int k = 0; k < 4; ++k) keys[k] = mix64(seed + 0x632be59bd9b4e019ULL * (k + 1));
    }

    uint64_t operator()(uint64_t x) const {
        do {
            uint64_t left = x >> half, right = x & mask;
            for (int k = 0; k < 4; ++k) {
                uint64_t next = left ^ (mix64(right ^ keys[k]) & mask);
                left = right;
                right = next;
            }
            x = (left << half) | right;
        } while (x >= n);
        return x;
    }
};

// The r-th item (0-based) that is not among the user's sorted positives.
inline int64_t nth_non_positive(const Problem& P, int64_t user, int64_t r) {
    const int32_t* pos = P.pos_indices + P.pos_indptr[user];
    int64_t n = P.pos_indptr[user + 1] - P.pos_indptr[user];
    // Count the positives whose key (item - rank) is <= r: branch-free
    // halving, so that the searches of neighbouring samples overlap.
    int64_t below = 0;
    while (n > 1) {
        const int64_t half = n >> 1;
        below = (pos[below + half - 1] - (below + half - 1) <= r) ? below + half : below;
        n -= half;
    }
    if (n == 1 && pos[below] - below <= r) ++below;
    return r + below;
}

// Negative number `slot` of the sample at epoch position `position`.
inline int64_t draw_negative(const Problem& P, int64_t user, uint64_t seed, uint64_t position, int64_t slot) {
    const uint64_t counter = (position * static_cast<uint64_t>(P.n_negatives) + slot) * 3;
    if (P.negatives != UNIFORM && P.neg_indptr != nullptr) {
        const int64_t start = P.neg_indptr[user], count = P.neg_indptr[user + 1] - start;
        const bool use = count > 0 && (P.negatives == IMPLICIT || uniform01(seed, counter + 2) < P.implicit_ratio);
        if (use) {
            int64_t offset = static_cast<int64_t>(uniform01(seed, counter + 1) * count);
            if (offset > count - 1) offset = count - 1;
            return P.neg_indices[start + offset];
        }
    }
    const int64_t candidates = P.n_items - (P.pos_indptr[user + 1] - P.pos_indptr[user]);
    int64_t r = static_cast<int64_t>(uniform01(seed, counter) * candidates);
    if (r > candidates - 1) r = candidates - 1;
    if (r < 0) r = 0;
    return nth_non_positive(P, user, r);
}

inline float dot(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
    return s;
}

// out = F[row] @ table (n_cols columns).
inline void gather_features(const FeatureRows& F, const float* table, int64_t n_cols, int64_t row, float* out) {
    for (int64_t c = 0; c < n_cols; ++c) out[c] = 0.0f;
    for (int64_t e = F.indptr[row]; e < F.indptr[row + 1]; ++e) {
        const float w = F.data[e];
        const float* src = table + F.indices[e] * n_cols;
#pragma omp simd
        for (int64_t c = 0; c < n_cols; ++c) out[c] += w * src[c];
    }
}

inline double softplus(double x) { return std::log1p(std::exp(-std::fabs(x))) + (x > 0 ? x : 0.0); }
// The float version (lock-free mode) takes log(1 + t) for log1p(t): an
// absolute error below 1e-7, and a fraction of the cost.
inline float softplus(float x) { return std::log(1.0f + std::exp(-std::fabs(x))) + (x > 0 ? x : 0.0f); }
inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Whether a WARP candidate scoring `negative` violates the margin of the positive.
inline bool violates(const Problem& P, float positive, float negative) {
    return negative > positive - static_cast<float>(P.margin);
}

// Loss of one sample and its gradient with respect to the M + 1 scores
// (positive first), scaled as the batch mean of skbpr/losses.py. The loss
// value (reported, not differentiated) is computed in Real: double in the
// deterministic mode, float in the lock-free one, where it costs less.
template <typename Real = double>
inline double loss_and_grad(const Problem& P, const float* s, float* d, int64_t b) {
    const int64_t M = P.n_negatives;
    const double inv_b = 1.0 / static_cast<double>(b);
    const double inv_bm = inv_b / static_cast<double>(M);
    double value = 0.0;
    d[0] = 0.0f;
    switch (P.loss) {
        case BPR: {
            const float sigma = static_cast<float>(P.sigma);
            const float scale = static_cast<float>(P.sigma * inv_bm);
            for (int64_t k = 1; k <= M; ++k) {
                const float x = sigma * (s[0] - s[k]);
                const float g = sigmoidf(-x) * scale;
                d[k] = g;
                d[0] -= g;
                value += static_cast<double>(softplus(static_cast<Real>(-x))) * inv_bm;
            }
            break;
        }
        case LOGISTIC: {
            d[0] = -sigmoidf(-s[0]) * static_cast<float>(inv_b);
            value = static_cast<double>(softplus(static_cast<Real>(-s[0]))) * inv_b;
            for (int64_t k = 1; k <= M; ++k) {
                d[k] = sigmoidf(s[k]) * static_cast<float>(inv_bm);
                value += static_cast<double>(softplus(static_cast<Real>(s[k]))) * inv_bm;
            }
            break;
        }
        case HINGE: {
            const float margin = static_cast<float>(P.margin);
            for (int64_t k = 1; k <= M; ++k) {
                const float slack = margin - (s[0] - s[k]);
                if (slack > 0) {
                    d[k] = static_cast<float>(inv_bm);
                    d[0] -= static_cast<float>(inv_bm);
                    value += slack * inv_bm;
                } else {
                    d[k] = 0.0f;
                }
            }
            break;
        }
        case SOFTMAX: {
            // sampled softmax: the positive against its negatives, logits sigma * score
            const float sigma = static_cast<float>(P.sigma);
            const float scale = static_cast<float>(P.sigma * inv_b);
            float peak = sigma * s[0];
            for (int64_t k = 1; k <= M; ++k) peak = std::max(peak, sigma * s[k]);
            float total = 0.0f;
            for (int64_t k = 0; k <= M; ++k) {
                d[k] = std::exp(sigma * s[k] - peak);
                total += d[k];
            }
            value = (static_cast<double>(std::log(total)) + peak - sigma * s[0]) * inv_b;
            // (p - 1) before the scale, as torch rounds it: p is near 1 once the positive wins
            d[0] = (d[0] / total - 1.0f) * scale;
            for (int64_t k = 1; k <= M; ++k) d[k] = d[k] / total * scale;
            break;
        }
        case WARP: {
            // reads the scores up to the first violation only (the others may be unset)
            const float margin = static_cast<float>(P.margin);
            for (int64_t k = 1; k <= M; ++k) d[k] = 0.0f;
            for (int64_t k = 1; k <= M; ++k) {
                if (violates(P, s[0], s[k])) {
                    const float tries = static_cast<float>(k);
                    float ratio = std::floor(static_cast<float>(P.n_items - 1) / tries);
                    if (ratio < 1.0f) ratio = 1.0f;
                    const float weight = std::log(ratio);
                    const float slack = margin - s[0] + s[k];
                    if (slack > 0) {
                        const float w = weight / static_cast<float>(b);
                        d[0] = -w;
                        d[k] = w;
                        value = static_cast<double>(weight) * slack * inv_b;
                    }
                    break;
                }
            }
            break;
        }
    }
    return value;
}

// Phase 1a: the sample at epoch position p (index idx) and its negatives.
inline void fetch_sample(const Problem& P, int64_t j, int64_t idx) {
    P.batch_users[j] = P.users[idx];
    P.batch_items[j * (P.n_negatives + 1)] = P.items[idx];
    if (P.weights) P.batch_weights[j] = P.weights[idx];
}

// The confidence of a positive scales its loss: its value and its gradient
// with respect to every score of the sample (WARP: the rank-weighted one).
inline double weigh(float c, float* d, int64_t M, double value) {
    for (int64_t k = 0; k <= M; ++k) d[k] *= c;
    return value * static_cast<double>(c);
}

// Negative k (0-based) of the sample at epoch position p.
inline int64_t negative_at(const Problem& P, int64_t user, uint64_t seed, uint64_t p, int64_t k,
                           const int64_t* fixed_negatives) {
    return fixed_negatives ? fixed_negatives[p * P.n_negatives + k] : draw_negative(P, user, seed, p, k);
}

// WARP draws its first candidate here and the others in sample_gradients,
// one at a time, up to the first violation.
inline void draw_sample(const Problem& P, int64_t j, uint64_t seed, uint64_t p, const int64_t* fixed_negatives) {
    const int64_t M = P.n_negatives;
    const int64_t user = P.batch_users[j];
    int64_t* ids = P.batch_items + j * (M + 1);
    const int64_t n = P.loss == WARP ? 1 : M;
    for (int64_t k = 0; k < n; ++k) ids[k + 1] = negative_at(P, user, seed, p, k, fixed_negatives);
}

// Bring a user's sorted positives towards the cache: the whole list up to
// 16 lines (256 items), else 16 lines spread over it, where the binary
// search of nth_non_positive probes first. Otherwise each step of the search
// waits on memory in turn once the lists outgrow the caches. Always inlined:
// GCC finds a function that only prefetches free of side effects and
// deletes its calls.
SKBPR_ALWAYS_INLINE void prefetch_list(const Problem& P, int64_t user) {
    const int32_t* list = P.pos_indices + P.pos_indptr[user];
    const int64_t n = P.pos_indptr[user + 1] - P.pos_indptr[user];
    const int64_t stride = n <= 256 ? 16 : n / 16;
    for (int64_t c = 0; c < n; c += stride) SKBPR_PREFETCH(list + c);
    if (n > 0) SKBPR_PREFETCH(list + n - 1);
}

// Bring the positives of the user at batch slot j towards the cache.
inline void prefetch_positives(const Problem& P, int64_t j, bool list) {
    const int64_t user = P.batch_users[j];
    if (list) prefetch_list(P, user);
    else SKBPR_PREFETCH(P.pos_indptr + user);
}

inline const float* user_rep(const Problem& P, int64_t j) {
    const int64_t d = P.user.n_cols, user = P.batch_users[j];
    if (P.user_rows.indptr == nullptr) return P.user.weight + user * d;
    float* out = P.rep_user + j * d;
    gather_features(P.user_rows, P.user.weight, d, user, out);
    return out;
}

// Bring the identity rows of batch slot j towards the cache.
inline void prefetch_sample(const Problem& P, int64_t j) {
    const int64_t M = P.n_negatives;
    if (P.user_rows.indptr == nullptr) {
        const float* u = P.user.weight + P.batch_users[j] * P.user.n_cols;
        for (int64_t c = 0; c < P.user.n_cols; c += 16) SKBPR_PREFETCH(u + c);
    }
    if (P.item_rows.indptr == nullptr) {
        const int64_t drawn = P.loss == WARP ? 1 : M;  // WARP's other candidates are not drawn yet
        for (int64_t k = 0; k <= drawn; ++k) {
            const float* v = P.item.weight + P.batch_items[j * (M + 1) + k] * P.item.n_cols;
            for (int64_t c = 0; c < P.item.n_cols; c += 16) SKBPR_PREFETCH(v + c);
        }
    }
}

// Phase 1b: scores, loss and representation gradients of batch slot j.
inline void sample_gradients(const Problem& P, int64_t j, int64_t b, float* scores, float* dscores,
                             const float** vrep, uint64_t seed, uint64_t p, const int64_t* fixed_negatives) {
    const int64_t d = P.user.n_cols, di = P.item.n_cols, M = P.n_negatives;
    int64_t* ids = P.batch_items + j * (M + 1);
    const float* u = user_rep(P, j);
    // WARP draws and scores lazily and stops at the first violation: the
    // candidates after it take no part (no draw, no L2, no update; their
    // entries are marked -1 for phase 2), as in torch and the lock-free mode
    int64_t used = M;
    for (int64_t k = 0; k <= M; ++k) {
        if (P.loss == WARP && k >= 1 && k < M) {
            // draw the next candidate now and fetch its row while this one is scored
            ids[k + 1] = negative_at(P, P.batch_users[j], seed, p, k, fixed_negatives);
            if (P.item_rows.indptr == nullptr) {
                const float* next = P.item.weight + ids[k + 1] * di;
                for (int64_t c = 0; c <= d; c += 16) SKBPR_PREFETCH(next + c);
                SKBPR_PREFETCH(next + d);
            }
        }
        if (P.item_rows.indptr == nullptr) {
            vrep[k] = P.item.weight + ids[k] * di;
        } else {
            float* out = P.rep_item + (j * (M + 1) + k) * di;
            gather_features(P.item_rows, P.item.weight, di, ids[k], out);
            vrep[k] = out;
        }
        scores[k] = dot(u, vrep[k], d) + vrep[k][d];
        if (P.loss == WARP && k > 0 && violates(P, scores[0], scores[k])) {
            used = k;
            break;
        }
    }
    for (int64_t k = used + 1; k <= M; ++k) ids[k] = -1;
    P.sample_loss[j] = loss_and_grad(P, scores, dscores, b);
    if (P.weights) P.sample_loss[j] = weigh(P.batch_weights[j], dscores, M, P.sample_loss[j]);

    const float reg = static_cast<float>(2.0 * P.alpha / static_cast<double>(b));
    const float reg_neg = static_cast<float>(2.0 * P.alpha / static_cast<double>(b) / static_cast<double>(M));
    float* gu = P.grad_user + j * d;
#pragma omp simd
    for (int64_t c = 0; c < d; ++c) gu[c] = reg * u[c];
    for (int64_t k = 0; k <= used; ++k) {
        const float dk = dscores[k];
        const float decay = k == 0 ? reg : reg_neg;
        const float* v = vrep[k];
        float* gv = P.grad_item + (j * (M + 1) + k) * di;
#pragma omp simd
        for (int64_t c = 0; c < d; ++c) {
            gu[c] += dk * v[c];
            gv[c] = dk * u[c] + decay * v[c];
        }
        gv[d] = dk + decay * v[d];
    }
}

// One gradient contribution to a table row: entry e of the batch, weight w.
struct Contribution {
    int64_t entry;
    float weight;
    int32_t next;  // the row's next contribution (in entry order), -1 at the end
};

// Phase 2 splits each table's rows into buckets by a hash of the row; a
// thread takes whole buckets, as many as it gets to (dynamic scheduling), so
// that a thread the OS deschedules holds up one bucket rather than a fixed
// share of the batch. Which thread takes a bucket changes nothing: every row
// sums its contributions in entry (sample) order.
inline int64_t bucket_of(int64_t row, int64_t n_buckets) {
    return static_cast<int64_t>((static_cast<uint64_t>(static_cast<uint32_t>(row * 0x9E3779B1u)) * n_buckets) >> 32);
}

// One gradient contribution to a table row, routed to the row's bucket.
struct Route {
    int64_t row;
    int64_t entry;
    float weight;
};

// The contributions of entries [e0, e1) of a table (the table rows behind
// each entity: one, or its feature rows), grouped by bucket in entry order:
// bucket k's are out[offsets[k] .. offsets[k + 1]). Phase 1 routes the
// entries of each chunk of samples it computes, so that phase 2 reads only
// its buckets' contributions.
void route(const FeatureRows& F, const int64_t* entities, int64_t e0, int64_t e1, int64_t n_buckets,
           std::vector<Route>& out, int64_t* offsets, std::vector<Route>& scratch) {
    scratch.clear();
    for (int64_t e = e0; e < e1; ++e) {
        const int64_t entity = entities[e];
        if (entity < 0) continue;  // a WARP candidate after the first violation
        if (F.indptr == nullptr) {
            scratch.push_back({entity, e, 1.0f});
        } else {
            for (int64_t f = F.indptr[entity]; f < F.indptr[entity + 1]; ++f)
                scratch.push_back({F.indices[f], e, F.data[f]});
        }
    }
    for (int64_t k = 0; k <= n_buckets; ++k) offsets[k] = 0;
    for (const Route& r : scratch) ++offsets[bucket_of(r.row, n_buckets) + 1];
    for (int64_t k = 0; k < n_buckets; ++k) offsets[k + 1] += offsets[k];
    out.resize(scratch.size());
    for (const Route& r : scratch) out[static_cast<size_t>(offsets[bucket_of(r.row, n_buckets)]++)] = r;
    for (int64_t k = n_buckets; k > 0; --k) offsets[k] = offsets[k - 1];  // back to the starts
    offsets[0] = 0;
}

// The routed contributions of one table in a batch: per chunk of samples,
// the contributions and the bucket offsets (n_buckets + 1 per chunk).
struct Routes {
    std::vector<std::vector<Route>> chunks;
    std::vector<int64_t> offsets;
};

void apply_chains(const Problem& P, const Table& T, const float* grads, double adam_lr,
                  std::vector<Contribution>& chain, std::vector<int64_t>& rows, std::vector<float>& sum);

// Phase 2 on one table: chain each row's contributions in entry (sample)
// order through head[], sum them and step the optimiser. With routes: the
// rows of bucket `bucket` only; without: every row (a team of one). Only a
// small int array is touched at random besides the rows themselves.
void update_table(const Problem& P, const Table& T, const FeatureRows& F, const int64_t* entities,
                  const float* grads, int64_t n_entries, const Routes* routes, int64_t n_chunks, int64_t bucket,
                  int64_t n_buckets, double adam_lr, std::vector<Contribution>& chain, std::vector<int64_t>& rows,
                  std::vector<float>& sum) {
    int32_t* head = T.head;
    chain.clear();
    rows.clear();
    auto add = [&](int64_t row, int64_t e, float w) {
        if (head[row] < 0) rows.push_back(row);
        chain.push_back({e, w, head[row]});
        head[row] = static_cast<int32_t>(chain.size() - 1);
    };
    if (routes != nullptr) {  // backwards, so that chains run forwards
        for (int64_t c = n_chunks - 1; c >= 0; --c) {
            const Route* r = routes->chunks[static_cast<size_t>(c)].data();
            const int64_t* off = routes->offsets.data() + c * (n_buckets + 1);
            for (int64_t i = off[bucket + 1] - 1; i >= off[bucket]; --i) add(r[i].row, r[i].entry, r[i].weight);
        }
    } else {
        for (int64_t e = n_entries - 1; e >= 0; --e) {
            const int64_t entity = entities[e];
            if (entity < 0) continue;  // a WARP candidate after the first violation
            if (F.indptr == nullptr) {
                add(entity, e, 1.0f);
            } else {
                for (int64_t f = F.indptr[entity + 1] - 1; f >= F.indptr[entity]; --f)
                    add(F.indices[f], e, F.data[f]);
            }
        }
    }
    apply_chains(P, T, grads, adam_lr, chain, rows, sum);
}

// Sum each chained row's contributions and step the optimiser on it.
void apply_chains(const Problem& P, const Table& T, const float* grads, double adam_lr,
                  std::vector<Contribution>& chain, std::vector<int64_t>& rows, std::vector<float>& sum) {
    const int64_t n_cols = T.n_cols;
    int32_t* head = T.head;
    const float lr = static_cast<float>(P.learning_rate);
    const float eps = static_cast<float>(P.eps);
    // (1 - beta) in double, then rounded, as torch rounds the Python float it is given: 1.0f - 0.999f
    // is 1.3e-5 away from 0.001f, a different update
    const float b1 = static_cast<float>(P.beta1), b2 = static_cast<float>(P.beta2);
    const float c1 = static_cast<float>(1.0 - P.beta1), c2 = static_cast<float>(1.0 - P.beta2);
    const float adam_step = static_cast<float>(adam_lr);
    sum.resize(static_cast<size_t>(n_cols));
    float* g = sum.data();
    const size_t n_rows = rows.size();
    for (size_t r = 0; r < n_rows; ++r) {
        if (r + 8 < n_rows) {  // rows are scattered: fetch ahead
            const int64_t ahead = rows[r + 8] * n_cols;
            for (int64_t c = 0; c < n_cols; c += 16) {
                SKBPR_PREFETCH_W(T.weight + ahead + c);
                if (T.state1) SKBPR_PREFETCH_W(T.state1 + ahead + c);
                if (T.state2) SKBPR_PREFETCH_W(T.state2 + ahead + c);
            }
        }
        const int64_t row = rows[r];
        for (int64_t c = 0; c < n_cols; ++c) g[c] = 0.0f;
        for (int32_t k = head[row]; k >= 0; k = chain[k].next) {
            const float* src = grads + chain[k].entry * n_cols;
            const float w = chain[k].weight;
#pragma omp simd
            for (int64_t c = 0; c < n_cols; ++c) g[c] += w * src[c];
        }
        head[row] = -1;
        float* wt = T.weight + row * n_cols;
        if (P.optimizer == SGD) {
#pragma omp simd
            for (int64_t c = 0; c < n_cols; ++c) wt[c] += g[c] * -lr;
        } else if (P.optimizer == ADAGRAD) {
            float* acc = T.state1 + row * n_cols;
#pragma omp simd
            for (int64_t c = 0; c < n_cols; ++c) {
                acc[c] += g[c] * g[c];
                wt[c] += g[c] / (std::sqrt(acc[c]) + eps) * -lr;
            }
        } else {
            float* m = T.state1 + row * n_cols;
            float* v = T.state2 + row * n_cols;
#pragma omp simd
            for (int64_t c = 0; c < n_cols; ++c) {
                m[c] = m[c] * b1 + c1 * g[c];  // the operation order of torch's mul_ + add_(alpha) and addcmul_
                v[c] = v[c] * b2 + c2 * g[c] * g[c];
                wt[c] += m[c] / (std::sqrt(v[c]) + eps) * -adam_step;
            }
        }
    }
}

// Adam's step size at step t (1-based).
double adam_step_size(const Problem& P, int64_t step) {
    if (P.optimizer != ADAM) return 0.0;
    const double t = static_cast<double>(step);
    return P.learning_rate * std::sqrt(1.0 - std::pow(P.beta2, t)) / (1.0 - std::pow(P.beta1, t));
}

// ---------------------------------------------------------------------------
// Lock-free mode (Hogwild): each thread takes a contiguous share of the
// epoch's positions (the same Feistel order and the same per-position
// negatives as above) and applies the optimiser to the rows of each sample
// as soon as its gradients are known, without barriers or locks. Threads may
// overwrite each other's updates of a row, so the weights depend on the
// thread count and timing; with one thread they are reproducible.
//
// Scale: a sample's gradient is that of the deterministic mode's batch mean,
// 1 / batch_size, so that SGD moves the weights as far per epoch for the
// same learning rate (Adagrad and Adam barely depend on the scale). Adam's
// bias correction advances by one step per batch_size positions, as in the
// deterministic mode, whichever thread runs them.
// WARP draws and scores candidates lazily and stops at the first violation:
// the candidates after it are neither drawn nor regularised.

// Apply the optimiser to one row with gradient w * g.
inline void apply_row(const Problem& P, const Table& T, int64_t row, const float* g, float w, float adam_lr) {
    const int64_t n_cols = T.n_cols;
    float* wt = T.weight + row * n_cols;
    const float lr = static_cast<float>(P.learning_rate);
    if (P.optimizer == SGD) {
        const float step = -lr * w;
#pragma omp simd
        for (int64_t c = 0; c < n_cols; ++c) wt[c] += g[c] * step;
    } else if (P.optimizer == ADAGRAD) {
        const float eps = static_cast<float>(P.eps);
        float* acc = T.state1 + row * n_cols;
#pragma omp simd
        for (int64_t c = 0; c < n_cols; ++c) {
            const float gc = g[c] * w;
            acc[c] += gc * gc;
            wt[c] += gc / (std::sqrt(acc[c]) + eps) * -lr;
        }
    } else {
        const float eps = static_cast<float>(P.eps);
        const float b1 = static_cast<float>(P.beta1), b2 = static_cast<float>(P.beta2);
        const float c1 = static_cast<float>(1.0 - P.beta1), c2 = static_cast<float>(1.0 - P.beta2);
        float* m = T.state1 + row * n_cols;
        float* v = T.state2 + row * n_cols;
#pragma omp simd
        for (int64_t c = 0; c < n_cols; ++c) {
            const float gc = g[c] * w;
            m[c] = m[c] * b1 + c1 * gc;
            v[c] = v[c] * b2 + c2 * gc * gc;
            wt[c] += m[c] / (std::sqrt(v[c]) + eps) * -adam_lr;
        }
    }
}

// Apply a representation gradient to the table rows behind an entity.
inline void apply_rep(const Problem& P, const Table& T, const FeatureRows& F, int64_t entity, const float* g,
                      float adam_lr) {
    if (F.indptr == nullptr) {
        apply_row(P, T, entity, g, 1.0f, adam_lr);
    } else {
        for (int64_t f = F.indptr[entity]; f < F.indptr[entity + 1]; ++f)
            apply_row(P, T, F.indices[f], g, F.data[f], adam_lr);
    }
}

// Bring n floats from p on towards the cache: every 64-byte line they span.
// Always inlined: GCC finds a function that only prefetches free of side
// effects and deletes the calls.
SKBPR_ALWAYS_INLINE void prefetch_span(const float* p, int64_t n) {
    for (int64_t c = 0; c < n; c += 16) SKBPR_PREFETCH(p + c);
    SKBPR_PREFETCH(p + n - 1);  // rows need not be aligned to lines
}

// Bring a table row and its optimiser state towards the cache.
SKBPR_ALWAYS_INLINE void prefetch_row(const Table& T, int64_t row) {
    const int64_t at = row * T.n_cols;
    prefetch_span(T.weight + at, T.n_cols);
    if (T.state1) prefetch_span(T.state1 + at, T.n_cols);
    if (T.state2) prefetch_span(T.state2 + at, T.n_cols);
}

double train_lock_free(const Problem& P, int64_t start, int64_t count, uint64_t seed, bool shuffle,
                       const int64_t* fixed_negatives) {
    const Permutation perm(static_cast<uint64_t>(P.n_samples), seed ^ 0x5bd1e9955bd1e995ULL);
    const int64_t M = P.n_negatives, B = P.batch_size;
    const int64_t d = P.user.n_cols, di = P.item.n_cols;
    const bool warp = P.loss == WARP;
    const bool user_identity = P.user_rows.indptr == nullptr, item_identity = P.item_rows.indptr == nullptr;
    const int n_threads = static_cast<int>(P.n_threads < 1 ? 1 : P.n_threads);
    const int64_t user_step0 = P.optimizer == ADAM ? *P.user.step : 0;
    const int64_t item_step0 = P.optimizer == ADAM ? *P.item.step : 0;
    const float reg = static_cast<float>(2.0 * P.alpha / static_cast<double>(B));
    const float reg_neg = static_cast<float>(2.0 * P.alpha / static_cast<double>(B) / static_cast<double>(M));
    double total = 0.0;

    // Threads take chunks of CHUNK positions as they become free (dynamic
    // scheduling) rather than a fixed share of the epoch each, so that a
    // thread the OS deschedules (another process on its core) delays one
    // chunk rather than half the work. One thread runs them in order.
    constexpr int64_t CHUNK = 4096;
    const int64_t n_chunks = (count + CHUNK - 1) / CHUNK;

#pragma omp parallel num_threads(n_threads) reduction(+ : total)
    {
#ifdef _OPENMP
#pragma omp single nowait
        P.threads_used = omp_get_num_threads();
#else
        P.threads_used = 1;
#endif
        // A software pipeline over the chunk's positions: the memory each
        // sample needs is requested several samples ahead of its use, STAGE
        // samples between stages (4, 8 and 16 measured alike on 1M positives).
        constexpr int64_t STAGE = 8, RING = 8 * STAGE;
        constexpr int64_t A = 0, Bd = STAGE, C = 2 * STAGE, D = 3 * STAGE, AHEAD = 4 * STAGE;
        std::vector<int64_t> ring_index(RING), ring_user(RING), ring_ids(RING * (M + 1)), ring_drawn(RING);
        std::vector<float> scores(M + 1), dscores(M + 1), gu(d), gv(di);
        std::vector<float> urep(user_identity ? 0 : d), irep(item_identity ? 0 : (M + 1) * di);
        std::vector<const float*> vrep(M + 1);
        int64_t last_batch = -1;
        float adam_lr_user = 0.0f, adam_lr_item = 0.0f;

        auto draw = [&](int64_t q, int64_t slot, int64_t k) {  // negative k (0-based) of position q
            int64_t* ids = ring_ids.data() + slot * (M + 1);
            ids[k + 1] = fixed_negatives ? fixed_negatives[q * M + k]
                                         : draw_negative(P, ring_user[slot], seed, static_cast<uint64_t>(q), k);
        };

#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
            const int64_t lo = start + chunk * CHUNK, hi = (lo + CHUNK < start + count) ? lo + CHUNK : start + count;
            for (int64_t p = lo; p < hi + AHEAD; ++p) {
                int64_t q = p - A;
                if (q < hi) {  // position -> sample index; fetch the sample
                    const int64_t slot = q & (RING - 1);
                    const int64_t idx = shuffle ? static_cast<int64_t>(perm(static_cast<uint64_t>(q))) : q;
                    ring_index[slot] = idx;
                    SKBPR_PREFETCH(P.users + idx);
                    SKBPR_PREFETCH(P.items + idx);
                    if (P.weights) SKBPR_PREFETCH(P.weights + idx);
                }
                q = p - Bd;
                if (q >= lo && q < hi) {  // (user, item); fetch their rows and the user's positives
                    const int64_t slot = q & (RING - 1);
                    const int64_t idx = ring_index[slot];
                    const int64_t user = P.users[idx], item = P.items[idx];
                    ring_user[slot] = user;
                    ring_ids[slot * (M + 1)] = item;
                    ring_drawn[slot] = 0;
                    SKBPR_PREFETCH(P.pos_indptr + user);
                    if (P.neg_indptr) SKBPR_PREFETCH(P.neg_indptr + user);
                    if (user_identity) prefetch_row(P.user, user);
                    if (item_identity) prefetch_row(P.item, item);
                }
                q = p - C;
                if (q >= lo && q < hi && !fixed_negatives) {
                    const int64_t user = ring_user[q & (RING - 1)];
                    prefetch_list(P, user);
                }
                q = p - D;
                if (q >= lo && q < hi) {  // draw the negatives (WARP: the first one); fetch their rows
                    const int64_t slot = q & (RING - 1);
                    const int64_t n = warp ? 1 : M;
                    for (int64_t k = 0; k < n; ++k) {
                        draw(q, slot, k);
                        if (item_identity) prefetch_row(P.item, ring_ids[slot * (M + 1) + k + 1]);
                    }
                    ring_drawn[slot] = n;
                }
                q = p - AHEAD;
                if (q < lo) continue;
                // the sample at position q: scores, gradients, updates
                const int64_t slot = q & (RING - 1);
                const int64_t user = ring_user[slot];
                int64_t* ids = ring_ids.data() + slot * (M + 1);
                if (P.optimizer == ADAM && (q - start) / B != last_batch) {
                    last_batch = (q - start) / B;
                    adam_lr_user = static_cast<float>(adam_step_size(P, user_step0 + last_batch + 1));
                    adam_lr_item = static_cast<float>(adam_step_size(P, item_step0 + last_batch + 1));
                }
                const float* u = P.user.weight + user * d;
                if (!user_identity) {
                    gather_features(P.user_rows, P.user.weight, d, user, urep.data());
                    u = urep.data();
                }
                int64_t used = M;  // candidates that take part (WARP: up to the first violation)
                for (int64_t k = 0; k <= M; ++k) {
                    if (k > ring_drawn[slot]) {
                        draw(q, slot, k - 1);
                        ring_drawn[slot] = k;
                    }
                    if (item_identity) {
                        vrep[k] = P.item.weight + ids[k] * di;
                    } else {
                        gather_features(P.item_rows, P.item.weight, di, ids[k], irep.data() + k * di);
                        vrep[k] = irep.data() + k * di;
                    }
                    scores[k] = dot(u, vrep[k], d) + vrep[k][d];
                    if (warp && k > 0 && violates(P, scores[0], scores[k])) {
                        used = k;
                        break;
                    }
                }
                double value = loss_and_grad<float>(P, scores.data(), dscores.data(), B);
                if (P.weights) value = weigh(P.weights[ring_index[slot]], dscores.data(), M, value);
                total += value * static_cast<double>(B);
#pragma omp simd
                for (int64_t c = 0; c < d; ++c) gu[c] = reg * u[c];
                for (int64_t k = 0; k <= used; ++k) {
                    const float dk = dscores[k];
                    const float* v = vrep[k];
#pragma omp simd
                    for (int64_t c = 0; c < d; ++c) gu[c] += dk * v[c];
                }
                for (int64_t k = 0; k <= used; ++k) {
                    const float dk = dscores[k];
                    const float decay = k == 0 ? reg : reg_neg;
                    const float* v = vrep[k];
#pragma omp simd
                    for (int64_t c = 0; c < d; ++c) gv[c] = dk * u[c] + decay * v[c];
                    gv[d] = dk + decay * v[d];
                    apply_rep(P, P.item, P.item_rows, ids[k], gv.data(), adam_lr_item);
                }
                apply_rep(P, P.user, P.user_rows, user, gu.data(), adam_lr_user);
            }
        }
    }
    if (P.optimizer == ADAM) {
        const int64_t batches = (count + B - 1) / B;
        *P.user.step = user_step0 + batches;
        *P.item.step = item_step0 + batches;
    }
    return total;
}

// ---------------------------------------------------------------------------
// Shared negatives (Problem::n_shared = S > 0): each batch of b positives is
// scored against one set of S items drawn for the whole batch, so that the
// scores are a dense (b x d) @ (d x S) product and the gradients two more,
// computed in register-blocked loops over tiles of the batch x shared-items
// matrix. A shared item that is one of a row's user's training positives
// takes no part in that row's loss. The update is the torch engine's
// Trainer.shared_gradients: L2 of 2 * alpha / b on each positive's user and
// item, 2 * alpha / S on each shared item; phase 2 (update_table) is the
// per-positive mode's, over the entries [positives..., shared items...].
// Always deterministic: every phase splits rows or columns between threads.

constexpr uint64_t SHARED_SALT = 0x2545F4914F6CDD1DULL;  // skbpr/training/sampling.py

// Shared item number `counter` of an epoch: uniform, or by the popularity cdf.
inline int64_t draw_shared(const Problem& P, uint64_t seed, uint64_t counter) {
    const double u = uniform01(seed ^ SHARED_SALT, counter);
    int64_t r;
    if (P.shared_cdf != nullptr) r = std::upper_bound(P.shared_cdf, P.shared_cdf + P.n_items, u) - P.shared_cdf;
    else r = static_cast<int64_t>(u * static_cast<double>(P.n_items));
    return r < P.n_items ? r : P.n_items - 1;
}

// Representation of entity `row` (identity or feature rows) into out.
inline void copy_rep(const FeatureRows& F, const float* table, int64_t n_cols, int64_t row, float* out) {
    if (F.indptr == nullptr) {
        const float* src = table + row * n_cols;
        for (int64_t c = 0; c < n_cols; ++c) out[c] = src[c];
    } else {
        gather_features(F, table, n_cols, row, out);
    }
}

// Loss of one positive scoring s0 against the shared scores z (S of them,
// those with ok[s] taking part), as the batch mean of
// skbpr/training/losses.py's shared_grad: z is overwritten with the gradient
// with respect to each shared score (0 where !ok), d0 receives the
// positive's; returns the loss value.
inline double shared_row(const Problem& P, float s0, float* z, const char* ok, const int64_t* shared, int64_t b,
                         float& d0) {
    const int64_t S = P.n_shared;
    const double inv_b = 1.0 / static_cast<double>(b);
    double value = 0.0;
    d0 = 0.0f;
    if (P.loss == SOFTMAX) {
        const float sigma = static_cast<float>(P.sigma);
        const float top = sigma * s0;
        float peak = top;
        for (int64_t s = 0; s < S; ++s) {
            if (!ok[s]) continue;
            z[s] = sigma * z[s] - (P.shared_log_q ? P.shared_log_q[shared[s]] : 0.0f);
            peak = std::max(peak, z[s]);
        }
        const float e0 = std::exp(top - peak);
        float total = e0;
        for (int64_t s = 0; s < S; ++s) {
            z[s] = ok[s] ? std::exp(z[s] - peak) : 0.0f;
            total += z[s];
        }
        const float scale = static_cast<float>(P.sigma * inv_b);
        for (int64_t s = 0; s < S; ++s) z[s] = z[s] / total * scale;
        d0 = (e0 / total - 1.0f) * scale;
        return (static_cast<double>(std::log(total)) + peak - top) * inv_b;
    }
    int64_t n = 0;
    for (int64_t s = 0; s < S; ++s) n += ok[s];
    if (P.loss == LOGISTIC) {
        d0 = -sigmoidf(-s0) * static_cast<float>(inv_b);
        value = softplus(static_cast<double>(-s0)) * inv_b;
    }
    if (n == 0) {
        for (int64_t s = 0; s < S; ++s) z[s] = 0.0f;
        return value;
    }
    const float share = static_cast<float>(inv_b / static_cast<double>(n));
    const double share_d = inv_b / static_cast<double>(n);
    switch (P.loss) {
        case BPR: {
            const float sigma = static_cast<float>(P.sigma);
            for (int64_t s = 0; s < S; ++s) {
                if (!ok[s]) {
                    z[s] = 0.0f;
                    continue;
                }
                const float x = sigma * (s0 - z[s]);
                const float g = sigmoidf(-x) * sigma * share;
                z[s] = g;
                d0 -= g;
                value += softplus(static_cast<double>(-x)) * share_d;
            }
            break;
        }
        case LOGISTIC: {
            for (int64_t s = 0; s < S; ++s) {
                if (!ok[s]) {
                    z[s] = 0.0f;
                    continue;
                }
                value += softplus(static_cast<double>(z[s])) * share_d;
                z[s] = sigmoidf(z[s]) * share;
            }
            break;
        }
        default: {  // HINGE
            const float margin = static_cast<float>(P.margin);
            for (int64_t s = 0; s < S; ++s) {
                const float slack = margin - (s0 - z[s]);
                if (ok[s] && slack > 0) {
                    z[s] = share;
                    d0 -= share;
                    value += static_cast<double>(slack) * share_d;
                } else {
                    z[s] = 0.0f;
                }
            }
            break;
        }
    }
    return value;
}

// ok[s] = 0 where shared item s is one of the user's (sorted) training
// positives: one merge of the positives with the shared items in item order.
inline void shared_mask(const Problem& P, int64_t user, const int64_t* shared, const int64_t* order, char* ok) {
    const int64_t S = P.n_shared;
    for (int64_t s = 0; s < S; ++s) ok[s] = 1;
    const int32_t* pos = P.pos_indices + P.pos_indptr[user];
    const int64_t n = P.pos_indptr[user + 1] - P.pos_indptr[user];
    int64_t i = 0, k = 0;
    while (i < n && k < S) {
        const int64_t a = pos[i], c = shared[order[k]];
        if (a < c) {
            ++i;
        } else if (c < a) {
            ++k;
        } else {
            ok[order[k]] = 0;
            ++k;
        }
    }
}

// The dense products run on tiles of 4 rows (or shared columns) by 16
// lanes, whose 8 vector accumulators stay in registers; the lanes run along
// the shared items for the scores (over the transposed shared items, so that
// no horizontal sum is needed) and along the embedding for the gradients.
constexpr int64_t TILE = 4, LANES = 16;

// Scores of batch rows [j0, j0 + r) (r <= TILE) against every shared item:
// Z[j, s] = u_j . v_s + b_s, from the transposed shared items
// (Vt, (d + 1) x stride, biases last, padding columns zero).
inline void shared_scores(const Problem& P, const float* Vt, const float* U, int64_t j0, int64_t r, float* Z) {
    const int64_t Sp = P.shared_stride, d = P.user.n_cols;
    const float* u0 = U + j0 * d;
    const float* u1 = U + (j0 + (r > 1 ? 1 : 0)) * d;
    const float* u2 = U + (j0 + (r > 2 ? 2 : 0)) * d;
    const float* u3 = U + (j0 + (r > 3 ? 3 : 0)) * d;
    for (int64_t sb = 0; sb < Sp; sb += LANES) {
        float a0[LANES], a1[LANES], a2[LANES], a3[LANES];
        const float* bias = Vt + d * Sp + sb;
        for (int64_t t = 0; t < LANES; ++t) a0[t] = a1[t] = a2[t] = a3[t] = bias[t];
        for (int64_t c = 0; c < d; ++c) {
            const float* v = Vt + c * Sp + sb;
            const float x0 = u0[c], x1 = u1[c], x2 = u2[c], x3 = u3[c];
#pragma omp simd
            for (int64_t t = 0; t < LANES; ++t) {
                a0[t] += x0 * v[t];
                a1[t] += x1 * v[t];
                a2[t] += x2 * v[t];
                a3[t] += x3 * v[t];
            }
        }
        float* z = Z + j0 * Sp + sb;
        for (int64_t t = 0; t < LANES; ++t) z[t] = a0[t];
        if (r > 1)
            for (int64_t t = 0; t < LANES; ++t) z[Sp + t] = a1[t];
        if (r > 2)
            for (int64_t t = 0; t < LANES; ++t) z[2 * Sp + t] = a2[t];
        if (r > 3)
            for (int64_t t = 0; t < LANES; ++t) z[3 * Sp + t] = a3[t];
    }
}

// G[j] += sum_s Z[j, s] * v_s (the first d columns of the shared items Vs) for rows [j0, j0 + r).
inline void shared_user_gradients(const Problem& P, const float* Vs, const float* Z, int64_t j0, int64_t r,
                                  float* G) {
    const int64_t S = P.n_shared, Sp = P.shared_stride, d = P.user.n_cols, di = P.item.n_cols;
    const float* z0 = Z + j0 * Sp;
    const float* z1 = Z + (j0 + (r > 1 ? 1 : 0)) * Sp;
    const float* z2 = Z + (j0 + (r > 2 ? 2 : 0)) * Sp;
    const float* z3 = Z + (j0 + (r > 3 ? 3 : 0)) * Sp;
    int64_t cb = 0;
    for (; cb + LANES <= d; cb += LANES) {
        float a0[LANES] = {}, a1[LANES] = {}, a2[LANES] = {}, a3[LANES] = {};
        for (int64_t s = 0; s < S; ++s) {
            const float* v = Vs + s * di + cb;
            const float x0 = z0[s], x1 = z1[s], x2 = z2[s], x3 = z3[s];
#pragma omp simd
            for (int64_t t = 0; t < LANES; ++t) {
                a0[t] += x0 * v[t];
                a1[t] += x1 * v[t];
                a2[t] += x2 * v[t];
                a3[t] += x3 * v[t];
            }
        }
        const float* acc[TILE] = {a0, a1, a2, a3};
        for (int64_t k = 0; k < r; ++k)
            for (int64_t t = 0; t < LANES; ++t) G[(j0 + k) * d + cb + t] += acc[k][t];
    }
    if (cb < d) {  // the last columns of an embedding that is not a multiple of LANES wide
        for (int64_t k = 0; k < r; ++k) {
            float* g = G + (j0 + k) * d;
            const float* z = Z + (j0 + k) * Sp;
            for (int64_t s = 0; s < S; ++s)
                for (int64_t c = cb; c < d; ++c) g[c] += z[s] * Vs[s * di + c];
        }
    }
}

// Gradients of shared columns [s0, s0 + w) (w <= TILE), into grad_item
// entries b + s: sum_j Z[j, s] * [u_j, 1] + reg * v_s.
inline void shared_item_gradients(const Problem& P, const float* Vs, const float* U, const float* Z, int64_t b,
                                  int64_t s0, int64_t w, float reg) {
    const int64_t Sp = P.shared_stride, d = P.user.n_cols, di = P.item.n_cols;
    float* g[TILE];
    for (int64_t k = 0; k < TILE; ++k) g[k] = P.grad_item + (b + s0 + (k < w ? k : 0)) * di;
    int64_t cb = 0;
    for (; cb + LANES <= d; cb += LANES) {
        float a0[LANES] = {}, a1[LANES] = {}, a2[LANES] = {}, a3[LANES] = {};
        for (int64_t j = 0; j < b; ++j) {
            const float* u = U + j * d + cb;
            const float* z = Z + j * Sp + s0;  // the padding keeps z[w..TILE) readable
            const float x0 = z[0], x1 = z[1], x2 = z[2], x3 = z[3];
#pragma omp simd
            for (int64_t t = 0; t < LANES; ++t) {
                a0[t] += x0 * u[t];
                a1[t] += x1 * u[t];
                a2[t] += x2 * u[t];
                a3[t] += x3 * u[t];
            }
        }
        const float* acc[TILE] = {a0, a1, a2, a3};
        for (int64_t k = 0; k < w; ++k) {
            const float* v = Vs + (s0 + k) * di + cb;
            for (int64_t t = 0; t < LANES; ++t) g[k][cb + t] = acc[k][t] + reg * v[t];
        }
    }
    for (int64_t k = 0; k < w; ++k) {  // the remaining columns and the bias
        const float* v = Vs + (s0 + k) * di;
        for (int64_t c = cb; c <= d; ++c) {
            float sum = 0.0f;
            for (int64_t j = 0; j < b; ++j) sum += Z[j * Sp + s0 + k] * (c < d ? U[j * d + c] : 1.0f);
            g[k][c] = sum + reg * v[c];
        }
    }
}

double train_shared(const Problem& P, int64_t start, int64_t count, uint64_t seed, bool shuffle) {
    const Permutation perm(static_cast<uint64_t>(P.n_samples), seed ^ 0x5bd1e9955bd1e995ULL);
    const int64_t S = P.n_shared, Sp = P.shared_stride, B = P.batch_size, d = P.user.n_cols, di = P.item.n_cols;
    const int64_t stop = start + count;
    int n_threads = static_cast<int>(P.n_threads < 1 ? 1 : P.n_threads);
    // A thread needs enough of a batch's products to outweigh its three
    // barriers; the weights do not depend on the team size.
    constexpr int64_t MIN_PRODUCTS_PER_THREAD = int64_t{1} << 21;
    const int64_t products = B * S * (d + 1);
    if (products < MIN_PRODUCTS_PER_THREAD * n_threads)
        n_threads = static_cast<int>(std::max<int64_t>(1, products / MIN_PRODUCTS_PER_THREAD));
    float* U = P.rep_user;   // b x d: the batch's user representations
    float* Vp = P.rep_item;  // b x (d + 1): its positives'
    float* Z = P.shared_scores;
    double total = 0.0;

#pragma omp parallel num_threads(n_threads)
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
        const int team = omp_get_num_threads();
#else
        const int tid = 0;
        const int team = 1;
#endif
        if (tid == 0) P.threads_used = team;
        // every thread draws the batch's shared items into its own copies
        // (S is small), which saves a barrier
        std::vector<int64_t> shared(static_cast<size_t>(S)), order(static_cast<size_t>(S));
        std::vector<float> Vs(static_cast<size_t>(S * di)), Vt(static_cast<size_t>(di * Sp), 0.0f);
        std::vector<char> ok(static_cast<size_t>(S));
        std::vector<int64_t> rows;
        std::vector<Contribution> chain;
        std::vector<float> sum;
        int64_t user_step = P.optimizer == ADAM ? *P.user.step : 0;  // private copies: no race on the counters
        int64_t item_step = P.optimizer == ADAM ? *P.item.step : 0;
        for (int64_t first = start; first < stop; first += B) {
            const int64_t b = (stop - first < B) ? stop - first : B;
            const uint64_t batch = static_cast<uint64_t>(first / B);
            const float reg = static_cast<float>(2.0 * P.alpha / static_cast<double>(b));
            const float reg_shared = static_cast<float>(2.0 * P.alpha / static_cast<double>(S));
            for (int64_t s = 0; s < S; ++s) {
                const int64_t item = draw_shared(P, seed, batch * static_cast<uint64_t>(S) + static_cast<uint64_t>(s));
                shared[s] = item;
                float* v = Vs.data() + s * di;
                copy_rep(P.item_rows, P.item.weight, di, item, v);
                for (int64_t c = 0; c < di; ++c) Vt[c * Sp + s] = v[c];
                order[s] = s;
            }
            std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
                return shared[x] < shared[y] || (shared[x] == shared[y] && x < y);
            });
            // this thread's rows, whole tiles: samples, scores, masks, losses,
            // the gradients of the users and of the positives
            const int64_t tiles = (b + TILE - 1) / TILE;
            const int64_t lo = std::min(b, tiles * tid / team * TILE), hi = std::min(b, tiles * (tid + 1) / team * TILE);
            for (int64_t j = lo; j < hi; ++j) {
                const uint64_t p = static_cast<uint64_t>(first + j);
                const int64_t idx = shuffle ? static_cast<int64_t>(perm(p)) : static_cast<int64_t>(p);
                P.batch_users[j] = P.users[idx];
                P.batch_items[j] = P.items[idx];
                if (P.weights) P.batch_weights[j] = P.weights[idx];
                copy_rep(P.user_rows, P.user.weight, d, P.batch_users[j], U + j * d);
                copy_rep(P.item_rows, P.item.weight, di, P.items[idx], Vp + j * di);
            }
            for (int64_t j0 = lo; j0 < hi; j0 += TILE) {
                const int64_t r = (hi - j0 < TILE) ? hi - j0 : TILE;
                shared_scores(P, Vt.data(), U, j0, r, Z);
                for (int64_t j = j0; j < j0 + r; ++j) {
                    const float* u = U + j * d;
                    const float* vp = Vp + j * di;
                    shared_mask(P, P.batch_users[j], shared.data(), order.data(), ok.data());
                    float d0;
                    double value = shared_row(P, dot(u, vp, d) + vp[d], Z + j * Sp, ok.data(), shared.data(), b, d0);
                    if (P.weights) {
                        const float c = P.batch_weights[j];
                        float* z = Z + j * Sp;
                        for (int64_t s = 0; s < S; ++s) z[s] *= c;
                        d0 *= c;
                        value *= static_cast<double>(c);
                    }
                    P.sample_loss[j] = value;
                    float* gu = P.grad_user + j * d;
                    float* gp = P.grad_item + j * di;
#pragma omp simd
                    for (int64_t c = 0; c < d; ++c) {
                        gu[c] = d0 * vp[c];
                        gp[c] = d0 * u[c] + reg * vp[c];
                    }
                    gp[d] = d0 + reg * vp[d];
                }
                shared_user_gradients(P, Vs.data(), Z, j0, r, P.grad_user);
                for (int64_t j = j0; j < j0 + r; ++j) {
                    float* gu = P.grad_user + j * d;
                    const float* u = U + j * d;
#pragma omp simd
                    for (int64_t c = 0; c < d; ++c) gu[c] += reg * u[c];
                }
            }
            if (team > 1) {  // every score gradient of the batch is written
#pragma omp barrier
            }
            // this thread's shared columns, whole tiles: their gradients
            const int64_t col_tiles = (S + TILE - 1) / TILE;
            const int64_t clo = std::min(S, col_tiles * tid / team * TILE);
            const int64_t chi = std::min(S, col_tiles * (tid + 1) / team * TILE);
            for (int64_t s = clo; s < chi; ++s) P.batch_items[b + s] = shared[s];
            for (int64_t s0 = clo; s0 < chi; s0 += TILE)
                shared_item_gradients(P, Vs.data(), U, Z, b, s0, (chi - s0 < TILE) ? chi - s0 : TILE, reg_shared);
            if (team > 1) {
#pragma omp barrier
            }
            // every gradient of the batch is written; phase 2 as per positive, Adam counts one step per batch
            ++user_step;
            ++item_step;
            // one thread per table (each row's contributions chained in entry order, so the
            // weights do not depend on which thread or how many)
            if (tid == 0)
                update_table(P, P.user, P.user_rows, P.batch_users, P.grad_user, b, nullptr, 0, 0, 1,
                             adam_step_size(P, user_step), chain, rows, sum);
            if (tid == team - 1)
                update_table(P, P.item, P.item_rows, P.batch_items, P.grad_item, b + S, nullptr, 0, 0, 1,
                             adam_step_size(P, item_step), chain, rows, sum);
            if (tid == 0) {
                double batch_loss = 0.0;
                for (int64_t j = 0; j < b; ++j) batch_loss += P.sample_loss[j];
                total += batch_loss * static_cast<double>(b);
            }
            if (team > 1) {
#pragma omp barrier
            }
        }
        if (tid == 0 && P.optimizer == ADAM) {
            *P.user.step = user_step;
            *P.item.step = item_step;
        }
    }
    return total;
}

// The entry points of this build.

// Train on epoch positions [start, start + count) in batches of batch_size
// (start is a multiple of batch_size). With shuffle, position p takes the
// sample permutation(p) of the epoch; fixed_negatives (n_samples x M, by
// position) replaces the drawn negatives when given. Returns the sum over
// batches of (batch mean loss x batch size).
double train(const Problem& P, int64_t start, int64_t count, uint64_t seed, bool shuffle,
             const int64_t* fixed_negatives) {
    if (P.n_shared > 0) return train_shared(P, start, count, seed, shuffle);
    if (!P.deterministic) return train_lock_free(P, start, count, seed, shuffle, fixed_negatives);
    const Permutation perm(static_cast<uint64_t>(P.n_samples), seed ^ 0x5bd1e9955bd1e995ULL);
    const int64_t M = P.n_negatives, B = P.batch_size;
    const int64_t stop = start + count;
    int n_threads = static_cast<int>(P.n_threads < 1 ? 1 : P.n_threads);
    // A thread needs enough samples per batch to outweigh the two barriers of
    // each batch; the weights do not depend on the team size.
    constexpr int64_t MIN_SAMPLES_PER_THREAD = 64;
    if (B < MIN_SAMPLES_PER_THREAD * n_threads) n_threads = static_cast<int>(B / MIN_SAMPLES_PER_THREAD > 1 ? B / MIN_SAMPLES_PER_THREAD : 1);
    // Phase 1 hands out chunks of CHUNK samples and phase 2 buckets of rows,
    // BUCKETS_PER_THREAD per thread, to whichever thread is free (dynamic
    // scheduling): a thread that the OS deschedules (another process on its
    // core) then delays the batch by one chunk or bucket, not by its whole
    // static share. Neither split changes the weights.
    constexpr int64_t CHUNK = 64, BUCKETS_PER_THREAD = 8;
    const int64_t max_chunks = (B + CHUNK - 1) / CHUNK;
    double total = 0.0;
    Routes user_routes, item_routes;  // shared: chunk c is written by the thread that computes it

#pragma omp parallel num_threads(n_threads)
    {
#ifdef _OPENMP
        const int team = omp_get_num_threads();
#else
        const int team = 1;
#endif
        const int64_t n_buckets = team > 1 ? BUCKETS_PER_THREAD * team : 1;
#pragma omp single
        {
            P.threads_used = team;
            if (team > 1) {
                for (Routes* r : {&user_routes, &item_routes}) {
                    r->chunks.resize(static_cast<size_t>(max_chunks));
                    r->offsets.resize(static_cast<size_t>(max_chunks * (n_buckets + 1)));
                }
            }
        }  // (implicit barrier: the routes are sized)
        std::vector<float> scores(M + 1), dscores(M + 1);
        std::vector<const float*> vrep(M + 1);
        int64_t user_step = P.optimizer == ADAM ? *P.user.step : 0;  // private copies: no race on the counters
        int64_t item_step = P.optimizer == ADAM ? *P.item.step : 0;
        std::vector<int64_t> rows;
        std::vector<Contribution> chain;
        std::vector<float> sum;
        std::vector<Route> scratch;
        rows.reserve(static_cast<size_t>(B * (M + 1)));
        chain.reserve(static_cast<size_t>(B * (M + 1)));
        for (int64_t first = start; first < stop; first += B) {
            const int64_t b = (stop - first < B) ? stop - first : B;
            const int64_t n_chunks = (b + CHUNK - 1) / CHUNK;
#pragma omp for schedule(dynamic, 1)
            for (int64_t c = 0; c < n_chunks; ++c) {
                // The chunk's slots of the batch. The passes over them are
                // separate so that each pass's cache misses are independent of
                // one another and overlap; prefetches stay inside the range.
                const int64_t lo = c * CHUNK, hi = (lo + CHUNK < b) ? lo + CHUNK : b;
                for (int64_t j = lo; j < hi; ++j) {  // positions -> sample indices (arithmetic only)
                    const uint64_t p = static_cast<uint64_t>(first + j);
                    P.batch_users[j] = shuffle ? static_cast<int64_t>(perm(p)) : static_cast<int64_t>(p);
                }
                for (int64_t j = lo; j < hi; ++j) {  // indices -> (user, item)
                    if (j + 16 < hi) {
                        SKBPR_PREFETCH(P.users + P.batch_users[j + 16]);
                        SKBPR_PREFETCH(P.items + P.batch_users[j + 16]);
                    }
                    fetch_sample(P, j, P.batch_users[j]);
                }
                for (int64_t j = lo; j < hi; ++j) {
                    if (j + 16 < hi) prefetch_positives(P, j + 16, false);
                    if (j + 8 < hi) prefetch_positives(P, j + 8, true);
                    draw_sample(P, j, seed, static_cast<uint64_t>(first + j), fixed_negatives);
                }
                for (int64_t j = lo; j < hi; ++j) {
                    if (j + 8 < hi) prefetch_sample(P, j + 8);
                    sample_gradients(P, j, b, scores.data(), dscores.data(), vrep.data(), seed,
                                     static_cast<uint64_t>(first + j), fixed_negatives);
                }
                if (team > 1) {  // route the chunk's contributions to phase 2's buckets
                    route(P.user_rows, P.batch_users, lo, hi, n_buckets, user_routes.chunks[c],
                          user_routes.offsets.data() + c * (n_buckets + 1), scratch);
                    route(P.item_rows, P.batch_items, lo * (M + 1), hi * (M + 1), n_buckets, item_routes.chunks[c],
                          item_routes.offsets.data() + c * (n_buckets + 1), scratch);
                }
            }  // (implicit barrier: every gradient of the batch is written)
            // Adam counts one step per batch
            ++user_step;
            ++item_step;
            const double adam_lr_user = adam_step_size(P, user_step);
            const double adam_lr_item = adam_step_size(P, item_step);
#pragma omp single nowait
            {
                double batch = 0.0;
                for (int64_t j = 0; j < b; ++j) batch += P.sample_loss[j];
                total += batch * static_cast<double>(b);
            }
            if (team == 1) {
                update_table(P, P.user, P.user_rows, P.batch_users, P.grad_user, b, nullptr, 0, 0, 1, adam_lr_user,
                             chain, rows, sum);
                update_table(P, P.item, P.item_rows, P.batch_items, P.grad_item, b * (M + 1), nullptr, 0, 0, 1,
                             adam_lr_item, chain, rows, sum);
            } else {
#pragma omp for schedule(dynamic, 1)
                for (int64_t k = 0; k < 2 * n_buckets; ++k) {  // the user table's buckets, then the item table's
                    if (k < n_buckets)
                        update_table(P, P.user, P.user_rows, P.batch_users, P.grad_user, b, &user_routes, n_chunks,
                                     k, n_buckets, adam_lr_user, chain, rows, sum);
                    else
                        update_table(P, P.item, P.item_rows, P.batch_items, P.grad_item, b * (M + 1), &item_routes,
                                     n_chunks, k - n_buckets, n_buckets, adam_lr_item, chain, rows, sum);
                }  // (implicit barrier: the batch is applied before the next one reads the weights)
            }
        }
        if (P.optimizer == ADAM) {
#pragma omp single nowait
            {
                *P.user.step = user_step;
                *P.item.step = item_step;
            }
        }
    }
    return total;
}

// Negatives drawn as train draws them: out[i * M + k] is negative k of
// a sample of user users[i] at epoch position i.
void sample(const Problem& P, const int64_t* users, int64_t n, uint64_t seed, int64_t* out) {
    for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < P.n_negatives; ++k)
            out[i * P.n_negatives + k] = draw_negative(P, users[i], seed, static_cast<uint64_t>(i), k);
}

// The epoch order train uses for n samples and this seed.
void permutation(int64_t n, uint64_t seed, int64_t* out) {
    const Permutation perm(static_cast<uint64_t>(n), seed ^ 0x5bd1e9955bd1e995ULL);
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(perm(static_cast<uint64_t>(i)));
}

}  // namespace

#define SKBPR_STR2(x) #x
#define SKBPR_STR(x) SKBPR_STR2(x)
const KernelFunctions functions = {SKBPR_STR(SKBPR_ISA), &train, &sample, &permutation};

}  // namespace SKBPR_ISA
}  // namespace skbpr
