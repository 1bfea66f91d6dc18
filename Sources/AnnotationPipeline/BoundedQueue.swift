import Foundation

/// A fixed-capacity FIFO between two pipeline threads. The producer either waits for room (files: nothing is
/// lost) or drops the oldest item (live sources: stay current); the consumer waits for an item. `close()` marks
/// the end of the stream: the consumer drains what is left, then receives nil.
public final class BoundedQueue<Element>: @unchecked Sendable {
    public let capacity: Int
    private var items: [Element] = []
    private var closed = false
    private let condition = NSCondition()
    public private(set) var droppedCount = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "capacity must be positive")
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    /// Waits for room. Returns false when the queue was closed (the consumer gave up).
    @discardableResult
    public func push(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !closed { condition.wait() }
        guard !closed else { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Never waits: when full, the oldest item is dropped and returned.
    @discardableResult
    public func pushDroppingOldest(_ item: Element) -> Element? {
        condition.lock()
        defer { condition.unlock() }
        guard !closed else { return nil }
        var dropped: Element?
        if items.count >= capacity {
            dropped = items.removeFirst()
            droppedCount += 1
        }
        items.append(item)
        condition.broadcast()
        return dropped
    }

    /// The next item, waiting for one; nil once the queue is closed and empty.
    public func pop() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed { condition.wait() }
        guard !items.isEmpty else { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    public var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count
    }

    /// Whether `close()` was called: a producer that never waits (`pushDroppingOldest`) checks this to stop.
    public var isClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }

    /// No more items will come (producer) or be taken (consumer).
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
