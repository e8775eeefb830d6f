#include "sgemm.h"
#include "parallel.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EC_PAUSE() _mm_pause()
#else
#define EC_PAUSE() ((void)0)
#endif

// The kernels' own worker threads (GEMMs and convolutions). A multi-threaded GEMM of 10–50 µs cannot wait for a thread
// wake-up (futex and Dispatch wake-ups take 10–20 µs here), so after each GEMM the workers
// keep watching one atomic word for a while — spinning briefly, then yielding the core to
// any other runnable thread between looks — and only then sleep on a condition variable.
//
// A job (a function and its context, run for parts 0 ..< parts) is published by bumping that word (generation << 8 | parts). Parts are claimed from a
// counter tagged with the generation, by the workers and by the caller alike: a caller whose
// workers are late (no free core) computes the unclaimed parts itself instead of waiting, as
// DispatchQueue.concurrentPerform does. The caller returns when every part is done. One job
// uses the pool at a time; a caller that finds it busy computes alone (the result is the same:
// the kernels split their outputs, never a sum).

#define EC_POOL_MAX 64
#define EC_SPIN_NS 5000L     // pause-spinning after a job
#define EC_YIELD_NS 50000L   // then yielding between looks, before sleeping

typedef struct {
    int path, transA, transB;
    long m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    long lda, ldb, ldc;
    long ranges[4 * EC_POOL_MAX];
} ec_gemm_job;

/// The job the pool runs: `fn(ctx, part)` for parts 0 ..< parts (published with job_word).
static struct {
    ec_task_fn fn;
    void *ctx;
} job;

static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER;  // held by the job using the pool
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static _Atomic uint64_t job_word;   // generation << 8 | parts
static _Atomic uint64_t job_claim;  // generation << 16 | next unclaimed part
static _Atomic int job_done, sleepers;
static int workers;                 // started so far (only the pool's holder changes it)
static uint64_t start_word[EC_POOL_MAX];

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Claims and computes parts of job `generation` until none is left.
static void work_on(uint64_t generation, int parts) {
    uint64_t c = atomic_load(&job_claim);
    for (;;) {
        if ((c >> 16) != (generation & 0xFFFFFFFFFFFFULL) || (int)(c & 0xFFFF) >= parts) return;
        if (!atomic_compare_exchange_weak(&job_claim, &c, c + 1)) continue;
        job.fn(job.ctx, (int)(c & 0xFFFF));
        atomic_fetch_add(&job_done, 1);
        c = atomic_load(&job_claim);
    }
}

static void *worker_main(void *arg) {
    // The word before the job that started this worker (the thread may first run after that
    // job was published: reading the word here could skip it).
    uint64_t seen = start_word[(intptr_t)arg];
    for (;;) {
        uint64_t word;
        const long start = now_ns();
        for (int i = 1; (word = atomic_load(&job_word)) == seen; i++) {
            if ((i & 63) != 0) {
                EC_PAUSE();
                continue;
            }
            const long waited = now_ns() - start;
            if (waited > EC_YIELD_NS) break;
            if (waited > EC_SPIN_NS) sched_yield();
        }
        if (word == seen) {
            pthread_mutex_lock(&wake_lock);
            atomic_fetch_add(&sleepers, 1);
            while ((word = atomic_load(&job_word)) == seen) pthread_cond_wait(&wake_cond, &wake_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&wake_lock);
        }
        seen = word;
        work_on(word >> 8, (int)(word & 0xFF));
    }
    return NULL;
}

static void gemm_part(void *ctx, int part) {
    const ec_gemm_job *g = ctx;
    const long *r = g->ranges + 4 * part;
    ec_sgemm(g->path, g->transA, g->transB, g->m, g->n, g->k, g->alpha, g->a, g->lda, g->b, g->ldb, g->beta, g->c,
             g->ldc, r[0], r[1], r[2], r[3]);
}

/// Starts workers until `threads − 1` exist (called with the pool held); returns how many
/// threads (the caller included) the pool can use.
static int grow_pool(int threads) {
    while (workers < threads - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        start_word[workers + 1] = atomic_load(&job_word);
        const int failed = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)(workers + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        workers++;
    }
    return threads < workers + 1 ? threads : workers + 1;
}

/// Runs parts 0 ..< parts of the held pool's job on the workers and the calling thread.
static void run_parts(int parts, ec_task_fn fn, void *ctx) {
    job.fn = fn;
    job.ctx = ctx;
    const uint64_t generation = (atomic_load(&job_word) >> 8) + 1;
    atomic_store(&job_done, 0);
    atomic_store(&job_claim, (generation & 0xFFFFFFFFFFFFULL) << 16);
    atomic_store(&job_word, generation << 8 | (uint64_t)parts);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&wake_lock);
        pthread_cond_broadcast(&wake_cond);
        pthread_mutex_unlock(&wake_lock);
    }
    work_on(generation, parts);
    for (int i = 1; atomic_load(&job_done) < parts; i++) {
        EC_PAUSE();
        if ((i & 1023) == 0) sched_yield();  // a worker holding a part may need this core
    }
}

void ec_parallel_for(int threads, int parts, ec_task_fn fn, void *ctx) {
    if (parts <= 0) return;
    if (threads > EC_POOL_MAX) threads = EC_POOL_MAX;
    // (job_word holds the part count in 8 bits: more parts run on the caller alone.)
    if (threads <= 1 || parts == 1 || parts > 255 || pthread_mutex_trylock(&pool_busy) != 0) {
        for (int p = 0; p < parts; p++) fn(ctx, p);
        return;
    }
    grow_pool(threads);
    run_parts(parts, fn, ctx);
    pthread_mutex_unlock(&pool_busy);
}

void ec_sgemm_parallel(int path, int threads, int transA, int transB, long m, long n, long k, float alpha,
                       const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc) {
    if (threads > EC_POOL_MAX) threads = EC_POOL_MAX;
    if (threads <= 1 || pthread_mutex_trylock(&pool_busy) != 0) {
        ec_sgemm(path, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, m, 0, n);
        return;
    }
    threads = grow_pool(threads);
    static ec_gemm_job g;  // only the pool's holder writes it
    const int parts = ec_sgemm_partition(path, transA, transB, m, n, k, threads, g.ranges);
    if (parts <= 1) {
        ec_sgemm(path, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, m, 0, n);
    } else {
        g.path = path; g.transA = transA; g.transB = transB;
        g.m = m; g.n = n; g.k = k; g.alpha = alpha; g.beta = beta;
        g.a = a; g.b = b; g.c = c; g.lda = lda; g.ldb = ldb; g.ldc = ldc;
        run_parts(parts, gemm_part, &g);
    }
    pthread_mutex_unlock(&pool_busy);
}
