import AnnotationServer
import ArgumentParser
import Foundation

/// `fer-annotate serve`: the web app.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fer-annotate serve",
        abstract: "The web app: label your webcam live, and upload videos or photos to get them back annotated.",
        discussion: """
            Open http://HOST:PORT/ in a browser. The page labels the webcam live (frames go to this server over a \
            WebSocket and are not stored; "Record" downloads that session's CSV), and takes uploaded videos and \
            photos: each becomes a job that runs the file pipeline, then plays annotated in the page with its \
            emotion timeline, with the CSV, JSON summary and video to download. Jobs and results are kept in the \
            data folder (a SQLite job table beside the files) and survive a restart; SIGINT or SIGTERM stops \
            running jobs cleanly and marks them interrupted.

            The HTTP API (used by the page) is described at /api/openapi.json:
              GET /api/health, POST /api/jobs?name=FILE (the file as the body), GET /api/jobs, GET/DELETE \
            /api/jobs/ID, GET /api/jobs/ID/timeline.csv | summary.json | video.mp4 | image.jpg, WebSocket /api/live.

            It listens on 127.0.0.1 by default. Any other address requires a token: every request must then carry \
            'Authorization: Bearer TOKEN', and a browser opens /?token=TOKEN once (the page keeps it in a cookie).

            Examples:
              fer-annotate serve
              fer-annotate serve --host 0.0.0.0 --port 8080 --token "$(openssl rand -hex 16)" --data /srv/fer
              fer-annotate serve --camera door=rtsp://192.168.1.20:554/stream1 --camera desk=/dev/video0
            """)

    @Option(help: "Address to listen on (a non-loopback address requires --token).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var port = 8080

    @Option(help: ArgumentHelp("Folder for uploads, results and the job table.", valueName: "dir"))
    var data = "fer-annotate-data"

    @Option(help: ArgumentHelp("Access token (default: $FER_ANNOTATE_TOKEN).", valueName: "token"))
    var token: String?

    @Option(help: "Upload jobs analysed at the same time; others wait their turn.")
    var jobs = 1

    @Option(help: ArgumentHelp("Largest upload: bytes, or with K, M or G (default 2G).", valueName: "size"))
    var maxUpload = "2G"

    @Option(help: ArgumentHelp("Folder with the detector weights (default: the one Scripts/setup.sh fills).", valueName: "dir"))
    var detectorModels: String?

    @Option(name: .customLong("camera"), help: ArgumentHelp(
        "A camera the server watches and the page shows, as NAME=URL (repeatable): rtsp://..., /dev/video0, any "
            + "input fer-annotate reads live; a file plays in a loop. Its timeline goes to DATA/cameras/NAME.csv.",
        valueName: "name=url"))
    var cameras: [String] = []

    static func bytes(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        let upper = text.uppercased()
        if let unit = upper.last, let scale = units[unit], let value = Double(upper.dropLast()), value > 0 {
            return Int64(value * Double(scale))
        }
        return Int64(upper).flatMap { $0 > 0 ? $0 : nil }
    }

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        guard Self.bytes(maxUpload) != nil else { throw ValidationError("--max-upload takes a size such as 500M or 2G") }
        for camera in cameras where ServerConfiguration.camera(camera) == nil {
            throw ValidationError("--camera takes NAME=URL with a name of letters, digits, '-' and '_', not '\(camera)'")
        }
        let names = cameras.compactMap { ServerConfiguration.camera($0)?.name }
        guard Set(names).count == names.count else { throw ValidationError("--camera names must differ") }
    }

    func run() async throws {
        guard let models = DetectorAssets.modelsFolder(override: detectorModels) else {
            FileHandle.standardError.write(Data("error: detector models not found in \(DetectorAssets.relativeFolder) (run Scripts/setup.sh, or pass --detector-models DIR)\n".utf8))
            throw ExitCode(66)
        }
        var configuration = ServerConfiguration(
            dataFolder: URL(fileURLWithPath: data), executable: Self.executablePath(), models: models)
        configuration.host = host
        configuration.port = port
        configuration.token = token ?? ProcessInfo.processInfo.environment["FER_ANNOTATE_TOKEN"]
        configuration.maxJobs = jobs
        configuration.maxUploadBytes = Self.bytes(maxUpload)!
        configuration.cameras = cameras.compactMap(ServerConfiguration.camera)
        let shownHost = host.contains(":") ? "[\(host)]" : host
        do {
            try await AnnotationServer.run(configuration) { port in
                FileHandle.standardOutput.write(Data("fer-annotate serve: listening on http://\(shownHost):\(port)/ (data in \(data))\n".utf8))
            }
        } catch let error as ServerError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode(64)
        }
    }

    /// Parses `arguments` (what follows `serve`) and runs the server; --help, bad options and errors exit as
    /// ArgumentParser's commands do.
    static func main(arguments: [String]) async {
        do {
            var command = try parseAsRoot(arguments)
            guard let serve = command as? ServeCommand else { try command.run(); return }
            try await serve.run()
        } catch {
            exit(withError: error)
        }
    }

    /// This executable, which also runs each job.
    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
    }
}
