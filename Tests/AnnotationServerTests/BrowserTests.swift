import Foundation
import XCTest

/// The page in a real browser (Scripts/webapp_browser_check.py: headless Chromium with a fake camera playing
/// single_face.mp4, driven by Selenium): the webcam view labels the face, an upload reaches the player, and a
/// server camera (the same file, looped) is shown with its labelled face.
/// Screenshots go to .build/test-artifacts/. Skips, saying why, only where Chromium cannot start.
final class BrowserTests: XCTestCase {
    func testPageInARealBrowser() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let video = ServerProcess.media.appendingPathComponent("single_face.mp4").path
        let server = try ServerProcess(data: folder.appendingPathComponent("data"), arguments: ["--camera", "demo=\(video)"])
        guard FileManager.default.fileExists(atPath: video) else {
            XCTFail("missing \(video): run Scripts/setup.sh first")
            return
        }
        let artifacts = ServerProcess.packageRoot.appendingPathComponent(".build/test-artifacts")
        let check = Process()
        // Debian's python3, which has python3-selenium (a python3 earlier on PATH may not).
        check.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        check.arguments = [ServerProcess.packageRoot.appendingPathComponent("Scripts/webapp_browser_check.py").path,
                           "--url", server.base + "/", "--video", video, "--screenshots", artifacts.path]
        let output = folder.appendingPathComponent("check.log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        check.standardOutput = handle
        check.standardError = handle
        try check.run()
        check.waitUntilExit()
        let log = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        print(log)
        if check.terminationStatus == 77 {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("the browser check could not run under CI, where setup installs Chromium: \(log)")
            }
            throw XCTSkip("browser check not run: \(log)")
        }
        XCTAssertEqual(check.terminationStatus, 0, log + server.log)
        for name in ["webapp-webcam.png", "webapp-upload.png", "webapp-cameras.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: artifacts.appendingPathComponent(name).path), name)
        }
    }
}
