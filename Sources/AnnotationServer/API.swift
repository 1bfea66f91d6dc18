import EmotionModel
import Foundation
import Hummingbird
import HummingbirdWebSocket
import MediaIO

/// The HTTP API (described in Resources/openapi.json) and the webcam WebSocket.
struct API: Sendable {
    let configuration: ServerConfiguration
    let store: JobStore
    let runner: JobRunner
    let folders: JobFolders
    let gate: FairGate
    let cameras: [CameraFeed]

    /// A job as the API shows it.
    struct JobView: Encodable {
        var id: String
        var name: String
        var kind: String
        var state: JobState
        var progress: Double
        var error: String?
        var duration: Double?
        var options: [String]
        var created: Date
        var updated: Date
        /// Result files, once there are any to fetch.
        var files: [String: String]
    }

    func view(_ job: Job) -> JobView {
        var files: [String: String] = [:]
        if job.state != .queued {
            let base = "/api/jobs/\(job.id)/"
            files = ["timeline": base + "timeline.csv", "summary": base + "summary.json",
                     job.isImage ? "image" : "video": base + (job.isImage ? "image.jpg" : "video.mp4")]
        }
        return JobView(id: job.id, name: job.name, kind: job.isImage ? "image" : "video", state: job.state,
                       progress: job.progress, error: job.error, duration: job.duration, options: job.options,
                       created: job.created, updated: job.updated, files: files)
    }

    func register(on router: Router<BasicWebSocketRequestContext>, page: PageResources) {
        for (name, file) in page.files {
            router.get(name == "index.html" ? "/" : RouterPath(stringLiteral: "/" + name)) { _, _ in
                Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "no-cache"], body: .init(byteBuffer: file.data))
            }
        }
        router.get("/api/health") { _, _ in
            Response.json(.ok, ["status": "ok", "running_jobs": String(await runner.activeCount)])
        }
        router.get("/api/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: page.openAPI))
        }
        router.post("/api/jobs") { request, context in try await upload(request, context: context) }
        router.get("/api/jobs") { _, _ in Response.json(.ok, try store.all().map(view)) }
        router.get("/api/jobs/:id") { _, context in
            guard let job = try existingJob(context) else { return notFound() }
            return Response.json(.ok, view(job))
        }
        router.delete("/api/jobs/:id") { _, context in
            guard let job = try existingJob(context) else { return notFound() }
            await runner.cancel(job.id)
            try store.delete(job.id)
            try? FileManager.default.removeItem(atPath: folders.paths(for: job).folder)
            return Response(status: .noContent)
        }
        let results: [(name: String, type: String, path: @Sendable (JobFolders.Paths) -> String, forImage: Bool?)] = [
            ("timeline.csv", "text/csv; charset=utf-8", { $0.timeline }, nil),
            ("summary.json", "application/json", { $0.summary }, nil),
            ("video.mp4", "video/mp4", { $0.annotated }, false),
            ("image.jpg", "image/jpeg", { $0.annotated }, true),
        ]
        for result in results {
            router.get(RouterPath(stringLiteral: "/api/jobs/:id/" + result.name)) { request, context in
                guard let job = try existingJob(context), result.forImage == nil || result.forImage == job.isImage else {
                    return notFound()
                }
                return try await FileResponse.make(path: result.path(folders.paths(for: job)), type: result.type,
                                                   request: request, context: context)
            }
        }
        registerCameras(on: router)
        router.ws("/api/live") { inbound, outbound, _ in
            try await live(inbound: inbound, outbound: outbound)
        }
    }

    private func existingJob(_ context: some RequestContext) throws -> Job? {
        guard let id = context.parameters.get("id"), JobFolders.isValidID(id) else { return nil }
        return try store.job(id)
    }

    private func notFound() -> Response { .json(.notFound, ["error": "no such job"]) }

    // MARK: Uploads

    /// Options a user may set, as query parameters, mapped to fer-annotate's own flags after checking each value.
    static func analysisArguments(_ query: (String) -> String?) throws(UploadRefusal) -> [String] {
        var arguments: [String] = []
        if let detector = query("detector") {
            guard ["auto", "blazeface", "mtcnn"].contains(detector) else {
                throw UploadRefusal(status: .badRequest, message: "detector must be auto, blazeface or mtcnn")
            }
            arguments += ["--detector", detector]
        }
        if let every = query("detect_every") {
            guard let value = Int(every), (1...30).contains(value) else {
                throw UploadRefusal(status: .badRequest, message: "detect_every must be a whole number from 1 to 30")
            }
            arguments += ["--detect-every", String(value)]
        }
        if let smoothing = query("smoothing") {
            guard ["ema", "window", "none"].contains(smoothing) else {
                throw UploadRefusal(status: .badRequest, message: "smoothing must be ema, window or none")
            }
            arguments += ["--smoothing", smoothing]
        }
        if let bars = query("bars"), bars == "1" || bars == "true" { arguments.append("--bars") }
        return arguments
    }

    struct UploadRefusal: Error {
        let status: HTTPResponse.Status
        let message: String
    }

    /// Streams the body to the job's folder (never into memory), stops at the size limit (413), probes the file
    /// with FFmpeg (415 when it is not a picture or a video); a refused upload leaves nothing behind.
    private func upload(_ request: Request, context: some RequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        guard let name = query.get("name"), !name.isEmpty, name.count <= 255 else {
            return .json(.badRequest, ["error": "name the file: POST /api/jobs?name=FILE with the file as the body"])
        }
        let options: [String]
        do { options = try Self.analysisArguments { query.get($0) } } catch {
            return .json(error.status, ["error": error.message])
        }
        let limit = configuration.maxUploadBytes
        if let declared = request.headers[.contentLength].flatMap({ Int64($0) }), declared > limit {
            return .json(.contentTooLarge, ["error": "the file is larger than the server's limit of \(limit) bytes"])
        }
        let id = UUID().uuidString.lowercased()
        let paths = folders.paths(forID: id)
        try FileManager.default.createDirectory(atPath: paths.folder, withIntermediateDirectories: true)
        var keep = false
        defer { if !keep { try? FileManager.default.removeItem(atPath: paths.folder) } }

        guard FileManager.default.createFile(atPath: paths.input, contents: nil),
              let handle = FileHandle(forWritingAtPath: paths.input) else {
            return .json(.internalServerError, ["error": "cannot write the upload"])
        }
        var received: Int64 = 0
        do {
            defer { try? handle.close() }
            for try await buffer in request.body {
                received += Int64(buffer.readableBytes)
                if received > limit {
                    return .json(.contentTooLarge, ["error": "the file is larger than the server's limit of \(limit) bytes"])
                }
                try handle.write(contentsOf: buffer.readableBytesView)
            }
        }
        guard received > 0 else { return .json(.badRequest, ["error": "the upload is empty"]) }

        let probe: Result<VideoInfo, MediaError> = await offThePool {
            do throws(MediaError) { return .success(try VideoReader(url: paths.input, threads: 1).info) } catch { return .failure(error) }
        }
        let info: VideoInfo
        switch probe {
        case .success(let probed): info = probed
        case .failure(let error):
            return .json(.unsupportedMediaType, ["error": "\(name) is not a picture or a video FFmpeg can read (\(error))"])
        }
        let now = Date()
        let job = Job(id: id, name: name, isImage: info.isStillImage, state: .queued, progress: 0, error: nil,
                      duration: info.isStillImage ? nil : info.duration, options: options, created: now, updated: now)
        try store.insert(job)
        keep = true
        await runner.enqueue(id)
        return .json(.created, view(job))
    }

    // MARK: Server cameras

    struct CameraView: Encodable {
        var name: String
        var state: String
        var error: String?
        var frame: String
        var latest: String
        var timeline: String
    }

    struct CameraLatest: Encodable {
        var name: String
        var state: String
        var error: String?
        var record: LiveFrameResult?
    }

    /// The cameras' list (their URLs stay on the server: they may hold credentials), the latest annotated frame as
    /// JPEG, the latest faces, and the timeline CSV written so far.
    private func registerCameras(on router: Router<BasicWebSocketRequestContext>) {
        let byName = Dictionary(uniqueKeysWithValues: cameras.map { ($0.name, $0) })
        router.get("/api/cameras") { _, _ in
            Response.json(.ok, cameras.map { camera in
                let base = "/api/cameras/\(camera.name)/", snapshot = camera.current
                return CameraView(name: camera.name, state: snapshot.state, error: snapshot.error, frame: base + "frame.jpg",
                                  latest: base + "latest.json", timeline: base + "timeline.csv")
            })
        }
        router.get("/api/cameras/:name/latest.json") { _, context in
            guard let camera = context.parameters.get("name").flatMap({ byName[$0] }) else { return noCamera() }
            let snapshot = camera.current
            return Response.json(.ok, CameraLatest(name: camera.name, state: snapshot.state, error: snapshot.error,
                                                   record: snapshot.record))
        }
        router.get("/api/cameras/:name/frame.jpg") { _, context in
            guard let camera = context.parameters.get("name").flatMap({ byName[$0] }) else { return noCamera() }
            guard let jpeg = camera.current.jpeg else { return .json(.notFound, ["error": "no frame from this camera yet"]) }
            return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: jpeg)))
        }
        router.get("/api/cameras/:name/timeline.csv") { request, context in
            guard let camera = context.parameters.get("name").flatMap({ byName[$0] }) else { return noCamera() }
            return try await FileResponse.make(path: camera.csvPath, type: "text/csv; charset=utf-8", request: request,
                                               context: context)
        }
    }

    private func noCamera() -> Response { .json(.notFound, ["error": "no such camera"]) }

    // MARK: Webcam

    /// One viewer: binary messages are JPEG frames, each answered with a JSON record before the next is read
    /// (at most one frame in flight: the page sends the next only after the answer, and skips frames meanwhile).
    /// A bad message gets `{"type":"error"}` and the socket stays open.
    private func live(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let viewer: LiveViewer
        do {
            viewer = try LiveViewer(models: configuration.models, classifier: try ShippedModel.load())
        } catch {
            try await outbound.write(.text(Self.errorMessage("the server cannot analyse frames: \(error)")))
            return
        }
        let encoder = JSONEncoder()
        for try await message in inbound.messages(maxSize: 8 << 20) {
            switch message {
            case .binary(let buffer):
                let jpeg = Array(buffer.readableBytesView)
                let arrived = Date()
                await gate.enter()
                let result: Result<LiveFrameResult, Error> = await offThePool {
                    Result { try viewer.analyze(jpeg: jpeg, waited: Date().timeIntervalSince(arrived)) }
                }
                await gate.leave()
                switch result {
                case .success(let record):
                    try await outbound.write(.text(String(decoding: try encoder.encode(record), as: UTF8.self)))
                case .failure(let error):
                    try await outbound.write(.text(Self.errorMessage("\(error)")))
                }
            case .text(let text):
                if text.contains("\"ping\"") {
                    try await outbound.write(.text("{\"type\":\"pong\"}"))
                } else {
                    try await outbound.write(.text(Self.errorMessage("send each frame as a binary message holding one JPEG")))
                }
            }
        }
    }

    static func errorMessage(_ message: String) -> String {
        let encoded = (try? JSONEncoder().encode(["type": "error", "message": message])) ?? Data()
        return String(decoding: encoded, as: UTF8.self)
    }
}

/// Runs blocking work (decoding, a network) on a Dispatch thread, so the server's cooperative threads stay free
/// for requests.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async { continuation.resume(returning: work()) }
    }
}
