import Foundation
import MediaIO
import VisionCore
import XCTest

/// `fer-annotate serve` end to end: a real server on 127.0.0.1, real uploads, real frames.
final class ServerTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func sample(_ name: String) throws -> Data {
        let url = ServerProcess.media.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            XCTFail("missing \(url.path): run Scripts/setup.sh first")
            throw XCTSkip("sample missing")
        }
        return try Data(contentsOf: url)
    }

    func jobFolders(_ data: URL) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("jobs").path)) ?? []
    }

    /// A video goes through to `done`: the CSV has a row for every frame with one track, the video keeps its
    /// frames and audio and serves byte ranges; the job survives a restart of the server.
    func testVideoUploadRunsToDoneAndSurvivesARestart() async throws {
        let data = folder.appendingPathComponent("data")
        var server = try ServerProcess(data: data)
        let http = HTTP()
        let healthStatus = try await http.send("GET", server.base + "/api/health").status
        XCTAssertEqual(healthStatus, 200)
        let created = try await http.send("POST", server.base + "/api/jobs?name=Wolfgang%20Langer.mp4&detect_every=1",
                                          body: try sample("WolfgangLanger_Pexels.mp4"))
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.object["id"] as? String)
        let job = try await http.waitForJob(server.base + "/api/jobs/\(id)")
        XCTAssertEqual(job["state"] as? String, "done", "\(job) \(server.log)")
        XCTAssertEqual(job["progress"] as? Double, 1)
        XCTAssertEqual(job["name"] as? String, "Wolfgang Langer.mp4")

        let csv = try await http.send("GET", server.base + "/api/jobs/\(id)/timeline.csv")
        XCTAssertEqual(csv.status, 200)
        let rows = csv.text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let source = try VideoReader(url: ServerProcess.media.appendingPathComponent("WolfgangLanger_Pexels.mp4").path)
        var sourceFrames = 0
        while try source.nextFrame(as: .gray8) != nil { sourceFrames += 1 }
        XCTAssertEqual(Set(rows.map { $0[0] }).count, sourceFrames, "one row per frame")
        XCTAssertEqual(Set(rows.compactMap { $0[2].isEmpty ? nil : $0[2] }), ["1"], "one person, one track")

        let video = try await http.send("GET", server.base + "/api/jobs/\(id)/video.mp4")
        XCTAssertEqual(video.status, 200)
        XCTAssertEqual(video.headers["content-type"], "video/mp4")
        let saved = folder.appendingPathComponent("annotated.mp4")
        try video.body.write(to: saved)
        let reader = try VideoReader(url: saved.path)
        XCTAssertTrue(reader.info.hasAudio, "audio kept")
        var frames = 0
        while try reader.nextFrame(as: .gray8) != nil { frames += 1 }
        XCTAssertEqual(frames, sourceFrames)
        // The player seeks with byte ranges.
        let part = try await http.send("GET", server.base + "/api/jobs/\(id)/video.mp4", headers: ["Range": "bytes=100-1099"])
        XCTAssertEqual(part.status, 206)
        XCTAssertEqual(part.body, video.body[100...1099])
        XCTAssertEqual(part.headers["content-range"], "bytes 100-1099/\(video.body.count)")
        let tail = try await http.send("GET", server.base + "/api/jobs/\(id)/video.mp4", headers: ["Range": "bytes=-10"])
        XCTAssertEqual(tail.body, video.body.suffix(10))
        let outside = try await http.send("GET", server.base + "/api/jobs/\(id)/video.mp4",
                                          headers: ["Range": "bytes=\(video.body.count + 5)-"])
        XCTAssertEqual(outside.status, 416)
        let summary = try await http.send("GET", server.base + "/api/jobs/\(id)/summary.json").object
        XCTAssertEqual((summary["tracks"] as? [Any])?.count, 1)

        XCTAssertEqual(server.stop(), 0, server.log)
        server = try ServerProcess(data: data)
        let listed = try await http.send("GET", server.base + "/api/jobs").json as? [[String: Any]]
        XCTAssertEqual(listed?.map { $0["id"] as? String }, [id])
        XCTAssertEqual(listed?.first?["state"] as? String, "done")
        // Deleting removes the job and its files.
        let deleteStatus = try await http.send("DELETE", server.base + "/api/jobs/\(id)").status
        XCTAssertEqual(deleteStatus, 204)
        let deletedStatus = try await http.send("GET", server.base + "/api/jobs/\(id)").status
        XCTAssertEqual(deletedStatus, 404)
        XCTAssertEqual(jobFolders(data), [])
    }

    /// --jobs 1: a second upload waits `queued` while the first runs, then runs after it; both finish.
    func testJobsBeyondTheLimitWaitTheirTurn() async throws {
        let server = try ServerProcess(data: folder.appendingPathComponent("data"), arguments: ["--jobs", "1"])
        let http = HTTP()
        let video = try sample("WolfgangLanger_Pexels.mp4")
        let firstReply = try await http.send("POST", server.base + "/api/jobs?name=a.mp4", body: video)
        let secondReply = try await http.send("POST", server.base + "/api/jobs?name=b.mp4", body: video)
        let first = try XCTUnwrap(firstReply.object["id"] as? String), second = try XCTUnwrap(secondReply.object["id"] as? String)
        var sawOrder = false
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let states = try await [first, second].asyncMap { try await http.send("GET", server.base + "/api/jobs/\($0)").object["state"] as? String }
            XCTAssertFalse(states == ["running", "running"], "two jobs ran at once")
            if states == ["running", "queued"] { sawOrder = true }
            if states[1] == "running" || states[1] == "done" { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertTrue(sawOrder, "the second upload waited while the first ran")
        let finished = try await http.waitForJob(server.base + "/api/jobs/\(second)")
        XCTAssertEqual(finished["state"] as? String, "done")
        let firstState = try await http.send("GET", server.base + "/api/jobs/\(first)").object["state"] as? String
        XCTAssertEqual(firstState, "done")
    }

    /// A photo comes back as an annotated JPEG with a row per face.
    func testPhotoUploadReturnsItsFaces() async throws {
        let server = try ServerProcess(data: folder.appendingPathComponent("data"))
        let http = HTTP()
        let created = try await http.send("POST", server.base + "/api/jobs?name=group.jpg", body: try sample("multi_face.jpg"))
        XCTAssertEqual(created.status, 201, created.text)
        XCTAssertEqual(created.object["kind"] as? String, "image")
        let id = try XCTUnwrap(created.object["id"] as? String)
        let job = try await http.waitForJob(server.base + "/api/jobs/\(id)")
        XCTAssertEqual(job["state"] as? String, "done", "\(job)")
        let csv = try await http.send("GET", server.base + "/api/jobs/\(id)/timeline.csv").text
        let faces = csv.split(separator: "\n").dropFirst().filter { $0.split(separator: ",", omittingEmptySubsequences: false)[2] != "" }
        XCTAssertEqual(faces.count, 5, csv)
        let image = try await http.send("GET", server.base + "/api/jobs/\(id)/image.jpg")
        XCTAssertEqual(image.status, 200)
        XCTAssertEqual(Array(image.body.prefix(2)), [0xFF, 0xD8], "a JPEG")
        let photoVideoStatus = try await http.send("GET", server.base + "/api/jobs/\(id)/video.mp4").status
        XCTAssertEqual(photoVideoStatus, 404, "a photo has no video")
    }

    /// Refusals leave nothing behind: not media (415), too large (413, checked while streaming), bad options
    /// (400), IDs that are not the server's (404).
    func testRefusedUploadsLeaveNothingBehind() async throws {
        let data = folder.appendingPathComponent("data")
        let server = try ServerProcess(data: data, arguments: ["--max-upload", "1M"])
        let http = HTTP()
        let text = try await http.send("POST", server.base + "/api/jobs?name=notes.txt", body: Data(String(repeating: "not a video\n", count: 500).utf8))
        XCTAssertEqual(text.status, 415, text.text)
        XCTAssertTrue((text.object["error"] as? String ?? "").contains("notes.txt"), text.text)
        let big = try await http.send("POST", server.base + "/api/jobs?name=big.mp4", body: Data(count: 3 << 20))
        XCTAssertEqual(big.status, 413, big.text)
        let badOption = try await http.send("POST", server.base + "/api/jobs?name=a.jpg&detector=haar", body: try sample("single_face.jpg"))
        XCTAssertEqual(badOption.status, 400, badOption.text)
        let noName = try await http.send("POST", server.base + "/api/jobs", body: try sample("single_face.jpg"))
        XCTAssertEqual(noName.status, 400)
        let traversalStatus = try await http.send("GET", server.base + "/api/jobs/..%2F..%2Fetc").status
        XCTAssertEqual(traversalStatus, 404)
        let unknownJobStatus = try await http.send("GET", server.base + "/api/jobs/\(UUID().uuidString.lowercased())/timeline.csv").status
        XCTAssertEqual(unknownJobStatus, 404)
        XCTAssertEqual(jobFolders(data), [], "nothing left in the data folder")
        let remaining = try await http.send("GET", server.base + "/api/jobs").json as? [Any]
        XCTAssertEqual(remaining?.count, 0)
    }

    /// With a token, every request needs it (header or the cookie the page gets from /?token=); a non-loopback
    /// address without one is refused at start.
    func testTokenGuardsEveryRequest() async throws {
        let server = try ServerProcess(data: folder.appendingPathComponent("data"), arguments: ["--token", "s3cret"])
        let http = HTTP()
        let noTokenStatus = try await http.send("GET", server.base + "/api/health").status
        XCTAssertEqual(noTokenStatus, 401)
        let wrongTokenStatus = try await http.send("GET", server.base + "/api/jobs", headers: ["Authorization": "Bearer wrong"]).status
        XCTAssertEqual(wrongTokenStatus, 401)
        let rightTokenStatus = try await http.send("GET", server.base + "/api/jobs", headers: ["Authorization": "Bearer s3cret"]).status
        XCTAssertEqual(rightTokenStatus, 200)
        let cookiePageStatus = try await http.send("GET", server.base + "/", headers: ["Cookie": "fer_token=s3cret"]).status
        XCTAssertEqual(cookiePageStatus, 200)
        let noCookiePageStatus = try await http.send("GET", server.base + "/").status
        XCTAssertEqual(noCookiePageStatus, 401)
        let noTokenUploadStatus = try await http.send("POST", server.base + "/api/jobs?name=a.jpg", body: try sample("single_face.jpg")).status
        XCTAssertEqual(noTokenUploadStatus, 401)
        XCTAssertThrowsError(try WebSocketConnection(port: server.port, path: "/api/live"), "a WebSocket without the token")
        _ = try WebSocketConnection(port: server.port, path: "/api/live", headers: ["Cookie": "fer_token=s3cret"])

        let open = Process()
        open.executableURL = URL(fileURLWithPath: ServerProcess.binary)
        open.arguments = ["serve", "--host", "0.0.0.0", "--port", "0", "--data", folder.appendingPathComponent("open").path]
        let errors = Pipe()
        open.standardError = errors
        open.standardOutput = FileHandle.nullDevice
        try open.run()
        open.waitUntilExit()
        XCTAssertEqual(open.terminationStatus, 64)
        XCTAssertTrue(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("needs --token"))
    }

    /// SIGTERM while a job runs: the server exits cleanly, the job is marked interrupted, and what it wrote plays.
    func testStopDuringAJobMarksItInterrupted() async throws {
        let data = folder.appendingPathComponent("data")
        let long = folder.appendingPathComponent("long.mp4")
        // About 80 s of video: long enough to be mid-way when stopped.
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        ffmpeg.arguments = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "4", "-i",
                            ServerProcess.media.appendingPathComponent("WolfgangLanger_Pexels.mp4").path, "-c", "copy", long.path]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        XCTAssertEqual(ffmpeg.terminationStatus, 0)
        var server = try ServerProcess(data: data)
        let http = HTTP()
        let created = try await http.send("POST", server.base + "/api/jobs?name=long.mp4", body: try Data(contentsOf: long))
        let id = try XCTUnwrap(created.object["id"] as? String, created.text)
        // Readiness: the job reports progress before the stop.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let job = try await http.send("GET", server.base + "/api/jobs/\(id)").object
            if (job["progress"] as? Double ?? 0) > 0.05 { break }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        XCTAssertEqual(server.stop(), 0, server.log)
        server = try ServerProcess(data: data)
        let job = try await http.send("GET", server.base + "/api/jobs/\(id)").object
        XCTAssertEqual(job["state"] as? String, "interrupted", "\(job)")
        let progress = job["progress"] as? Double ?? 0
        XCTAssertGreaterThan(progress, 0.05)
        XCTAssertLessThan(progress, 1)
        let video = try await http.send("GET", server.base + "/api/jobs/\(id)/video.mp4")
        let saved = folder.appendingPathComponent("partial.mp4")
        try video.body.write(to: saved)
        let reader = try VideoReader(url: saved.path)
        var frames = 0
        while try reader.nextFrame(as: .gray8) != nil { frames += 1 }
        XCTAssertGreaterThan(frames, 50, "the partial video plays")
    }

    /// A server camera (a file, which plays in a loop): listed without its URL, its latest record shows the face,
    /// its latest frame is a JPEG, its timeline CSV grows in the data folder with wall-clock times, and a stop
    /// leaves the CSV with complete rows.
    func testServerCameraShowsItsFaceAndWritesItsTimeline() async throws {
        let data = folder.appendingPathComponent("data")
        let video = ServerProcess.media.appendingPathComponent("single_face.mp4").path
        let server = try ServerProcess(data: data, arguments: ["--camera", "desk=\(video)"])
        let http = HTTP()
        let listed = try await http.send("GET", server.base + "/api/cameras")
        XCTAssertEqual((listed.json as? [[String: Any]])?.map { $0["name"] as? String }, ["desk"])
        XCTAssertFalse(listed.text.contains(video), "the camera's URL stays on the server")
        var face: [String: Any]?
        let deadline = Date().addingTimeInterval(60)
        var frameIndex = 0
        // Readiness: a labelled face, and a dozen frames analysed (so the CSV has rows to check).
        while face == nil || frameIndex < 12, Date() < deadline {
            let record = try await http.send("GET", server.base + "/api/cameras/desk/latest.json").object["record"] as? [String: Any]
            face = (record?["faces"] as? [[String: Any]])?.first { $0["emotion"] != nil } ?? face
            frameIndex = record?["frame"] as? Int ?? 0
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        let probabilities = try XCTUnwrap(face?["probabilities"] as? [String: Double], "a labelled face within 60 s")
        XCTAssertEqual(probabilities.values.reduce(0, +), 1, accuracy: 1e-3)
        let frame = try await http.send("GET", server.base + "/api/cameras/desk/frame.jpg")
        XCTAssertEqual(frame.status, 200)
        XCTAssertEqual(Array(frame.body.prefix(2)), [0xFF, 0xD8])
        let missing = try await http.send("GET", server.base + "/api/cameras/nope/frame.jpg")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(server.stop(), 0, server.log)
        let csv = try String(contentsOf: data.appendingPathComponent("cameras/desk.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n")
        let header = lines[0].split(separator: ",")
        XCTAssertTrue(header.contains("wall_time"))
        XCTAssertGreaterThan(lines.count, 10)
        for line in lines.dropFirst() {
            XCTAssertEqual(line.split(separator: ",", omittingEmptySubsequences: false).count, header.count, "complete row: \(line)")
        }
    }

    /// The webcam socket: frames of single_face.mp4 as JPEGs get one stable face ID and probabilities summing to
    /// 1; garbage gets an error and the socket keeps working.
    func testWebcamFramesGetOneStableFace() async throws {
        let server = try ServerProcess(data: folder.appendingPathComponent("data"))
        let socket = try WebSocketConnection(port: server.port, path: "/api/live")
        let reader = try VideoReader(url: ServerProcess.media.appendingPathComponent("single_face.mp4").path)
        var ids = Set<Int>()
        var answered = 0
        for index in 0..<24 {
            guard let frame = try reader.nextFrame(as: .rgb24) else { break }
            let path = folder.appendingPathComponent("frame\(index).jpg").path
            try encodeImage(frame.image, to: path)
            try socket.send(Array(try Data(contentsOf: URL(fileURLWithPath: path))), opcode: 2)
            let record = try JSONSerialization.jsonObject(with: Data(try socket.receiveText().utf8)) as! [String: Any]
            XCTAssertEqual(record["type"] as? String, "frame", "\(record)")
            XCTAssertEqual(record["frame"] as? Int, index)
            answered += 1
            for face in record["faces"] as? [[String: Any]] ?? [] {
                ids.insert(face["id"] as! Int)
                let probabilities = face["probabilities"] as! [String: Double]
                XCTAssertEqual(probabilities.count, 7)
                XCTAssertEqual(probabilities.values.reduce(0, +), 1, accuracy: 1e-3)
                XCTAssertNotNil(face["emotion"] as? String)
            }
            if index == 10 {
                try socket.send(Array("GIF89a garbage".utf8), opcode: 2)
                let error = try JSONSerialization.jsonObject(with: Data(try socket.receiveText().utf8)) as! [String: Any]
                XCTAssertEqual(error["type"] as? String, "error")
                try socket.send(Array("{\"hello\":1}".utf8), opcode: 1)
                XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(try socket.receiveText().utf8)) as! [String: Any])["type"] as? String, "error")
            }
        }
        XCTAssertEqual(answered, 24)
        XCTAssertEqual(ids, [1], "one face, one ID throughout")
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
