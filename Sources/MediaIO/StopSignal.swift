import Dispatch
import Foundation

/// Turns SIGINT and SIGTERM into a flag a frame loop polls, so the loop can stop and the writer
/// can finish the file (an mp4 without its trailer does not play).
///
/// A second signal while the first is being handled ends the process at once, as usual.
public enum StopSignal {
    /// Starts catching SIGINT and SIGTERM. Safe to call more than once.
    public static func install() {
        state.withLock { state in
            guard state.sources.isEmpty else { return }
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)  // the dispatch source sees it; the default handler does not kill us
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { received(number) }
                source.resume()
                state.sources.append(source)
            }
        }
    }

    /// Whether a stop was asked for since `install()`.
    public static var isRequested: Bool { state.withLock { $0.signal != nil } }

    /// The signal that asked for the stop ("SIGINT", "SIGTERM"), if any.
    public static var signalName: String? {
        state.withLock { state in state.signal.map { $0 == SIGINT ? "SIGINT" : $0 == SIGTERM ? "SIGTERM" : "signal \($0)" } }
    }

    /// Asks for a stop without a signal (tests, a UI button).
    public static func request(_ number: Int32 = SIGINT) { received(number, escalate: false) }

    private static func received(_ number: Int32, escalate: Bool = true) {
        let again = state.withLock { state -> Bool in
            defer { if state.signal == nil { state.signal = number } }
            return state.signal != nil
        }
        if again && escalate {
            signal(number, SIG_DFL)
            raise(number)
        }
    }

    private struct State {
        var signal: Int32? = nil
        var sources: [any DispatchSourceSignal] = []
    }

    private static let state = Locked(State())
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
