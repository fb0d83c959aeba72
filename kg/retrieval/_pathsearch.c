/* Compiled path search of PathRetriever (kgfuse.kg.retrieval.paths).
 *
 * PathSearch(graph arrays) is built once per retriever; each call finds all the paths of
 * one statement: the same meet-in-the-middle search as the numpy implementation in
 * paths.py (which stays the reference and the fallback), with the same growth budget
 * (max_expansion), the same candidate caps (max_candidates per pair and level; at the
 * 3-edge level per window of `window`, then doubling, edges of cost) and the same kept
 * paths in the same order. PathRetriever's docstring defines them; this file follows it:
 *
 *   - half-paths are grown from the question concepts (forward) and from the answer
 *     concepts (backward); growing a half-path appends each edge of its end node (its
 *     out-edges in out-CSR order, then its in-edges in in-CSR order, as the direction
 *     allows) whose other end is not on the half-path yet. When the half-paths have at
 *     least one edge and their end nodes' edges exceed max_expansion, only the rows in
 *     ascending (cost, end node, row) order that fit in the budget are grown;
 *   - a join of outer half-paths f with inner half-paths b enumerates, per pair (outer
 *     source s, inner source t), the outer half-paths in generation order and for each the
 *     inner half-paths of t ending at its end node, in generation order; of the first
 *     max_candidates candidates, the first quota[s, t] simple ones are kept (a candidate
 *     is simple when the nodes of both halves before the meeting node are disjoint);
 *   - lengths 1, 2 and 4 join 1|0, 1|1 and 2|2 edges; length 3 grows the cheaper side to
 *     two edges on the fly, reading the CSR slices of its half-paths' end nodes as one
 *     stream joined with the other side, and stops when every pair is full.
 *
 * The question side (its 1-edge half-paths, their costs, their join index) is kept from
 * one call to the next while the question concepts stay the same.
 *
 * No numpy headers: arrays come in through the buffer protocol (int64, C-contiguous) and
 * go out as bytearrays that the caller wraps with numpy.frombuffer. Not thread-safe per
 * object (a call made while another runs on the same object raises RuntimeError); the GIL
 * is released during the search.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t i64;

#define MAX_HOPS 4
#define NGRAPH 6 /* out_ptr, in_ptr, tail, in_nbr, in_order, relation */
#define PF 32 /* rows ahead whose scattered reads are prefetched */
#define CHUNK 512 /* edges of the 3-edge stream filtered at once */

/* A growable scratch buffer (kept between calls). */
typedef struct {
    void *p;
    size_t cap;
} Buf;

static void *buf_get(Buf *b, size_t bytes) {
    if (bytes > b->cap || !b->p) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < bytes) cap *= 2;
        void *p = realloc(b->p, cap);
        if (!p) return NULL;
        b->p = p;
        b->cap = cap;
    }
    return b->p;
}

static void buf_free(Buf *b) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

/* Half-paths: src [n] (index of the source concept), nodes [n, k+1], edges [n, k] (edge
 * ids), fwd [n, k] (edge walked head -> tail while walking away from the source). */
typedef struct {
    i64 n;
    int k;
    i64 *src, *nodes, *edges;
    uint8_t *fwd;
    Buf bsrc, bnodes, bedges, bfwd;
} Half;

/* The half-paths of one side indexed by (end node, source): loc[node] is the end node's
 * local id u; the rows of source s ending there are idx[start[u*nsrc+s] ..
 * start[u*nsrc+s+1]], in generation order. loc and bits (the end nodes as a bitset) are
 * the scratch arrays the table was built in. */
typedef struct {
    i64 nsrc, nloc;
    int32_t *loc;
    uint8_t *bits;
    i64 *nodes, *start, *idx;
    Buf bnodes, bstart, bidx, bfill, bu;
} Table;

/* Found paths: key [n, W] = (qi, ai, length, nodes [H+1] padded with the last node, edges
 * [H] padded with -1); fwd [n, H] padded with 1. */
typedef struct {
    i64 n, cap;
    int H, W;
    Buf bkey, bfwd;
} Paths;

typedef struct {
    PyObject_HEAD
    Py_buffer view[NGRAPH];
    int nviews;
    const i64 *out_ptr, *in_ptr, *tail, *in_nbr, *in_order, *rel;
    uint8_t *rel8;     /* relation as bytes when num_relations <= 256 (the layout reads it) */
    i64 n_nodes, n_edges, n_rel;
    int32_t *loc[2]; /* node -> local id scratch, -1 elsewhere: [0] question side, [1] others */
    uint8_t *bits[2];
    /* settings of the current call */
    int directed;
    i64 max_paths, max_expansion, max_candidates, window;
    int truncated;
    int busy;
    /* the question side, kept while the question concepts (and direction) stay the same */
    int q_valid, q_directed, q_table_built;
    i64 nq_key;
    Buf bq_key, bq_cost;
    Half F0, F1;
    i64 cf;
    Table QT;
    /* per-call half-paths, tables and scratch (capacity kept) */
    Half B0, B1, F2, B2;
    Table T;
    Paths P;
    Buf bquota, bseen, bopen, brows, bcost, bradix, bkeep, border, btmp, bothers, btl, bmark, bfrows, bcnt, bitems;
} Searcher;

/* ------------------------------------------------------------------ half-paths */
static void half_free(Half *h) {
    buf_free(&h->bsrc);
    buf_free(&h->bnodes);
    buf_free(&h->bedges);
    buf_free(&h->bfwd);
    h->n = 0;
}

static int half_reserve(Half *h, int k, i64 n) {
    size_t m = (size_t)(n > 0 ? n : 1);
    h->k = k;
    h->src = buf_get(&h->bsrc, m * sizeof(i64));
    h->nodes = buf_get(&h->bnodes, m * (k + 1) * sizeof(i64));
    h->edges = buf_get(&h->bedges, m * (k > 0 ? k : 1) * sizeof(i64));
    h->fwd = buf_get(&h->bfwd, m * (k > 0 ? k : 1));
    return (h->src && h->nodes && h->edges && h->fwd) ? 0 : -1;
}

static int half_start(Half *h, const i64 *sources, i64 n) {
    if (half_reserve(h, 0, n)) return -1;
    for (i64 i = 0; i < n; i++) {
        h->src[i] = i;
        h->nodes[i] = sources[i];
    }
    h->n = n;
    return 0;
}

static inline i64 node_cost(const Searcher *S, i64 v, int use_out, int use_in) {
    i64 x = 0;
    if (use_out) x += S->out_ptr[v + 1] - S->out_ptr[v];
    if (use_in) x += S->in_ptr[v + 1] - S->in_ptr[v];
    return x;
}

/* cost[i]: node_cost of the end node of row i of h (the CSR offsets fetched ahead: the end
 * nodes are scattered over the graph) */
static void end_costs(const Searcher *S, const Half *h, int use_out, int use_in, i64 *cost) {
    i64 n = h->n, w = h->k + 1;
    const i64 *end = h->nodes + h->k;
    for (i64 i = 0; i < n; i++) {
        if (i + PF < n) {
            i64 v = end[(i + PF) * w];
            if (use_out) __builtin_prefetch(S->out_ptr + v);
            if (use_in) __builtin_prefetch(S->in_ptr + v);
        }
        cost[i] = node_cost(S, end[i * w], use_out, use_in);
    }
}

/* One stable counting-sort pass of idx by 8 bits of key (at `shift`); 0 when every key has
 * the same digit there (nothing to do). */
static int radix_pass(const i64 *key, int shift, const i64 *in, i64 *out, i64 n) {
    i64 cnt[257];
    memset(cnt, 0, sizeof cnt);
    for (i64 i = 0; i < n; i++) cnt[((key[in[i]] >> shift) & 255) + 1]++;
    for (int d = 1; d <= 256; d++)
        if (cnt[d] == n) return 0;
    for (int d = 0; d < 256; d++) cnt[d + 1] += cnt[d];
    for (i64 i = 0; i < n; i++) out[cnt[(key[in[i]] >> shift) & 255]++] = in[i];
    return 1;
}

/* idx [n] sorted by (key1, key0, row): stable LSD radix sort on non-negative keys. */
static int sort_rows_by(Searcher *S, const i64 *key0, const i64 *key1, i64 *idx, i64 n) {
    i64 *tmp = buf_get(&S->bradix, (size_t)(n > 0 ? n : 1) * sizeof(i64));
    if (!tmp) return -1;
    for (i64 i = 0; i < n; i++) idx[i] = i;
    const i64 *keys[2] = {key0, key1};
    i64 *a = idx, *b = tmp;
    for (int w = 0; w < 2; w++) {
        i64 mx = 0;
        for (i64 i = 0; i < n; i++)
            if (keys[w][i] > mx) mx = keys[w][i];
        for (int shift = 0; shift < 64 && (mx >> shift); shift += 8)
            if (radix_pass(keys[w], shift, a, b, n)) {
                i64 *t = a;
                a = b;
                b = t;
            }
    }
    if (a != idx) memcpy(idx, a, (size_t)n * sizeof(i64));
    return 0;
}

/* Rows of h to expand (ascending) and their costs, into S->brows / S->bcost: all of them,
 * unless the half-paths have at least one edge and their total cost exceeds max_expansion;
 * then the rows in ascending (cost, end node, row) order while the running cost stays
 * within the budget. `cost_in` (optional): the rows' costs, already known. Returns the
 * number of rows, -1 when out of memory. */
static i64 budget_rows(Searcher *S, const Half *h, int use_out, int use_in, const i64 *cost_in, i64 **rows_out,
                       i64 **cost_out) {
    i64 n = h->n, k = h->k, total = 0;
    size_t m = (size_t)(n > 0 ? n : 1);
    i64 *rows = buf_get(&S->brows, m * sizeof(i64)), *cost = buf_get(&S->bcost, m * sizeof(i64));
    if (!rows || !cost) return -1;
    if (cost_in) memcpy(cost, cost_in, (size_t)n * sizeof(i64));
    else end_costs(S, h, use_out, use_in, cost);
    for (i64 i = 0; i < n; i++) {
        total += cost[i];
        rows[i] = i;
    }
    if (total > S->max_expansion && k >= 1) {
        /* ends into `rows` for the sort keys, the order into `keep` */
        i64 *ends = rows, *order = buf_get(&S->bkeep, m * sizeof(i64));
        if (!order) return -1;
        for (i64 i = 0; i < n; i++) ends[i] = h->nodes[i * (k + 1) + k];
        if (sort_rows_by(S, ends, cost, order, n)) return -1;
        i64 acc = 0, j = 0;
        for (; j < n; j++) {
            acc += cost[order[j]];
            if (acc > S->max_expansion) break;
        }
        /* the first j rows of `order`, ascending: mark them in `ends` (reused as flags) */
        for (i64 i = 0; i < n; i++) ends[i] = 0;
        for (i64 x = 0; x < j; x++) ends[order[x]] = 1;
        i64 mm = 0;
        for (i64 i = 0; i < n; i++)
            if (ends[i]) {
                cost[mm] = cost[i];
                rows[mm++] = i;
            }
        n = mm;
        S->truncated = 1;
    }
    *rows_out = rows;
    *cost_out = cost;
    return n;
}

static inline int on_path(const i64 *nodes, int len, i64 x) {
    for (int j = 0; j < len; j++)
        if (nodes[j] == x) return 1;
    return 0;
}

static inline void half_push(Half *o, const Half *h, i64 r, i64 x, i64 eid, uint8_t fwd) {
    int k = h->k;
    i64 i = o->n++;
    o->src[i] = h->src[r];
    const i64 *hn = h->nodes + r * (k + 1);
    i64 *on = o->nodes + i * (k + 2);
    for (int j = 0; j <= k; j++) on[j] = hn[j];
    on[k + 1] = x;
    i64 *oe = o->edges + i * (k + 1);
    uint8_t *of = o->fwd + i * (k + 1);
    for (int j = 0; j < k; j++) {
        oe[j] = h->edges[r * k + j];
        of[j] = h->fwd[r * k + j];
    }
    oe[k] = eid;
    of[k] = fwd;
}

/* One more edge on every half-path of h (within the budget); simple ones only. */
static int grow(Searcher *S, const Half *h, int forward_side, Half *o) {
    int use_out = !S->directed || forward_side, use_in = !S->directed || !forward_side;
    i64 *rows, *cost;
    i64 nr = budget_rows(S, h, use_out, use_in, NULL, &rows, &cost);
    if (nr < 0) return -1;
    i64 need = 0;
    for (i64 j = 0; j < nr; j++) need += cost[j];
    o->n = 0;
    if (half_reserve(o, h->k + 1, need)) return -1;
    int k = h->k;
    for (i64 j = 0; j < nr; j++) {
        i64 r = rows[j];
        const i64 *hn = h->nodes + r * (k + 1);
        i64 v = hn[k];
        if (use_out)
            for (i64 p = S->out_ptr[v]; p < S->out_ptr[v + 1]; p++) {
                i64 x = S->tail[p];
                if (!on_path(hn, k + 1, x)) half_push(o, h, r, x, p, 1);
            }
        if (use_in)
            for (i64 p = S->in_ptr[v]; p < S->in_ptr[v + 1]; p++) {
                i64 x = S->in_nbr[p];
                if (!on_path(hn, k + 1, x)) half_push(o, h, r, x, S->in_order[p], 0);
            }
    }
    return 0;
}

/* ------------------------------------------------------------------ join tables */
static void table_release(Table *t) {
    for (i64 l = 0; l < t->nloc; l++) {
        if (l + PF < t->nloc) {
            i64 w = t->nodes[l + PF];
            __builtin_prefetch(t->loc + w, 1);
            __builtin_prefetch(t->bits + (w >> 3), 1);
        }
        i64 v = t->nodes[l];
        t->loc[v] = -1;
        t->bits[v >> 3] = 0;
    }
    t->nloc = 0;
}

static void table_free(Table *t) {
    buf_free(&t->bnodes);
    buf_free(&t->bstart);
    buf_free(&t->bidx);
    buf_free(&t->bfill);
    buf_free(&t->bu);
}

static int table_build(const Half *h, i64 nsrc, int32_t *loc, uint8_t *bits, Table *t) {
    i64 n = h->n, k = h->k;
    size_t m = (size_t)(n > 0 ? n : 1);
    t->nsrc = nsrc;
    t->nloc = 0;
    t->loc = loc;
    t->bits = bits;
    t->nodes = buf_get(&t->bnodes, m * sizeof(i64));
    t->idx = buf_get(&t->bidx, m * sizeof(i64));
    int32_t *ur = buf_get(&t->bu, m * sizeof(int32_t)); /* each row's local id */
    if (!t->nodes || !t->idx || !ur) return -1;
    for (i64 i = 0; i < n; i++) {
        if (i + PF < n) {
            i64 w = h->nodes[(i + PF) * (k + 1) + k];
            __builtin_prefetch(loc + w, 1);
            __builtin_prefetch(bits + (w >> 3), 1);
        }
        i64 v = h->nodes[i * (k + 1) + k];
        int32_t u = loc[v];
        if (u < 0) {
            u = loc[v] = (int32_t)t->nloc;
            t->nodes[t->nloc++] = v;
            bits[v >> 3] |= (uint8_t)(1u << (v & 7));
        }
        ur[i] = u;
    }
    i64 nk = t->nloc * nsrc;
    t->start = buf_get(&t->bstart, (size_t)(nk + 1) * sizeof(i64));
    i64 *fill = buf_get(&t->bfill, (size_t)(nk > 0 ? nk : 1) * sizeof(i64));
    if (!t->start || !fill) {
        table_release(t);
        return -1;
    }
    memset(t->start, 0, (size_t)(nk + 1) * sizeof(i64));
    for (i64 i = 0; i < n; i++) t->start[ur[i] * nsrc + h->src[i] + 1]++;
    for (i64 j = 0; j < nk; j++) t->start[j + 1] += t->start[j];
    memcpy(fill, t->start, (size_t)nk * sizeof(i64));
    for (i64 i = 0; i < n; i++) t->idx[fill[ur[i] * nsrc + h->src[i]]++] = i;
    return 0;
}

/* ------------------------------------------------------------------ found paths */
static int paths_add(Paths *P, i64 qi, i64 ai, int L, const i64 *nodes, const i64 *edges, const uint8_t *fwd) {
    if (P->n == P->cap) {
        i64 cap = P->cap ? 2 * P->cap : 256;
        if (!buf_get(&P->bkey, (size_t)cap * P->W * sizeof(i64)) || !buf_get(&P->bfwd, (size_t)cap * P->H))
            return -1;
        P->cap = cap;
    }
    int H = P->H;
    i64 *k = (i64 *)P->bkey.p + P->n * P->W;
    uint8_t *f = (uint8_t *)P->bfwd.p + P->n * H;
    k[0] = qi;
    k[1] = ai;
    k[2] = L;
    for (int j = 0; j <= H; j++) k[3 + j] = nodes[j <= L ? j : L];
    for (int j = 0; j < H; j++) {
        k[4 + H + j] = j < L ? edges[j] : -1;
        f[j] = j < L ? fwd[j] : 1;
    }
    P->n++;
    return 0;
}

static inline int disjoint(const i64 *a, int na, const i64 *b, int nb) {
    for (int x = 0; x < na; x++)
        for (int y = 0; y < nb; y++)
            if (a[x] == b[y]) return 0;
    return 1;
}

/* Per-call counters: quota [nq*na] (paths still wanted per pair), seen [nq*na] (candidates
 * considered per pair), open [max(nq, na)] (open pairs per outer source). */
static i64 *zeroed(Buf *b, i64 n) {
    i64 *p = buf_get(b, (size_t)(n > 0 ? n : 1) * sizeof(i64));
    if (p) memset(p, 0, (size_t)(n > 0 ? n : 1) * sizeof(i64));
    return p;
}

/* Paths q .. m .. a from forward half-paths f and backward half-paths b meeting at m
 * (b indexed by table T); quota [nq, na] is updated. */
static int join(Searcher *S, const Half *f, const Half *b, const Table *T, const i64 *frows, i64 nf, i64 *quota,
                i64 nq, i64 na) {
    i64 *seen = zeroed(&S->bseen, nq * na), *open = zeroed(&S->bopen, nq);
    if (!seen || !open) return -1;
    for (i64 p = 0; p < nq * na; p++)
        if (quota[p] > 0) open[p / na]++;
    int kf = f->k, kb = b->k, L = kf + kb;
    i64 nodes[2 * MAX_HOPS + 2], edges[2 * MAX_HOPS];
    uint8_t fw[2 * MAX_HOPS];
    const i64 maxc = S->max_candidates;
    const uint8_t *bits = T->bits;
    for (i64 x = 0; x < nf; x++) {
        i64 i = frows ? frows[x] : x;
        const i64 *fn = f->nodes + i * (kf + 1);
        i64 m = fn[kf];
        if (!((bits[m >> 3] >> (m & 7)) & 1)) continue;
        i64 s = f->src[i];
        if (!open[s]) continue;
        i64 u = T->loc[m];
        for (i64 t = 0; t < na; t++) {
            i64 p = s * na + t;
            if (quota[p] <= 0) continue;
            for (i64 j = T->start[u * na + t], hi = T->start[u * na + t + 1]; j < hi; j++) {
                if (seen[p] >= maxc) break;
                seen[p]++;
                i64 bi = T->idx[j];
                const i64 *bn = b->nodes + bi * (kb + 1);
                if (!disjoint(fn, kf, bn, kb)) continue;
                for (int x = 0; x <= kf; x++) nodes[x] = fn[x];
                for (int x = 0; x < kf; x++) {
                    edges[x] = f->edges[i * kf + x];
                    fw[x] = f->fwd[i * kf + x];
                }
                for (int y = 0; y < kb; y++) {
                    nodes[kf + 1 + y] = bn[kb - 1 - y];
                    edges[kf + y] = b->edges[bi * kb + kb - 1 - y];
                    fw[kf + y] = !b->fwd[bi * kb + kb - 1 - y];
                }
                if (paths_add(&S->P, s, t, L, nodes, edges, fw)) return -1;
                if (--quota[p] == 0) {
                    open[s]--;
                    break;
                }
            }
        }
    }
    return 0;
}

/* The question side's join index (QT: F1 by end node and source), made once per question. */
static int question_table(Searcher *S) {
    if (S->q_table_built) return 0;
    if (table_build(&S->F1, S->nq_key, S->loc[0], S->bits[0], &S->QT)) return -1;
    S->q_table_built = 1;
    return 0;
}

/* The rows of F1 that end where a half-path of table T ends, ascending (into S->bfrows): the
 * only rows of F1 a join with T's half-paths can use, found through QT. */
static i64 question_rows(Searcher *S, const Table *T, i64 **out) {
    const Table *Q = &S->QT;
    i64 n = S->F1.n, nw = (n + 63) / 64, ns = Q->nsrc, cnt = 0;
    uint64_t *mark = (uint64_t *)zeroed(&S->bmark, nw);
    if (!mark) return -1;
    for (i64 l = 0; l < T->nloc; l++) {
        i64 v = T->nodes[l];
        if (!((Q->bits[v >> 3] >> (v & 7)) & 1)) continue;
        i64 u = Q->loc[v];
        for (i64 j = Q->start[u * ns], jh = Q->start[(u + 1) * ns]; j < jh; j++) {
            i64 i = Q->idx[j];
            mark[i >> 6] |= (uint64_t)1 << (i & 63);
            cnt++;
        }
    }
    i64 *rows = buf_get(&S->bfrows, (size_t)(cnt > 0 ? cnt : 1) * sizeof(i64));
    if (!rows) return -1;
    i64 k = 0;
    for (i64 w = 0; w < nw && k < cnt; w++)
        for (uint64_t x = mark[w]; x; x &= x - 1) rows[k++] = w * 64 + __builtin_ctzll(x);
    *out = rows;
    return k;
}

/* join() of f and b through a table of b built in the "others" scratch; when f is the
 * question side's F1, only its rows that meet b are read. */
static int join_halves(Searcher *S, const Half *f, const Half *b, i64 *quota, i64 nq, i64 na) {
    if (f->n == 0 || b->n == 0) return 0;
    if (f == &S->F1 && question_table(S)) return -1;
    if (table_build(b, na, S->loc[1], S->bits[1], &S->T)) return -1;
    const i64 *frows = NULL;
    i64 nf = f->n;
    int rc = 0;
    if (f == &S->F1) {
        i64 *r;
        nf = question_rows(S, &S->T, &r);
        frows = r;
        if (nf < 0) rc = -1;
    }
    if (!rc) rc = join(S, f, b, &S->T, frows, nf, quota, nq, na);
    table_release(&S->T);
    return rc;
}

/* Paths of 3 edges: the cheaper side (F1: forward, B1: backward, one edge each) is grown to
 * two edges while its edges are read as one stream, joined on the fly with the other side;
 * it is the outer side of the enumeration. max_candidates counts per window of the stream
 * (rows of doubling cost from S->window). The edges are read a chunk at a time, first only
 * to keep those whose other end is in the table (no branch per edge), then per the inner
 * sources whose pair with the row's source is still open (a full pair costs nothing more). */
static int level3(Searcher *S, i64 *quota, i64 nq, i64 na) {
    const Half *F1 = &S->F1, *B1 = &S->B1;
    int dir = S->directed;
    i64 cb = 0;
    i64 *bcost = buf_get(&S->bothers, (size_t)(B1->n > 0 ? B1->n : 1) * sizeof(i64));
    if (!bcost) return -1;
    end_costs(S, B1, !dir, 1, bcost);
    for (i64 i = 0; i < B1->n; i++) cb += bcost[i];
    int grow_f = S->cf <= cb;
    const Half *side = grow_f ? F1 : B1, *other = grow_f ? B1 : F1;
    int use_out = !dir || grow_f, use_in = !dir || !grow_f;
    i64 *rows, *cost;
    i64 nr = budget_rows(S, side, use_out, use_in, grow_f ? (const i64 *)S->bq_cost.p : bcost, &rows, &cost);
    if (nr < 0) return -1;
    if (nr == 0 || other->n == 0) return 0;
    const Table *T;
    if (grow_f) {
        if (table_build(B1, na, S->loc[1], S->bits[1], &S->T)) return -1;
        T = &S->T;
    } else {
        if (question_table(S)) return -1;
        T = &S->QT;
    }
    int rc = 0;
    i64 ns = grow_f ? nq : na, nt = grow_f ? na : nq; /* outer, inner sources */
    i64 *seen = zeroed(&S->bseen, nq * na), *open = zeroed(&S->bopen, ns);
    i64 *tl = buf_get(&S->btl, (size_t)(nt > 0 ? nt : 1) * sizeof(i64));
    if (!seen || !open || !tl) {
        rc = -1;
        goto done;
    }
    /* quota of (outer s, inner t): quota[s * si + t * ti] */
    i64 si = grow_f ? na : 1, ti = grow_f ? 1 : na;
    i64 n_open = 0;
    for (i64 s = 0; s < ns; s++)
        for (i64 t = 0; t < nt; t++)
            if (quota[s * si + t * ti] > 0) {
                open[s]++;
                n_open++;
            }
    const i64 maxc = S->max_candidates;
    const int32_t *loc = T->loc;
    const uint8_t *bits = T->bits;
    const i64 *tstart = T->start, *tidx = T->idx, *onodes = other->nodes;
    i64 nodes[4], edges[3];
    uint8_t fw[3];
    int32_t hit[CHUNK];
    i64 row = 0, limit = S->window, wbase = 0;
    while (row < nr && n_open > 0) {
        /* the window: rows from `row` while their stream end stays within wbase + limit */
        i64 stop = row + 1, wend = wbase + cost[row];
        while (stop < nr && wend + cost[stop] <= wbase + limit) wend += cost[stop++];
        memset(seen, 0, (size_t)(nq * na) * sizeof(i64));
        for (; row < stop && n_open > 0; row++) {
            i64 r = rows[row];
            i64 s = side->src[r];
            if (!open[s]) continue;
            /* the inner sources whose pair with s still wants paths, ascending */
            i64 ntl = 0;
            for (i64 t = 0; t < nt; t++)
                if (quota[s * si + t * ti] > 0) tl[ntl++] = t;
            const i64 s0 = side->nodes[2 * r], s1 = side->nodes[2 * r + 1];
            for (int part = 0; part < 2 && ntl; part++) {
                const i64 *nbr_arr;
                i64 lo, hi;
                if (part == 0) {
                    if (!use_out) continue;
                    nbr_arr = S->tail;
                    lo = S->out_ptr[s1];
                    hi = S->out_ptr[s1 + 1];
                } else {
                    if (!use_in) continue;
                    nbr_arr = S->in_nbr;
                    lo = S->in_ptr[s1];
                    hi = S->in_ptr[s1 + 1];
                }
                for (i64 c0 = lo; c0 < hi && ntl; c0 += CHUNK) {
                    /* the chunk's edges whose other end has inner half-paths, without a branch per edge */
                    i64 c1 = c0 + CHUNK < hi ? c0 + CHUNK : hi, nh = 0;
                    for (i64 e = c0; e < c1; e++) {
                        i64 m = nbr_arr[e];
                        hit[nh] = (int32_t)(e - c0);
                        nh += (bits[m >> 3] >> (m & 7)) & 1;
                    }
                    for (i64 h = 0; h < nh && ntl; h++) {
                        i64 e = c0 + hit[h];
                        i64 m = nbr_arr[e];
                        if (m == s0 || m == s1) continue;
                        const i64 *ts = tstart + (i64)loc[m] * nt;
                        /* the inner half-paths ending at m, per open inner source */
                        for (i64 k = 0; k < ntl; k++) {
                            i64 t = tl[k];
                            i64 j = ts[t], jh = ts[t + 1];
                            if (j == jh) continue;
                            i64 p = s * si + t * ti;
                            for (; j < jh; j++) {
                                if (seen[p] >= maxc) break;
                                seen[p]++;
                                i64 oi = tidx[j];
                                i64 o0 = onodes[2 * oi];
                                if (s0 == o0 || s1 == o0) continue;
                                i64 eid = part == 0 ? e : S->in_order[e];
                                uint8_t fl = part == 0;
                                int bad;
                                if (grow_f) {
                                    nodes[0] = s0; nodes[1] = s1; nodes[2] = m; nodes[3] = o0;
                                    edges[0] = side->edges[r]; edges[1] = eid; edges[2] = other->edges[oi];
                                    fw[0] = side->fwd[r]; fw[1] = fl; fw[2] = !other->fwd[oi];
                                    bad = paths_add(&S->P, s, t, 3, nodes, edges, fw);
                                } else { /* paths a .. q: turned round */
                                    nodes[0] = o0; nodes[1] = m; nodes[2] = s1; nodes[3] = s0;
                                    edges[0] = other->edges[oi]; edges[1] = eid; edges[2] = side->edges[r];
                                    fw[0] = other->fwd[oi]; fw[1] = !fl; fw[2] = !side->fwd[r];
                                    bad = paths_add(&S->P, t, s, 3, nodes, edges, fw);
                                }
                                if (bad) {
                                    rc = -1;
                                    goto done;
                                }
                                if (--quota[p] == 0) { /* the pair is full: drop t from the list */
                                    open[s]--;
                                    n_open--;
                                    for (i64 x = k; x + 1 < ntl; x++) tl[x] = tl[x + 1];
                                    ntl--;
                                    k--;
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        row = stop;
        wbase = wend;
        if (limit < ((i64)1 << 61)) limit *= 2;
    }
done:
    if (grow_f) table_release(&S->T);
    return rc;
}

/* ------------------------------------------------------------------ the question side */
static void question_reset(Searcher *S) {
    if (S->q_table_built) table_release(&S->QT);
    S->q_table_built = 0;
    S->q_valid = 0;
}

static int question_side(Searcher *S, const i64 *q, i64 nq) {
    if (S->q_valid && S->nq_key == nq && S->q_directed == S->directed &&
        (nq == 0 || memcmp(S->bq_key.p, q, (size_t)nq * sizeof(i64)) == 0))
        return 0;
    question_reset(S);
    i64 *key = buf_get(&S->bq_key, (size_t)(nq > 0 ? nq : 1) * sizeof(i64));
    if (!key) return -1;
    if (nq) memcpy(key, q, (size_t)nq * sizeof(i64));
    if (half_start(&S->F0, q, nq) || grow(S, &S->F0, 1, &S->F1)) return -1;
    i64 *cost = buf_get(&S->bq_cost, (size_t)(S->F1.n > 0 ? S->F1.n : 1) * sizeof(i64));
    if (!cost) return -1;
    S->cf = 0;
    end_costs(S, &S->F1, 1, !S->directed, cost);
    for (i64 i = 0; i < S->F1.n; i++) S->cf += cost[i];
    S->nq_key = nq;
    S->q_directed = S->directed;
    S->q_valid = 1;
    return 0;
}

/* ------------------------------------------------------------------ final order */
static inline int key_cmp(const i64 *a, const i64 *b, int W) {
    for (int j = 0; j < W; j++)
        if (a[j] != b[j]) return a[j] < b[j] ? -1 : 1;
    return 0;
}

/* Paths to order: the free nodes packed into pk (compared first), the row of the key. */
typedef struct {
    uint64_t pk;
    i64 idx;
} Item;

static inline int item_lt(const Item *x, const Item *y, const i64 *key, int W) {
    if (x->pk != y->pk) return x->pk < y->pk;
    return key_cmp(key + x->idx * W, key + y->idx * W, W) < 0;
}

/* stable merge sort of it[0..n) by (pk, key row) */
static void item_sort(Item *it, Item *tmp, i64 n, const i64 *key, int W) {
    if (n <= 16) {
        for (i64 i = 1; i < n; i++) {
            Item x = it[i];
            i64 j = i;
            while (j > 0 && item_lt(&x, &it[j - 1], key, W)) {
                it[j] = it[j - 1];
                j--;
            }
            it[j] = x;
        }
        return;
    }
    i64 h = n / 2;
    item_sort(it, tmp, h, key, W);
    item_sort(it + h, tmp, n - h, key, W);
    if (!item_lt(&it[h], &it[h - 1], key, W)) return; /* already in order */
    i64 i = 0, j = h, o = 0;
    while (i < h && j < n) tmp[o++] = item_lt(&it[j], &it[i], key, W) ? it[j++] : it[i++];
    while (i < h) tmp[o++] = it[i++];
    memcpy(it, tmp, (size_t)o * sizeof(Item));
}

/* ------------------------------------------------------------------ the search */
static int search(Searcher *S, const i64 *q, i64 nq, const i64 *a, i64 na, int H) {
    S->truncated = 0;
    S->P.n = 0;
    S->P.H = H;
    S->P.W = 3 + (H + 1) + H;
    S->P.cap = 0; /* the key width may differ from the last call: regrow */
    if (question_side(S, q, nq)) return -1;
    i64 *quota = buf_get(&S->bquota, (size_t)(nq * na > 0 ? nq * na : 1) * sizeof(i64));
    if (!quota) return -1;
    for (i64 p = 0; p < nq * na; p++) quota[p] = S->max_paths;
    if (half_start(&S->B0, a, na)) return -1;
    if (H >= 2 && grow(S, &S->B0, 0, &S->B1)) return -1;
    for (int h = 1; h <= H; h++) {
        int r;
        if (h == 1) r = join_halves(S, &S->F1, &S->B0, quota, nq, na);
        else if (h == 2) r = join_halves(S, &S->F1, &S->B1, quota, nq, na);
        else if (h == 3) r = level3(S, quota, nq, na);
        else r = (grow(S, &S->F1, 1, &S->F2) || grow(S, &S->B1, 0, &S->B2)) ? -1
                 : join_halves(S, &S->F2, &S->B2, quota, nq, na);
        if (r) return -1;
        i64 mx = 0;
        for (i64 p = 0; p < nq * na; p++)
            if (quota[p] > mx) mx = quota[p];
        if (mx <= 0) break;
    }
    return 0;
}

/* The found paths in key order (qi, ai, length, nodes, edges), into S->border: a counting
 * sort by (qi, ai, length), then each group by the rest of its key. Within a group the first
 * node (q[qi]), the last ones (a[ai], padding) and the padded edges are the same, so the
 * nodes between, packed into 64 bits when they fit, decide nearly every comparison. */
static i64 *sorted_order(Searcher *S, i64 nq, i64 na) {
    i64 n = S->P.n, H = S->P.H, W = S->P.W, nb = nq * na * H;
    const i64 *key = S->P.bkey.p;
    size_t m = (size_t)(n > 0 ? n : 1);
    i64 *order = buf_get(&S->border, m * sizeof(i64)), *cnt = zeroed(&S->bcnt, nb + 1);
    if (!order || !cnt) return NULL;
    for (i64 i = 0; i < n; i++) {
        const i64 *k = key + i * W;
        cnt[(k[0] * na + k[1]) * H + k[2] - 1 + 1]++;
    }
    for (i64 b = 0; b < nb; b++) cnt[b + 1] += cnt[b];
    for (i64 i = 0; i < n; i++) {
        const i64 *k = key + i * W;
        order[cnt[(k[0] * na + k[1]) * H + k[2] - 1]++] = i;
    } /* now cnt[b] is the end of group b */
    int nbits = 1;
    while (nbits < 63 && ((i64)1 << nbits) < S->n_nodes) nbits++;
    Item *it = NULL, *tmp = NULL;
    for (i64 b = 0, lo = 0; b < nb; lo = cnt[b++]) {
        i64 len = cnt[b] - lo;
        if (len < 2) continue;
        if (!it) {
            it = buf_get(&S->bitems, m * sizeof(Item));
            tmp = buf_get(&S->btmp, m * sizeof(Item));
            if (!it || !tmp) return NULL;
        }
        int L = (int)(b % H) + 1;
        int pack = (L - 1) * nbits <= 64;
        for (i64 x = 0; x < len; x++) {
            i64 r = order[lo + x];
            uint64_t pk = 0;
            if (pack)
                for (int j = 1; j < L; j++) pk = (pk << nbits) | (uint64_t)key[r * W + 3 + j];
            it[x].pk = pk;
            it[x].idx = r;
        }
        item_sort(it, tmp, len, key, (int)W);
        for (i64 x = 0; x < len; x++) order[lo + x] = it[x].idx;
    }
    return order;
}

/* ------------------------------------------------------------------ Python type */
/* a new bytearray of n int64 values: column `off` .. off+w-1 of the sorted key rows */
static PyObject *key_columns(Searcher *S, const i64 *order, int off, int w) {
    i64 n = S->P.n;
    PyObject *out = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(n * w * (i64)sizeof(i64)));
    if (!out) return NULL;
    i64 *dst = (i64 *)PyByteArray_AS_STRING(out);
    const i64 *key = S->P.bkey.p;
    for (i64 i = 0; i < n; i++)
        for (int j = 0; j < w; j++) dst[i * w + j] = key[order[i] * S->P.W + off + j];
    return out;
}

static int get_i64(PyObject *obj, Py_buffer *view, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    if (view->itemsize != 8 || !(strcmp(f, "q") == 0 || strcmp(f, "l") == 0)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous int64 array", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void searcher_clear(Searcher *S) {
    if (S->q_table_built) table_release(&S->QT);
    for (int j = 0; j < S->nviews; j++) PyBuffer_Release(&S->view[j]);
    S->nviews = 0;
    free(S->rel8);
    S->rel8 = NULL;
    for (int j = 0; j < 2; j++) {
        free(S->loc[j]);
        free(S->bits[j]);
        S->loc[j] = NULL;
        S->bits[j] = NULL;
    }
    Half *halves[6] = {&S->F0, &S->F1, &S->B0, &S->B1, &S->F2, &S->B2};
    for (int j = 0; j < 6; j++) half_free(halves[j]);
    table_free(&S->T);
    table_free(&S->QT);
    buf_free(&S->P.bkey);
    buf_free(&S->P.bfwd);
    Buf *bufs[17] = {&S->bquota, &S->bseen, &S->bopen, &S->brows, &S->bcost,  &S->bradix,
                     &S->bkeep,  &S->border, &S->btmp, &S->bothers, &S->bq_key, &S->bq_cost,
                     &S->btl,    &S->bmark,  &S->bfrows, &S->bcnt, &S->bitems};
    for (int j = 0; j < 17; j++) buf_free(bufs[j]);
}

static void searcher_dealloc(Searcher *S) {
    searcher_clear(S);
    Py_TYPE(S)->tp_free((PyObject *)S);
}

static int searcher_init(Searcher *S, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"out_ptr", "in_ptr", "tail", "in_nbr", "in_order", "relation", "num_relations", NULL};
    static const char *names[NGRAPH] = {"out_ptr", "in_ptr", "tail", "in_nbr", "in_order", "relation"};
    PyObject *obj[NGRAPH];
    long long n_rel;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOL", kwlist, &obj[0], &obj[1], &obj[2], &obj[3], &obj[4],
                                     &obj[5], &n_rel))
        return -1;
    searcher_clear(S);
    for (int j = 0; j < NGRAPH; j++) {
        if (get_i64(obj[j], &S->view[j], names[j])) return -1;
        S->nviews = j + 1;
    }
    i64 N = (i64)(S->view[0].len / 8) - 1, E = (i64)(S->view[2].len / 8);
    if (N < 0 || S->view[1].len / 8 != N + 1 || S->view[3].len / 8 != E || S->view[4].len / 8 != E ||
        S->view[5].len / 8 != E) {
        PyErr_SetString(PyExc_ValueError, "PathSearch: inconsistent CSR array sizes");
        return -1;
    }
    S->out_ptr = S->view[0].buf;
    S->in_ptr = S->view[1].buf;
    S->tail = S->view[2].buf;
    S->in_nbr = S->view[3].buf;
    S->in_order = S->view[4].buf;
    S->rel = S->view[5].buf;
    S->n_nodes = N;
    S->n_edges = E;
    S->n_rel = n_rel;
    if (n_rel <= 256) {
        S->rel8 = malloc((size_t)(E > 0 ? E : 1));
        if (!S->rel8) {
            PyErr_NoMemory();
            return -1;
        }
        for (i64 e = 0; e < E; e++) {
            if (S->rel[e] < 0 || S->rel[e] >= 256) { /* not a relation id: keep the int64 array */
                free(S->rel8);
                S->rel8 = NULL;
                break;
            }
            S->rel8[e] = (uint8_t)S->rel[e];
        }
    }
    for (int j = 0; j < 2; j++) {
        S->loc[j] = malloc((size_t)(N > 0 ? N : 1) * sizeof(int32_t));
        S->bits[j] = calloc((size_t)(N / 8 + 1), 1);
        if (!S->loc[j] || !S->bits[j]) {
            PyErr_NoMemory();
            return -1;
        }
        memset(S->loc[j], 0xff, (size_t)(N > 0 ? N : 1) * sizeof(int32_t));
    }
    return 0;
}

/* Parse (q, a, max_hops, max_paths, directed, max_expansion, max_candidates, window), take
 * the object, run the search and sort. Returns the sorted order or NULL (exception set);
 * *views holds the two buffers to release. */
static i64 *run(Searcher *S, PyObject *args, Py_buffer *views, int *H_out) {
    PyObject *qo, *ao;
    int H, directed;
    long long max_paths, max_expansion, max_candidates, window;
    if (!PyArg_ParseTuple(args, "OOipLLLL", &qo, &ao, &H, &directed, &max_paths, &max_expansion, &max_candidates,
                          &window))
        return NULL;
    if (!S->nviews) {
        PyErr_SetString(PyExc_RuntimeError, "PathSearch was not initialised");
        return NULL;
    }
    if (H < 1 || H > MAX_HOPS) {
        PyErr_Format(PyExc_ValueError, "max_hops must be in 1..%d", MAX_HOPS);
        return NULL;
    }
    if (get_i64(qo, &views[0], "q")) return NULL;
    if (get_i64(ao, &views[1], "a")) {
        PyBuffer_Release(&views[0]);
        return NULL;
    }
    const i64 *q = views[0].buf, *a = views[1].buf;
    i64 nq = views[0].len / 8, na = views[1].len / 8;
    for (i64 i = 0; i < nq + na; i++) {
        i64 x = i < nq ? q[i] : a[i - nq];
        if (x < 0 || x >= S->n_nodes) {
            PyErr_Format(PyExc_IndexError, "concept id %lld out of range", (long long)x);
            goto fail;
        }
    }
    if (S->busy) {
        PyErr_SetString(PyExc_RuntimeError, "PathSearch is not thread-safe: one search at a time per object");
        goto fail;
    }
    S->busy = 1;
    S->directed = directed;
    S->max_paths = max_paths;
    S->max_expansion = max_expansion;
    S->max_candidates = max_candidates;
    S->window = window > 0 ? window : 1;
    i64 *order = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = search(S, q, nq, a, na, H);
    if (!rc) order = sorted_order(S, nq, na);
    Py_END_ALLOW_THREADS
    S->busy = 0;
    if (rc || !order) {
        question_reset(S); /* a failed search may have left the question side half-made */
        PyErr_NoMemory();
        goto fail;
    }
    *H_out = H;
    return order;
fail:
    PyBuffer_Release(&views[0]);
    PyBuffer_Release(&views[1]);
    return NULL;
}

PyDoc_STRVAR(search_doc,
"search(q, a, max_hops, directed, max_paths, max_expansion, max_candidates, window)\n"
"--\n\n"
"The capped paths between the concepts q and a (int64 arrays): (P, truncated, qi, ai,\n"
"nodes, edges, fwd, length), the number of paths, whether max_expansion cut a growth,\n"
"and bytearrays of int64 qi [P], ai [P], nodes [P, max_hops+1] (padded with the last\n"
"node), edges [P, max_hops] (padded with -1), length [P] and bool fwd [P, max_hops]\n"
"(padded with True), sorted by (qi, ai, length, nodes, edges).");

static PyObject *searcher_search(Searcher *S, PyObject *args) {
    Py_buffer views[2];
    int H;
    i64 *order = run(S, args, views, &H);
    if (!order) return NULL;
    PyBuffer_Release(&views[0]);
    PyBuffer_Release(&views[1]);
    i64 n = S->P.n;
    PyObject *arr[6] = {NULL};
    arr[0] = key_columns(S, order, 0, 1);
    arr[1] = key_columns(S, order, 1, 1);
    arr[2] = key_columns(S, order, 3, H + 1);
    arr[3] = key_columns(S, order, 4 + H, H);
    arr[4] = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(n * H));
    arr[5] = key_columns(S, order, 2, 1);
    for (int j = 0; j < 6; j++)
        if (!arr[j]) goto fail;
    uint8_t *f = (uint8_t *)PyByteArray_AS_STRING(arr[4]);
    for (i64 i = 0; i < n; i++) memcpy(f + i * H, (uint8_t *)S->P.bfwd.p + order[i] * H, (size_t)H);
    return Py_BuildValue("(LONNNNNN)", (long long)n, S->truncated ? Py_True : Py_False, arr[0], arr[1], arr[2],
                         arr[3], arr[4], arr[5]);
fail:
    for (int j = 0; j < 6; j++) Py_XDECREF(arr[j]);
    return NULL;
}

static int cmp_i64(const void *x, const void *y) {
    i64 a = *(const i64 *)x, b = *(const i64 *)y;
    return (a > b) - (a < b);
}

PyDoc_STRVAR(node_set_doc,
"node_set(q, a, max_hops, directed, max_paths, max_expansion, max_candidates, window)\n"
"--\n\n"
"The search of search() laid out as PathRetriever.retrieve_nodes stores it: (truncated,\n"
"P, concept_ids, n_others, paths, path_rels, path_len) with bytearrays of int64\n"
"concept_ids (q, then a, then the other path nodes ascending), paths [P, max_hops+1]\n"
"(positions in concept_ids), path_rels [P, max_hops] (relation, + num_relations when the\n"
"edge was walked backward, 0 past the path's length) and path_len [P].");

static PyObject *searcher_node_set(Searcher *S, PyObject *args) {
    Py_buffer views[2];
    int H;
    i64 *order = run(S, args, views, &H);
    if (!order) return NULL;
    const i64 *q = views[0].buf, *a = views[1].buf;
    i64 nq = views[0].len / 8, na = views[1].len / 8, n = S->P.n, W = S->P.W, R = S->n_rel;
    const i64 *key = S->P.bkey.p;
    const uint8_t *fw = S->P.bfwd.p;
    int32_t *loc = S->loc[1]; /* free between searches */
    PyObject *cid = NULL, *paths = NULL, *rels = NULL, *len = NULL, *res = NULL;
    /* local ids: q, a, then the other path nodes ascending */
    for (i64 i = 0; i < nq; i++) loc[q[i]] = (int32_t)i;
    for (i64 i = 0; i < na; i++) loc[a[i]] = (int32_t)(nq + i);
    i64 no = 0;
    i64 *others = buf_get(&S->bothers, (size_t)(n * (H + 1) + 1) * sizeof(i64));
    if (!others) {
        PyErr_NoMemory();
        goto reset;
    }
    for (i64 i = 0; i < n; i++)
        for (int j = 0; j <= H; j++) {
            i64 v = key[i * W + 3 + j];
            if (loc[v] == -1) {
                loc[v] = -2;
                others[no++] = v;
            }
        }
    qsort(others, (size_t)no, sizeof(i64), cmp_i64);
    for (i64 i = 0; i < no; i++) loc[others[i]] = (int32_t)(nq + na + i);
    cid = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)((nq + na + no) * 8));
    paths = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(n * (H + 1) * 8));
    rels = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(n * H * 8));
    len = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    if (!cid || !paths || !rels || !len) goto reset;
    i64 *c = (i64 *)PyByteArray_AS_STRING(cid), *pp = (i64 *)PyByteArray_AS_STRING(paths);
    i64 *pr = (i64 *)PyByteArray_AS_STRING(rels), *pl = (i64 *)PyByteArray_AS_STRING(len);
    if (nq) memcpy(c, q, (size_t)nq * 8);
    if (na) memcpy(c + nq, a, (size_t)na * 8);
    if (no) memcpy(c + nq + na, others, (size_t)no * 8);
    const uint8_t *rel8 = S->rel8;
    for (i64 i = 0; i < n; i++) {
        if (i + PF < n) { /* the relations of a later path: scattered edge ids */
            const i64 *kk = key + order[i + PF] * W;
            for (int j = 0; j < kk[2]; j++)
                __builtin_prefetch(rel8 ? (const void *)(rel8 + kk[4 + H + j]) : (const void *)(S->rel + kk[4 + H + j]));
        }
        const i64 *k = key + order[i] * W;
        const uint8_t *f = fw + order[i] * H;
        i64 L = k[2];
        pl[i] = L;
        for (int j = 0; j <= H; j++) pp[i * (H + 1) + j] = loc[k[3 + j]];
        for (int j = 0; j < H; j++) {
            i64 e = k[4 + H + j];
            pr[i * H + j] = j < L ? (rel8 ? (i64)rel8[e] : S->rel[e]) + (f[j] ? 0 : R) : 0;
        }
    }
    res = Py_BuildValue("(OLOLOOO)", S->truncated ? Py_True : Py_False, (long long)n, cid, (long long)no, paths,
                        rels, len);
reset:
    for (i64 i = 0; i < nq; i++) loc[q[i]] = -1;
    for (i64 i = 0; i < na; i++) loc[a[i]] = -1;
    for (i64 i = 0; i < no; i++) loc[others[i]] = -1;
    Py_XDECREF(cid);
    Py_XDECREF(paths);
    Py_XDECREF(rels);
    Py_XDECREF(len);
    PyBuffer_Release(&views[0]);
    PyBuffer_Release(&views[1]);
    return res;
}

static PyMethodDef searcher_methods[] = {
    {"search", (PyCFunction)searcher_search, METH_VARARGS, search_doc},
    {"node_set", (PyCFunction)searcher_node_set, METH_VARARGS, node_set_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(searcher_doc,
"PathSearch(out_ptr, in_ptr, tail, in_nbr, in_order, relation, num_relations)\n"
"--\n\n"
"The compiled path search over one graph, given as its CSR arrays (C-contiguous int64:\n"
"out_ptr, in_ptr [N+1]; tail, in_nbr = head[in_order], in_order, relation [E]); holds\n"
"its scratch arrays and the last question side. Used by PathRetriever(backend=...).");

static PyTypeObject SearcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kgfuse.kg.retrieval._pathsearch.PathSearch",
    .tp_basicsize = sizeof(Searcher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = searcher_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)searcher_init,
    .tp_dealloc = (destructor)searcher_dealloc,
    .tp_methods = searcher_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_pathsearch",
    .m_doc = "Compiled path search of PathRetriever (see kgfuse.kg.retrieval.paths).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__pathsearch(void) {
    if (PyType_Ready(&SearcherType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&SearcherType);
    if (PyModule_AddObject(m, "PathSearch", (PyObject *)&SearcherType) < 0) {
        Py_DECREF(&SearcherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
