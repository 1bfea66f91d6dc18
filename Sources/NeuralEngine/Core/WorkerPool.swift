import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Work split by index, handed to the helper threads as a pointer to the value on the caller's stack: unlike a
/// closure (made escaping with `withoutActuallyEscaping`, which boxes it on the heap), a task crosses threads
/// without allocating.
public protocol ParallelTask {
    func run(_ index: Int)
}

extension ParallelTask {
    /// Runs the task stored at `pointer` (a type-erased call the helpers make through `any ParallelTask.Type`).
    fileprivate static func run(at pointer: UnsafeRawPointer, _ index: Int) {
        pointer.assumingMemoryBound(to: Self.self).pointee.run(index)
    }
}

/// A closure as a task, for callers that can afford one allocation per call (training).
struct ClosureTask: ParallelTask {
    let body: (Int) -> Void
    func run(_ index: Int) { body(index) }
}

/// Persistent helper threads that run a task's indices on every worker without allocating: what lets a single
/// image (batch-1 inference, a few milliseconds in all) be split over the cores between layers.
/// `DispatchQueue.concurrentPerform` allocates per call, and a condition-variable wake-up costs tens of
/// microseconds on this machine, so helpers poll briefly after each job before they sleep, and the caller takes
/// worker 0's share itself.
///
/// One job at a time: a call made while another runs (another thread's network, or a nested call from inside a
/// job) runs its indices on the calling thread instead of waiting, so it can neither deadlock nor stall.
final class WorkerPool: @unchecked Sendable {
    /// Threads beside the caller.
    let helpers: Int

    private let generation = Atomic<Int>(0)
    private let unfinished = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let retiring = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wakeUp: UnsafeMutablePointer<pthread_cond_t>
    /// The current job, valid while `unfinished` > 0: written before `generation` moves (release), read after.
    private var task: UnsafeRawPointer?
    private var taskType: (any ParallelTask.Type)?
    private var jobCount = 0
    private var jobWorkers = 0

    /// How long an idle helper keeps polling before it sleeps: longer than the gap between two parallel layers of
    /// one network (the layers between run on the caller, tens of microseconds), short enough to cost little
    /// between video frames, when the core is wanted by the pipeline's other stages. Polling makes no system
    /// call (sched_yield while polling cost the pipeline 5% in system time).
    private static let spinNanoseconds: UInt64 = 60_000

    init(helpers: Int) {
        self.helpers = max(0, helpers)
        mutex = .allocate(capacity: 1)
        wakeUp = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeUp, nil)
        for index in 0..<self.helpers {
            let context = Unmanaged.passRetained(HelperContext(pool: self, worker: index + 1)).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<HelperContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.helperLoop(worker: context.worker)
                return nil
            }, context)
            precondition(status == 0, "cannot start a worker thread (pthread_create: \(status))")
            pthread_detach(thread)
        }
    }

    deinit {
        pthread_cond_destroy(wakeUp)
        pthread_mutex_destroy(mutex)
        wakeUp.deallocate()
        mutex.deallocate()
    }

    /// Runs task.run(0..<count) over at most `workers` threads (the caller included); worker w takes indices
    /// w, w + workers, ... as `Parallelism.forEach` promises. Returns when every index has run.
    func run<Task: ParallelTask>(_ count: Int, workers requested: Int, _ task: Task) {
        let workers = min(requested, count, helpers + 1)
        guard workers > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for index in 0..<count { task.run(index) }
            return
        }
        withUnsafePointer(to: task) { pointer in
            self.task = UnsafeRawPointer(pointer)
            taskType = Task.self
            jobCount = count
            jobWorkers = workers
            unfinished.store(helpers, ordering: .relaxed)
            publish()
            for index in stride(from: 0, to: count, by: workers) { task.run(index) }
            var polls = 0
            while unfinished.load(ordering: .acquiring) > 0 {
                polls += 1
                if polls > 64 { sched_yield() }
            }
            self.task = nil  // the pointer dies with this scope
            taskType = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Ends the helper threads once no job runs; the pool runs every later call on the caller's thread.
    func retire() {
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { sched_yield() }
        retiring.store(true, ordering: .relaxed)
        publish()
    }

    /// Moves the generation (sequentially consistent with the helpers' `sleepers` announcement, so either they
    /// see the new generation or this sees them asleep and wakes them).
    private func publish() {
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(wakeUp)
            pthread_mutex_unlock(mutex)
        }
    }

    private func helperLoop(worker: Int) {
        var seen = 0
        while true {
            seen = waitForJob(after: seen)
            if retiring.load(ordering: .relaxed) { return }
            runShare(worker: worker)
            unfinished.subtract(1, ordering: .releasing)
        }
    }

    /// This helper's indices of the current job.
    private func runShare(worker: Int) {
        guard worker < jobWorkers, let task, let taskType else { return }
        for index in stride(from: worker, to: jobCount, by: jobWorkers) { taskType.run(at: task, index) }
    }

    /// Polls for a generation after `seen`, then sleeps on the condition variable; returns the new generation.
    private func waitForJob(after seen: Int) -> Int {
        let start = monotonicNanoseconds()
        var polls = 0
        while true {
            let current = generation.load(ordering: .acquiring)
            if current != seen { return current }
            polls += 1
            if polls & 63 == 0, monotonicNanoseconds() - start > WorkerPool.spinNanoseconds { break }
        }
        pthread_mutex_lock(mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        // Re-checked under the mutex after announcing the sleep: the caller broadcasts under the same mutex
        // whenever it sees a sleeper, so a job published in between is not missed.
        var current = generation.load(ordering: .sequentiallyConsistent)
        while current == seen {
            pthread_cond_wait(wakeUp, mutex)
            current = generation.load(ordering: .acquiring)
        }
        sleepers.subtract(1, ordering: .relaxed)
        pthread_mutex_unlock(mutex)
        return current
    }

    private final class HelperContext {
        let pool: WorkerPool
        let worker: Int
        init(pool: WorkerPool, worker: Int) { self.pool = pool; self.worker = worker }
    }
}

private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
