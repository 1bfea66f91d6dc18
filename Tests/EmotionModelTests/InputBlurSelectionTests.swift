import EmotionModel
import XCTest

/// fer-eval --select-input-blur: the grid it tries and the sigma it keeps.
final class InputBlurSelectionTests: XCTestCase {
    func testGridIncludesBothEnds() throws {
        let grid = try XCTUnwrap(InputBlurSelection(grid: "2.5:4.1:0.2"))
        XCTAssertEqual(grid.sigmas.count, 9)  // (4.1 - 2.5) / 0.2 lands just under 8 in floats
        XCTAssertEqual(grid.sigmas.first!, 2.5, accuracy: 1e-6)
        XCTAssertEqual(grid.sigmas.last!, 4.1, accuracy: 1e-5)
        XCTAssertEqual(grid.sigmas[4], 3.3, "rounded to 1/1000 px, as the model file stores it")
        XCTAssertEqual(try XCTUnwrap(InputBlurSelection(grid: "3:3:1")).sigmas, [3])
    }

    func testRejectsMalformedGrids() {
        for text in ["", "3", "2:4", "2:4:0", "4:2:0.5", "-1:2:0.5", "a:b:c", "2:4:0.5:1", "0:1000:1", "2::0.5"] {
            XCTAssertNil(InputBlurSelection(grid: text), text)
        }
    }

    func testSmoothingAveragesNeighboursAndHalfWindowsAtTheEnds() {
        let smoothed = InputBlurSelection.smoothed([0.3, 0.6, 0.9, 0.3])
        for (value, expected) in zip(smoothed, [0.45, 0.6, 0.6, 0.6]) { XCTAssertEqual(value, expected, accuracy: 1e-12) }
        XCTAssertEqual(InputBlurSelection.smoothed([0.7]), [0.7])
        XCTAssertEqual(InputBlurSelection.smoothed([]), [])
    }

    /// An isolated spike loses to a plateau: the raw maximum (index 1) is not kept, the plateau's centre is.
    func testKeepsThePlateauNotTheSpike() {
        let accuracies = [0.50, 0.60, 0.50, 0.55, 0.56, 0.55, 0.50]
        XCTAssertEqual(accuracies.indices.max { accuracies[$0] < accuracies[$1] }, 1)
        XCTAssertEqual(InputBlurSelection.bestIndex(accuracies), 4)
        XCTAssertNil(InputBlurSelection.bestIndex([]))
        XCTAssertEqual(InputBlurSelection.bestIndex([0.5, 0.5, 0.5]), 0, "the first of equals")
    }
}
