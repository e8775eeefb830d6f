#ifndef EC_PARALLEL_H
#define EC_PARALLEL_H
// The kernels' own worker threads (sgemm_pool.c): spinning briefly after each job, so a job of
// 10–50 µs is handed to another core in ~1 µs. Used by ec_sgemm_parallel and the convolutions.

/// One part of a job: `part` in 0 ..< parts.
typedef void (*ec_task_fn)(void *ctx, int part);

/// Runs fn(ctx, part) for every part in 0 ..< parts on up to `threads` threads (the caller and
/// the pool's workers; parts are claimed in any order, each runs once) and returns when all
/// are done. With threads ≤ 1, one part, more than 255 parts, or the pool busy with another caller's job, the caller
/// runs every part itself, in order. Results must not depend on which thread runs a part.
void ec_parallel_for(int threads, int parts, ec_task_fn fn, void *ctx);
#endif
