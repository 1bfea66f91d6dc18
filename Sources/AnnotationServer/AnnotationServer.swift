import AnnotationPipeline
import EmotionModel
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import MediaIO
import ServiceLifecycle

/// How `fer-annotate serve` runs.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Jobs' files and the job table (`jobs.sqlite`).
    public var dataFolder: URL
    /// Required on every request when set: `Authorization: Bearer`, or the cookie the page sets from `/?token=`.
    public var token: String?
    /// Jobs analysed at once; the others wait in upload order.
    public var maxJobs = 1
    public var maxUploadBytes: Int64 = 2 << 30
    /// The `fer-annotate` executable that runs each job.
    public var executable: String
    /// BlazeFace and MTCNN weights, for the webcam.
    public var models: URL
    /// Webcam frames analysed at once, over all viewers.
    public var liveSlots = ProcessInfo.processInfo.activeProcessorCount
    /// Cameras the server watches itself (`--camera NAME=URL`), in the order given.
    public var cameras: [(name: String, url: String)] = []

    /// NAME=URL as `--camera` takes it; nil when the name is not letters, digits, '-' and '_' (it names files).
    public static func camera(_ text: String) -> (name: String, url: String)? { CameraFeed.parse(text) }

    public init(dataFolder: URL, executable: String, models: URL) {
        self.dataFolder = dataFolder
        self.executable = executable
        self.models = models
    }

    /// Loopback addresses need no token; any other address does.
    public var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") }
}

public struct ServerError: Error, CustomStringConvertible {
    public let description: String
}

/// The web app: the page, the HTTP API over upload jobs, and the webcam over a WebSocket.
public enum AnnotationServer {
    static let cookieName = "fer_token"

    /// Serves until SIGINT or SIGTERM; running jobs are then stopped cleanly and marked interrupted.
    public static func run(_ configuration: ServerConfiguration, onListening: @escaping @Sendable (Int) -> Void = { _ in })
        async throws {
        guard configuration.isLoopback || !(configuration.token ?? "").isEmpty else {
            throw ServerError(description: "listening on \(configuration.host) (not loopback) needs --token (or FER_ANNOTATE_TOKEN)")
        }
        let jobsFolder = configuration.dataFolder.appendingPathComponent("jobs")
        do {
            try FileManager.default.createDirectory(at: jobsFolder, withIntermediateDirectories: true)
        } catch {
            throw ServerError(description: "cannot create the data folder \(configuration.dataFolder.path): \(error.localizedDescription)")
        }
        let store: JobStore
        do { store = try JobStore(path: configuration.dataFolder.appendingPathComponent("jobs.sqlite").path) } catch {
            throw ServerError(description: "cannot open the job table in \(configuration.dataFolder.path): \(error)")
        }
        let runner = JobRunner(store: store, folder: JobFolders(root: jobsFolder), executable: configuration.executable,
                               limit: configuration.maxJobs)
        for job in try store.recoverAfterRestart() { await runner.enqueue(job.id) }
        let page = try PageResources.load()
        let camerasFolder = configuration.dataFolder.appendingPathComponent("cameras")
        if !configuration.cameras.isEmpty {
            try? FileManager.default.createDirectory(at: camerasFolder, withIntermediateDirectories: true)
        }
        let cameras = try configuration.cameras.map { camera in
            do { return try CameraFeed(name: camera.name, url: camera.url, folder: camerasFolder) } catch {
                throw ServerError(description: "camera \(camera.name): \(error)")
            }
        }
        for camera in cameras { camera.start(models: configuration.models) }

        var logger = Logger(label: "fer-annotate.serve")
        logger.logLevel = .warning
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.middlewares.add(TokenMiddleware(token: configuration.token))
        let api = API(configuration: configuration, store: store, runner: runner, folders: JobFolders(root: jobsFolder),
                      gate: FairGate(slots: configuration.liveSlots), cameras: cameras)
        api.register(on: router, page: page)

        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: router, configuration: .init(ws: .init(maxFrameSize: 8 << 20))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "fer-annotate"),
            services: [Shutdown(runner: runner, cameras: cameras)],
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        try await app.runService()
    }
}

/// Stops the running jobs and the cameras when the server is asked to stop, before it exits: jobs are marked
/// interrupted, camera CSVs are finished.
struct Shutdown: Service {
    let runner: JobRunner
    let cameras: [CameraFeed]
    func run() async throws {
        try? await gracefulShutdown()
        for camera in cameras { camera.stop() }
        await runner.shutDown()
        let deadline = Date().addingTimeInterval(10)
        while cameras.contains(where: { !$0.isStopped }), Date() < deadline { try? await Task.sleep(nanoseconds: 20_000_000) }
    }
}

/// The page's files, read once from the package's resources.
struct PageResources: Sendable {
    let files: [String: (type: String, data: ByteBuffer)]
    let openAPI: ByteBuffer

    static func load() throws -> PageResources {
        guard let folder = Bundle.module.url(forResource: "page", withExtension: nil),
              let openAPI = Bundle.module.url(forResource: "openapi", withExtension: "json") else {
            throw ServerError(description: "the web page is missing from the build's resources")
        }
        var files: [String: (type: String, data: ByteBuffer)] = [:]
        let types = ["html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            files[name] = (types[(name as NSString).pathExtension] ?? "application/octet-stream", ByteBuffer(bytes: data))
        }
        return PageResources(files: files, openAPI: ByteBuffer(bytes: try Data(contentsOf: openAPI)))
    }
}

/// Every request carries the token (header or cookie) when one is set; `/?token=T` sets the cookie and sends the
/// browser on to the page, so the token leaves the address bar.
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token, !token.isEmpty else { return try await next(request, context) }
        if request.uri.path == "/", let given = request.uri.queryParameters.get("token") {
            guard constantTimeEqual(given, token) else { return .json(.unauthorized, ["error": "wrong token"]) }
            var headers = HTTPFields()
            headers[.location] = "/"
            headers[.setCookie] = "\(AnnotationServer.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict"
            return Response(status: .seeOther, headers: headers)
        }
        if let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer "),
           constantTimeEqual(String(authorization.dropFirst("Bearer ".count)), token) {
            return try await next(request, context)
        }
        let cookies = (request.headers[.cookie] ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        if cookies.contains(where: { cookie in
            cookie.hasPrefix(AnnotationServer.cookieName + "=")
                && constantTimeEqual(String(cookie.dropFirst(AnnotationServer.cookieName.count + 1)), token)
        }) {
            return try await next(request, context)
        }
        if request.uri.path == "/" {
            return Response(status: .unauthorized, headers: [.contentType: "text/html; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string:
                                "<!doctype html><title>fer-annotate</title><p>This server needs its token: open /?token=YOUR_TOKEN")))
        }
        return .json(.unauthorized, ["error": "missing or wrong token (Authorization: Bearer TOKEN)"])
    }

    private func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }
}

extension Response {
    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
