import Foundation
import MediaIO
import VisionCore

/// Where frames come from: a file, a stream, or a fake in tests. nil means the end.
public protocol FrameSource: AnyObject {
    func nextFrame() throws -> Frame?
}

extension VideoReader: FrameSource {
    public func nextFrame() throws -> Frame? { try nextFrame(as: .rgb24) }
}

/// A source that can lose its input and reopen it (a live stream reconnecting). The analysis stage asks it,
/// frame by frame, how many restarts came before, and starts its tracks afresh after each (IDs continue).
public protocol RestartingFrameSource: FrameSource {
    /// Restarts that happened before the frame with this index was read (safe to call from any thread).
    func restartCount(throughFrame index: Int) -> Int
}

public struct PipelineStatistics: Sendable {
    public var framesRead = 0
    public var framesAnalyzed = 0
    /// Frames dropped before analysis to stay real-time (live mode only).
    public var framesDropped = 0
    public var facesAnalyzed = 0
    public var seconds = 0.0
    /// Set when the source failed part way; the frames before it were processed.
    public var sourceError: Error?
    public var stoppedEarly = false
}

/// Source -> locate (detect, track, crop) -> classify (CNN, smoothing) -> sinks, each on its own thread, linked by
/// bounded queues, so throughput is set by the slowest stage and memory stays flat however long the input. The
/// end of the stream travels down the queues (close), and every sink is finished, so files are complete even
/// after an early stop.
///
/// Detection, the costliest stage, is split when the analyzer has frame stages and every frame is kept (not a
/// live source): the reader deals frames in turn to one detection thread per stage, and the locate thread takes
/// their results back in the same turn, so it tracks frames in order (same results, more cores at work).
public final class PipelineRunner: @unchecked Sendable {
    public let queueCapacity: Int
    /// Live sources: never block the reader; drop the oldest waiting frame instead of building a backlog.
    public let dropsStaleFrames: Bool
    /// Frames that may wait between the reader and the analysis. With `dropsStaleFrames`, it bounds how old
    /// the frame analysis takes next can be (capacity x frame interval): keep it small (1-2) for live sources.
    public let analysisQueueCapacity: Int
    private let source: FrameSource
    private let analyzer: FrameAnalyzer
    private let sinks: [FrameSink]
    private let lock = NSLock()
    private var failure: Error?
    private var statistics = PipelineStatistics()

    public init(source: FrameSource, analyzer: FrameAnalyzer, sinks: [FrameSink], queueCapacity: Int = 4,
                dropsStaleFrames: Bool = false, analysisQueueCapacity: Int? = nil) {
        self.source = source
        self.analyzer = analyzer
        self.sinks = sinks
        self.queueCapacity = queueCapacity
        self.dropsStaleFrames = dropsStaleFrames
        self.analysisQueueCapacity = analysisQueueCapacity ?? queueCapacity
    }

    private func record(_ error: Error) {
        lock.lock()
        if failure == nil { failure = error }
        lock.unlock()
    }

    private func update(_ change: (inout PipelineStatistics) -> Void) {
        lock.lock()
        change(&statistics)
        lock.unlock()
    }

    /// Runs to the end of the source, a stop request, or the first analysis/sink error (rethrown after the sinks
    /// are finished). `progress` is called on the sink thread after each frame.
    public func run(shouldStop: @escaping @Sendable () -> Bool = { false },
                    progress: (PipelineStatistics) -> Void = { _ in }) throws -> PipelineStatistics {
        let started = Date()
        let decoded = BoundedQueue<(Frame, Date)>(capacity: analysisQueueCapacity)
        // Frames dealt to the detection threads (with their position in the stream) and their detections back;
        // one place each, so the frames in flight (memory) grow by little.
        let stageCount = dropsStaleFrames || source is RestartingFrameSource ? 0 : analyzer.frameStages.count
        let dealsFrames = stageCount > 1
        let stageInputs = (0..<(dealsFrames ? stageCount : 0)).map { _ in BoundedQueue<(Frame, Date, Int)>(capacity: 1) }
        let stageOutputs = (0..<(dealsFrames ? stageCount : 0)).map { _ in
            BoundedQueue<(Frame, Date, [Detection]?)>(capacity: 1)
        }
        let closeInputs: @Sendable () -> Void = {
            decoded.close()
            for queue in stageInputs { queue.close() }
            for queue in stageOutputs { queue.close() }
        }
        // Between the two analysis phases: as short as the reader's queue for a live source, so latency stays low.
        let located = BoundedQueue<LocatedFrame>(capacity: min(queueCapacity, analysisQueueCapacity))
        let analyzed = BoundedQueue<AnnotatedFrame>(capacity: queueCapacity)
        let group = DispatchGroup()

        let readerThread = Thread { [self] in
            defer {
                decoded.close()
                for queue in stageInputs { queue.close() }
                group.leave()
            }
            var position = 0
            while !shouldStop() {
                do {
                    guard let frame = try source.nextFrame() else { break }
                    update { $0.framesRead += 1 }
                    if dealsFrames {
                        guard stageInputs[position % stageCount].push((frame, Date(), position)) else { break }
                        position += 1
                    } else if dropsStaleFrames {
                        // A closed queue (analysis or a sink failed) takes nothing: stop reading.
                        if decoded.isClosed { break }
                        if decoded.pushDroppingOldest((frame, Date())) != nil { update { $0.framesDropped += 1 } }
                    } else if !decoded.push((frame, Date())) {
                        break
                    }
                } catch {
                    update { $0.sourceError = error }
                    break
                }
            }
            if shouldStop() { update { $0.stoppedEarly = true } }
        }
        let detectionThreads = stageInputs.indices.map { stage in
            Thread { [self] in
                defer { stageOutputs[stage].close(); group.leave() }
                while let (frame, arrival, position) = stageInputs[stage].pop() {
                    do {
                        let detections = analyzer.detects(atPosition: position)
                            ? try analyzer.frameStageDetections(frame, stage: stage) : nil
                        guard stageOutputs[stage].push((frame, arrival, detections)) else { break }
                    } catch {
                        record(error)
                        closeInputs()
                        break
                    }
                }
            }
        }
        let locateThread = Thread { [self] in
            defer { located.close(); group.leave() }
            if dealsFrames {
                // The stages' results in the order the frames were dealt.
                var position = 0
                while let (frame, arrival, detections) = stageOutputs[position % stageCount].pop() {
                    position += 1
                    do {
                        guard located.push(try analyzer.locate(frame, arrival: arrival, frameStageDetections: detections)) else {
                            closeInputs()
                            break
                        }
                    } catch {
                        record(error)
                        closeInputs()
                        break
                    }
                }
                return
            }
            let restarting = source as? RestartingFrameSource
            var restartsSeen = 0
            while let (frame, arrival) = decoded.pop() {
                // Counted by frame index, so a restart is noticed even when its first frames were dropped.
                if let restarting {
                    let restarts = restarting.restartCount(throughFrame: frame.index)
                    if restarts > restartsSeen {
                        analyzer.sourceRestarted()
                        restartsSeen = restarts
                    }
                }
                do {
                    guard located.push(try analyzer.locate(frame, arrival: arrival)) else { break }
                } catch {
                    record(error)
                    decoded.close()
                    break
                }
            }
        }
        let classifyThread = Thread { [self] in
            defer { analyzed.close(); group.leave() }
            while let frame = located.pop() {
                let result = analyzer.classify(frame)
                update { $0.framesAnalyzed += 1; $0.facesAnalyzed += result.faces.count }
                guard analyzed.push(result) else {
                    located.close()
                    closeInputs()
                    break
                }
            }
        }
        for _ in 0..<(3 + detectionThreads.count) { group.enter() }
        readerThread.name = "fer-annotate.decode"
        locateThread.name = "fer-annotate.locate"
        classifyThread.name = "fer-annotate.classify"
        for (stage, thread) in detectionThreads.enumerated() { thread.name = "fer-annotate.detect\(stage)" }
        readerThread.start()
        for thread in detectionThreads { thread.start() }
        locateThread.start()
        classifyThread.start()

        // Sinks run here, in frame order.
        var sinkError: Error?
        while let annotated = analyzed.pop() {
            do {
                for sink in sinks { try sink.consume(annotated) }
            } catch {
                sinkError = error
                analyzed.close()
                located.close()
                closeInputs()
                break
            }
            lock.lock()
            let snapshot = statistics
            lock.unlock()
            progress(snapshot)
        }
        group.wait()
        lock.lock()
        let firstFailure = sinkError ?? failure
        statistics.seconds = Date().timeIntervalSince(started)
        let result = statistics
        lock.unlock()
        let completed = firstFailure == nil && result.sourceError == nil && !result.stoppedEarly
        var finishError: Error?
        for sink in sinks {
            do { try sink.finish(completed: completed) } catch { finishError = finishError ?? error }
        }
        if let error = firstFailure ?? finishError { throw error }
        return result
    }
}
