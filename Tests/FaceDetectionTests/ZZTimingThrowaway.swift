import FaceDetection
import Foundation
import NeuralEngine
import VisionCore
import XCTest

final class ZZTimingThrowaway: XCTestCase {
    func testTiming() throws {
        let source = try FaceDetectionTestSupport.image("multi_face.jpg")
        let (width, height) = (1280, 720)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height { for x in 0..<width {
            let from = ((y * source.height / height) * source.width + x * source.width / width) * 3
            for c in 0..<3 { pixels[(y * width + x) * 3 + c] = source.pixels[from + c] }
        } }
        let frame = Image(width: width, height: height, format: .rgb24, pixels: pixels)
        for model in BlazeFaceModel.allCases {
            let detector = try FaceDetectionTestSupport.detector(model)
            var total: [Double] = [], pre: [Double] = [], net: [Double] = []
            var faces = 0
            var cpu: [Double] = []
            for _ in 0..<60 {
                var c0 = timespec(), c1 = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0)
                _ = try detector.detect(in: frame)
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1)
                cpu.append(Double(c1.tv_sec - c0.tv_sec) * 1e3 + Double(c1.tv_nsec - c0.tv_nsec) / 1e6)
                let t0 = DispatchTime.now().uptimeNanoseconds
                let (input, _) = detector.networkInput(for: frame)
                let t1 = DispatchTime.now().uptimeNanoseconds
                _ = detector.rawOutputs(for: input)
                let t2 = DispatchTime.now().uptimeNanoseconds
                faces = try detector.detect(in: frame).count
                let t3 = DispatchTime.now().uptimeNanoseconds
                pre.append(Double(t1 - t0) / 1e6); net.append(Double(t2 - t1) / 1e6); total.append(Double(t3 - t2) / 1e6)
            }
            func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
            func minimum(_ v: [Double]) -> Double { v.min()! }
            print(String(format: "TIMING %@ 720p: detect median %.2f ms (min %.2f); letterbox %.2f ms, network %.2f ms; faces %d; thread CPU median %.2f min %.2f",
                         model.rawValue, median(total), minimum(total), median(pre), median(net), faces, median(cpu), minimum(cpu)))
        }
    }
}
extension ZZTimingThrowaway {
    func testProfile() throws {
        let detector = try FaceDetectionTestSupport.detector(.fullRange)
        let input = Tensor(zeros: [1, 3, 192, 192])
        var sums: [String: Double] = [:]
        var convs: [Double] = Array(repeating: 0, count: 200)
        for _ in 0..<30 {
            for (k, (name, seconds)) in detector.interpreter.profile(input).enumerated() {
                sums[name, default: 0] += seconds / 30
                convs[k] += seconds / 30
            }
        }
        for (name, seconds) in sums.sorted(by: { $0.value > $1.value }) { print(String(format: "PROFILE %@ %.2f ms", name, seconds * 1000)) }
        let names = detector.interpreter.stepNames
        print("PROFILE top steps:", convs.enumerated().sorted { $0.element > $1.element }.prefix(12).map { "\($0.offset):\(names[$0.offset]) \(String(format: "%.2f", $0.element * 1000))" })
    }
}
