import Foundation
import NeuralEngine
import XCTest

/// Parallelism.forEach on the persistent worker pool: every index once, on the promised worker, without
/// allocating (task form), and no deadlock when calls nest or come from two threads at once.
final class WorkerPoolTests: XCTestCase {
    private var savedWorkers = 1

    override func setUp() {
        savedWorkers = Parallelism.workers
        Parallelism.workers = 2
    }

    override func tearDown() { Parallelism.workers = savedWorkers }

    /// Records, per index, how often it ran and on which thread.
    private struct RecordingTask: ParallelTask {
        let runs: UnsafeMutableBufferPointer<Int>
        let threads: UnsafeMutableBufferPointer<pthread_t>
        func run(_ index: Int) {
            runs[index] += 1
            threads[index] = pthread_self()
        }
    }

    private func withRecording(_ count: Int, _ body: (RecordingTask) -> Void) -> (runs: [Int], threads: [pthread_t]) {
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        let threads = UnsafeMutableBufferPointer<pthread_t>.allocate(capacity: count)
        defer { runs.deallocate(); threads.deallocate() }
        runs.initialize(repeating: 0)
        threads.initialize(repeating: 0)
        body(RecordingTask(runs: runs, threads: threads))
        return (Array(runs), Array(threads))
    }

    func testEveryIndexRunsOnceAndWorkersTakeTheirStride() {
        for count in [1, 2, 3, 17, 1000] {
            let (runs, threads) = withRecording(count) { Parallelism.forEach(count, $0) }
            XCTAssertEqual(runs, Array(repeating: 1, count: count), "count \(count)")
            // Worker w takes w, w + 2, ...: the caller the even indices, one helper the odd ones.
            let caller = pthread_self()
            for index in 0..<count {
                XCTAssertEqual(pthread_equal(threads[index], caller) != 0, index % 2 == 0, "index \(index) of \(count)")
            }
        }
    }

    /// After an idle spell longer than the helpers' polling (60 µs) they sleep on the condition variable; the
    /// next calls must wake them and still give them their share.
    func testHelpersWakeFromSleep() {
        for _ in 0..<5 {
            usleep(5_000)
            let (runs, threads) = withRecording(8) { Parallelism.forEach(8, $0) }
            XCTAssertEqual(runs, Array(repeating: 1, count: 8))
            let caller = pthread_self()
            XCTAssertEqual(threads.filter { pthread_equal($0, caller) == 0 }.count, 4, "the helper's four indices")
        }
    }

    func testClosureFormRunsEveryIndexOnce() {
        let count = 257
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        defer { runs.deallocate() }
        runs.initialize(repeating: 0)
        for _ in 0..<20 { Parallelism.forEach(count) { runs[$0] += 1 } }
        XCTAssertEqual(Array(runs), Array(repeating: 20, count: count))
    }

    func testTaskFormAllocatesNothing() {
        _ = withRecording(64) { task in
            Parallelism.forEach(64, task)  // warm-up: starts the helper
            let allocations = countingMallocCalls {
                for _ in 0..<500 { Parallelism.forEach(64, task) }
            }
            XCTAssertEqual(allocations, 0, "malloc calls in 500 calls")
            // The counter sees the closure form's allocation, or the zero above would prove nothing.
            XCTAssertGreaterThan(countingMallocCalls { for _ in 0..<10 { Parallelism.forEach(64) { task.run($0) } } }, 0)
        }
    }

    /// A call from inside a job, and calls from two threads at once, run on the calling thread when the pool
    /// is busy: all complete.
    func testNestedAndConcurrentCallsComplete() {
        let outer = 8, inner = 16
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: outer * inner)
        defer { runs.deallocate() }
        runs.initialize(repeating: 0)
        Parallelism.forEach(outer) { o in
            Parallelism.forEach(inner) { i in runs[o * inner + i] += 1 }
        }
        XCTAssertEqual(Array(runs), Array(repeating: 1, count: outer * inner))

        let callers = 4, rounds = 200, count = 64
        let totals = UnsafeMutableBufferPointer<Int>.allocate(capacity: callers * count)
        defer { totals.deallocate() }
        totals.initialize(repeating: 0)
        nonisolated(unsafe) let shared = totals  // each caller writes its own slice
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for _ in 0..<rounds {
                Parallelism.forEach(count) { index in shared[caller * count + index] += 1 }
            }
        }
        XCTAssertEqual(Array(totals), Array(repeating: rounds, count: callers * count))
    }

    /// Changing the worker count replaces the pool; one worker runs everything on the caller.
    func testWorkerCountChanges() {
        for workers in [1, 2, 3, 2] {
            Parallelism.workers = workers
            let (runs, threads) = withRecording(30) { Parallelism.forEach(30, $0) }
            XCTAssertEqual(runs, Array(repeating: 1, count: 30))
            let caller = pthread_self()
            let onCaller = threads.filter { pthread_equal($0, caller) != 0 }.count
            XCTAssertEqual(onCaller, (30 + workers - 1) / workers, "workers \(workers)")
        }
    }
}
