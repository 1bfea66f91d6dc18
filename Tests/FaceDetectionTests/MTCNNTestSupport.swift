import FaceDetection
import Foundation
import NeuralEngine
import VisionCore
import XCTest

/// The converted MTCNN weights and Scripts/mtcnn_reference.py's fixture.
enum MTCNNTestSupport {
    struct SupportFailure: Error, CustomStringConvertible { let description: String }

    static let weightsFile = FaceDetectionTestSupport.modelsFolder.appendingPathComponent(MTCNNWeights.fileName)

    /// Skips (with the reason printed) when setup has not converted the weights.
    static func requireWeights() throws -> URL {
        guard FileManager.default.fileExists(atPath: weightsFile.path) else {
            let reason = "MTCNN weights missing at \(weightsFile.path): run Scripts/setup.sh"
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                // Scripts/setup.sh provides it, so under CI its absence is a setup failure, not a reason to skip.
                XCTFail("\(reason) (CI=true)")
            }
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        return weightsFile
    }

    static func detector(_ options: MTCNNDetector.Options = .init()) throws -> MTCNNDetector {
        try MTCNNDetector(weightsFile: requireWeights(), options: options)
    }

    static func reference() throws -> MTCNNReferenceFixture {
        let data = try Data(contentsOf: FaceDetectionTestSupport.fixturesFolder.appendingPathComponent("mtcnn_reference.json"))
        return try JSONDecoder().decode(MTCNNReferenceFixture.self, from: data)
    }

    /// The script's synthetic batch: levels = (y*y*3 + x*7 + c*50 + x*y + n*31) % 256 at NCHW (n, c, y, x),
    /// value (Float(levels) - 127.5) * 0.0078125: exact in float32, so identical to numpy's.
    static func patternBatch(count: Int, size: Int) -> Tensor {
        var values = [Float](repeating: 0, count: count * 3 * size * size)
        for n in 0..<count {
            for c in 0..<3 {
                for y in 0..<size {
                    for x in 0..<size {
                        let levels = (y * y * 3 + x * 7 + c * 50 + x * y + n * 31) % 256
                        values[((n * 3 + c) * size + y) * size + x] = (Float(levels) - 127.5) * 0.0078125
                    }
                }
            }
        }
        return Tensor(shape: [count, 3, size, size], storage: values)
    }

    /// Byte sum and sum(byte[i] * (i % 251 + 1)), as the script computes them.
    static func checksums(_ image: Image) -> (byteSum: Int, weightedByteSum: Int) {
        var plain = 0, weighted = 0
        for (index, byte) in image.pixels.enumerated() {
            plain += Int(byte)
            weighted += Int(byte) * (index % 251 + 1)
        }
        return (plain, weighted)
    }

    /// The confident faces (score above 0.99) `detector` finds in the sample photos, with their pictures.
    static func sampleFaces(locatingWith detector: FaceDetector) throws -> [(image: Image, box: Box)] {
        var sources: [(image: Image, box: Box)] = []
        for name in ["multi_face.jpg", "single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg",
                     "45-m7-di-ph.jpg", "BWPictureHuman.jpg"] {
            let image = try FaceDetectionTestSupport.image(name)
            for face in try detector.detect(in: image) where face.score > 0.99 { sources.append((image, face.box)) }
        }
        return sources
    }

    /// Twelve faces cut from the sample photos (located by `detector` on the full-size images), scaled so the face
    /// box is 20-40 px wide, pasted in a 4 x 3 grid on a plain gray canvas; with the faces' boxes (in the
    /// locating detector's framing) and widths.
    static func smallFaceGroupPicture(locatingWith detector: FaceDetector) throws -> (image: Image, faces: [Box], widths: [Float]) {
        let sources = try sampleFaces(locatingWith: detector)
        guard sources.count >= 8 else { throw SupportFailure(description: "only \(sources.count) sample faces to build the group picture from") }
        let widths: [Float] = [20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 25]
        let cell = 112
        var canvas = Image(width: 4 * cell, height: 3 * cell, format: .rgb24,
                           pixels: [UInt8](repeating: 128, count: 4 * cell * 3 * cell * 3))
        var expected: [Box] = []
        for (index, width) in widths.enumerated() {
            let source = sources[index % sources.count]
            // The face with a margin of 30% of its size on each side, scaled so the face is `width` px wide.
            let factor = width / source.box.width
            let margin = 0.3 * max(source.box.width, source.box.height)
            let region = Box(minX: source.box.minX - margin, minY: source.box.minY - margin,
                             maxX: source.box.maxX + margin, maxY: source.box.maxY + margin)
                .clipped(width: source.image.width, height: source.image.height)
            let pasteWidth = min(cell, Int((region.width * factor).rounded()))
            let pasteHeight = min(cell, Int((region.height * factor).rounded()))
            let left = (index % 4) * cell + (cell - pasteWidth) / 2, top = (index / 4) * cell + (cell - pasteHeight) / 2
            paste(source.image, region: region, into: &canvas, x: left, y: top, width: pasteWidth, height: pasteHeight)
            expected.append(Box(x: Float(left) + (source.box.minX - region.minX) * factor,
                                y: Float(top) + (source.box.minY - region.minY) * factor,
                                width: source.box.width * factor, height: source.box.height * factor))
        }
        return (canvas, expected, widths)
    }

    /// Faces packed as in a team photo: `rows` rows of faces `widths` px wide (cycled), each pasted with a margin
    /// of `margin` of its size and touching its neighbours (no gap between the pasted regions), rows offset by
    /// half a face as people stand in a second row; on a gray canvas with `border` px around. Returns the true
    /// boxes where the test pasted each face (in the locating detector's framing).
    static func packedFacesPicture(locatingWith detector: FaceDetector, rows: Int, perRow: Int, widths: [Float],
                                   margin: Float = 0.12, border: Int = 24) throws -> (image: Image, faces: [Box]) {
        let sources = try sampleFaces(locatingWith: detector)
        guard sources.count >= 8 else { throw SupportFailure(description: "only \(sources.count) sample faces to build the picture from") }
        // Lay the faces out first, then size the canvas to them.
        var placements: [(source: Int, region: Box, factor: Float, x: Int, y: Int, width: Int, height: Int)] = []
        var y = border
        for row in 0..<rows {
            var x = border + (row % 2 == 1 ? Int(widths[0] / 2) : 0)
            var rowHeight = 0
            for column in 0..<perRow {
                let index = row * perRow + column
                let sourceIndex = index % sources.count
                let source = sources[sourceIndex]
                let width = widths[index % widths.count]
                let factor = width / source.box.width
                let pad = margin * max(source.box.width, source.box.height)
                let region = Box(minX: source.box.minX - pad, minY: source.box.minY - pad,
                                 maxX: source.box.maxX + pad, maxY: source.box.maxY + pad)
                    .clipped(width: source.image.width, height: source.image.height)
                let pasteWidth = Int((region.width * factor).rounded()), pasteHeight = Int((region.height * factor).rounded())
                placements.append((sourceIndex, region, factor, x, y, pasteWidth, pasteHeight))
                x += pasteWidth
                rowHeight = max(rowHeight, pasteHeight)
            }
            y += rowHeight
        }
        let canvasWidth = placements.map { $0.x + $0.width }.max()! + border, canvasHeight = y + border
        var canvas = Image(width: canvasWidth, height: canvasHeight, format: .rgb24,
                           pixels: [UInt8](repeating: 128, count: canvasWidth * canvasHeight * 3))
        var faces: [Box] = []
        for placement in placements {
            let source = sources[placement.source]
            paste(source.image, region: placement.region, into: &canvas, x: placement.x, y: placement.y,
                  width: placement.width, height: placement.height)
            faces.append(Box(x: Float(placement.x) + (source.box.minX - placement.region.minX) * placement.factor,
                             y: Float(placement.y) + (source.box.minY - placement.region.minY) * placement.factor,
                             width: source.box.width * placement.factor, height: source.box.height * placement.factor))
        }
        return (canvas, faces)
    }

    /// Box-filter resize of `region` of `source` to width x height at (x, y) of `canvas`.
    static func paste(_ source: Image, region: Box, into canvas: inout Image, x: Int, y: Int, width: Int, height: Int) {
        let scaleX = region.width / Float(width), scaleY = region.height / Float(height)
        let channels = source.format.channels
        for oy in 0..<height {
            let y0 = Int(region.minY + Float(oy) * scaleY), y1 = max(y0 + 1, Int(region.minY + Float(oy + 1) * scaleY))
            for ox in 0..<width {
                let x0 = Int(region.minX + Float(ox) * scaleX), x1 = max(x0 + 1, Int(region.minX + Float(ox + 1) * scaleX))
                var sum = [0, 0, 0], count = 0
                for sy in y0..<min(y1, source.height) {
                    for sx in x0..<min(x1, source.width) {
                        for c in 0..<3 { sum[c] += Int(source.pixels[(sy * source.width + sx) * channels + (channels == 3 ? c : 0)]) }
                        count += 1
                    }
                }
                let at = ((y + oy) * canvas.width + x + ox) * 3
                for c in 0..<3 { canvas.pixels[at + c] = UInt8(sum[c] / max(count, 1)) }
            }
        }
    }
}

struct MTCNNReferenceFixture: Decodable {
    struct SampleImage: Decodable {
        var width: Int
        var height: Int
        var byteSum: Int
        var weightedByteSum: Int
    }
    struct Cell: Decodable {
        var y: Int
        var x: Int
        var probability: Float
        var regression: [Float]
    }
    struct Proposal: Decodable {
        var image: String
        var scales: [Double]
        var level: Int
        var inputShape: [Int]
        var inputSum: Double
        var outputHeight: Int
        var outputWidth: Int
        var faceProbabilitySum: Double
        var backgroundProbabilitySum: Double
        var regressionSum: Double
        var regressionAbsoluteSum: Double
        var top: [Cell]
        var sampled: [Cell]
    }
    struct Crop: Decodable {
        var image: String
        /// x, y, width, height in source pixels.
        var region: [Int]
        var inputSum: Double
        /// The network's outputs in its own order, each flattened.
        var outputs: [[Float]]
    }
    struct Pattern: Decodable {
        var count: Int
        /// Per image, the network's outputs in its own order.
        var outputs: [[[Float]]]
    }
    struct Network: Decodable {
        var pattern: Pattern
        var crops: [Crop]
    }
    struct Found: Decodable {
        /// x1, y1, x2, y2 in source pixels.
        var box: [Float]
        var score: Float
        var landmarks: [[Float]]
    }
    var images: [String: SampleImage]
    var proposal: Proposal
    var refine: Network
    var output: Network
    var detections: [String: [Found]]
}
