import COpenBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How the engine uses the cores. Convolutions split their batch into cache-sized chunks and hand chunks to
/// `workers` threads, each calling single-threaded sgemm: measured on 2 cores, chunked single-threaded
/// products run at 57-85 GFLOPS against 33-52 for one whole-batch product, threaded or not.
public enum Parallelism {
    nonisolated(unsafe) private static var workerCount = 2
    nonisolated(unsafe) private static var configured = false
    /// Helper threads for `forEach`, one fewer than `workers`; replaced when `workers` changes.
    private static let currentPool = Mutex<WorkerPool?>(nil)

    /// Worker threads for chunked layers (default: the number of cores).
    public static var workers: Int {
        get { configureOnce(); return workerCount }
        set { configureOnce(); workerCount = max(1, newValue) }
    }

    /// OpenBLAS runs single-threaded inside our workers; large allocations stay in the heap so the
    /// per-batch activations are reused rather than page-faulted in again (glibc returns big blocks
    /// to the kernel by default).
    static func configureOnce() {
        guard !configured else { return }
        configured = true
        _ = BLASKernels.selection
        openblas_set_num_threads(1)
        workerCount = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #if canImport(Glibc)
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 32 << 20)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, 512 << 20)
        #endif
    }

    /// Runs body(0..<count) over at most `limit` workers; each worker takes every workers-th index, so with
    /// per-worker scratch areas, index % min(workers, count, limit) names the caller's area. While the pool is
    /// busy with another call (another thread's network, or a nested call), the indices run one after another
    /// on the calling thread. Handing the closure to the helpers costs one small allocation per call; paths that
    /// must not allocate (inference) pass a `ParallelTask` instead.
    public static func forEach(_ count: Int, workers limit: Int = .max, _ body: (Int) -> Void) {
        let workers = min(Parallelism.workers, count, limit)
        if workers <= 1 {
            for index in 0..<count { body(index) }
            return
        }
        withoutActuallyEscaping(body) { body in pool().run(count, workers: workers, ClosureTask(body: body)) }
    }

    /// `forEach` of a task value: allocates nothing.
    public static func forEach<Task: ParallelTask>(_ count: Int, workers limit: Int = .max, _ task: Task) {
        let workers = min(Parallelism.workers, count, limit)
        if workers <= 1 {
            for index in 0..<count { task.run(index) }
            return
        }
        pool().run(count, workers: workers, task)
    }

    /// The pool for the current worker count (made on first use, and again after `workers` changed).
    private static func pool() -> WorkerPool {
        let helpers = workers - 1
        return currentPool.withLock { pool in
            if let existing = pool, existing.helpers == helpers { return existing }
            pool?.retire()
            let fresh = WorkerPool(helpers: helpers)
            pool = fresh
            return fresh
        }
    }

    /// Runs body over 0..<count cut into one contiguous slice per worker, for element-wise loops whose results do
    /// not depend on the cut; below `minimumSlice` elements a slice is not worth a thread.
    static func forEachSlice(_ count: Int, minimumSlice: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
        let slices = max(1, min(Parallelism.workers, count / max(minimumSlice, 1)))
        forEach(slices) { slice in body((count * slice / slices)..<(count * (slice + 1) / slices)) }
    }
}

#if canImport(Glibc)
// <malloc.h> is not part of Swift's Glibc module.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// Hands a value to worker threads that touch disjoint parts of it.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
