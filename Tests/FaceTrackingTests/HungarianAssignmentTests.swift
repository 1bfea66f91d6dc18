import FaceTracking
import XCTest

final class HungarianAssignmentTests: XCTestCase {
    /// Every way of pairing min(rows, columns) rows with distinct columns: (number of allowed pairs, cost).
    func bruteForce(_ cost: [[Double]], maximumCost: Double = .infinity) -> (pairs: Int, cost: Double) {
        let rows = cost.count, columns = cost[0].count
        var best = (pairs: -1, cost: Double.infinity)
        func search(row: Int, used: Set<Int>, pairs: Int, total: Double) {
            if row == rows {
                if pairs > best.pairs || (pairs == best.pairs && total < best.cost) { best = (pairs, total) }
                return
            }
            // A row may stay unassigned only when there are more rows than columns.
            if rows - row > columns - used.count { search(row: row + 1, used: used, pairs: pairs, total: total) }
            for column in 0..<columns where !used.contains(column) {
                let allowed = cost[row][column] <= maximumCost
                search(row: row + 1, used: used.union([column]), pairs: pairs + (allowed ? 1 : 0),
                       total: total + (allowed ? cost[row][column] : 0))
            }
        }
        search(row: 0, used: [], pairs: 0, total: 0)
        return best
    }

    func randomMatrix(_ generator: inout SplitMix64) -> [[Double]] {
        let rows = Int.random(in: 1...6, using: &generator), columns = Int.random(in: 1...6, using: &generator)
        return (0..<rows).map { _ in (0..<columns).map { _ in Double.random(in: 0...1, using: &generator) } }
    }

    func testMatchesBruteForceOnRandomRectangularMatrices() {
        var generator = SplitMix64(state: 1)
        for _ in 0..<300 {
            let cost = randomMatrix(&generator)
            let assignment = HungarianAssignment.minimumCost(cost)
            let columns = assignment.compactMap { $0 }
            XCTAssertEqual(columns.count, min(cost.count, cost[0].count), "every row or every column assigned")
            XCTAssertEqual(Set(columns).count, columns.count, "no column used twice")
            let total = assignment.enumerated().reduce(0.0) { sum, pair in sum + (pair.element.map { cost[pair.offset][$0] } ?? 0) }
            XCTAssertEqual(total, bruteForce(cost).cost, accuracy: 1e-9, "\(cost)")
        }
    }

    func testGatedMatchKeepsMostAllowedPairsThenCheapest() {
        var generator = SplitMix64(state: 2)
        for _ in 0..<300 {
            let cost = randomMatrix(&generator)
            let pairs = HungarianAssignment.match(cost: cost, maximumCost: 0.5)
            XCTAssertTrue(pairs.allSatisfy { cost[$0.row][$0.column] <= 0.5 })
            XCTAssertEqual(Set(pairs.map(\.row)).count, pairs.count)
            XCTAssertEqual(Set(pairs.map(\.column)).count, pairs.count)
            let expected = bruteForce(cost, maximumCost: 0.5)
            XCTAssertEqual(pairs.count, expected.pairs, "\(cost)")
            XCTAssertEqual(pairs.reduce(0.0) { $0 + cost[$1.row][$1.column] }, expected.cost, accuracy: 1e-9)
        }
    }

    func testGatingBeforeAssignmentKeepsBothPairs() {
        // Ungated, the diagonal (0 + 0.97 = 0.97) beats the cross (0.49 + 0.49 = 0.98), and gating it
        // afterwards would leave one pair; gated first, both cross pairs are allowed.
        let pairs = HungarianAssignment.match(cost: [[0, 0.49], [0.49, 0.97]], maximumCost: 0.5)
        XCTAssertEqual(pairs.map(\.column), [1, 0])
    }

    func testEmptyMatrices() {
        XCTAssertEqual(HungarianAssignment.minimumCost([]), [])
        XCTAssertEqual(HungarianAssignment.minimumCost([[], []]), [nil, nil])
        XCTAssertTrue(HungarianAssignment.match(cost: [[0.9]], maximumCost: 0.5).isEmpty)
    }
}
