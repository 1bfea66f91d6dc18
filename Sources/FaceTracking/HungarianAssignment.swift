/// Optimal assignment (Kuhn-Munkres) on a rectangular cost matrix, O(n^2 m) for n <= m.
///
/// The shortest-augmenting-path form with row and column potentials (Jonker-Volgenant style; the
/// classic e-maxx formulation): each row in turn is added, and a Dijkstra-like search over reduced costs
/// finds the cheapest augmenting path.
public enum HungarianAssignment {
    /// The minimum-cost assignment of rows to columns: `result[row]` is its column, or nil when there are
    /// more rows than columns and this row is left over. Every entry of `cost` must be finite; rows must
    /// all have the same length.
    public static func minimumCost(_ cost: [[Double]]) -> [Int?] {
        let rows = cost.count, columns = cost.first?.count ?? 0
        guard rows > 0, columns > 0 else { return Array(repeating: nil, count: rows) }
        precondition(cost.allSatisfy { $0.count == columns }, "cost matrix rows differ in length")
        if rows > columns {
            let transposed = (0..<columns).map { column in cost.map { $0[column] } }
            var result = [Int?](repeating: nil, count: rows)
            for (column, row) in minimumCost(transposed).enumerated() { result[row!] = column }
            return result
        }

        // 1-based as in the textbook form; index 0 is the virtual start column.
        var rowPotential = [Double](repeating: 0, count: rows + 1)
        var columnPotential = [Double](repeating: 0, count: columns + 1)
        var rowOfColumn = [Int](repeating: 0, count: columns + 1)
        var previousColumn = [Int](repeating: 0, count: columns + 1)
        for row in 1...rows {
            rowOfColumn[0] = row
            var column = 0
            var shortest = [Double](repeating: .infinity, count: columns + 1)
            var visited = [Bool](repeating: false, count: columns + 1)
            repeat {
                visited[column] = true
                let currentRow = rowOfColumn[column]
                var delta = Double.infinity, nextColumn = 0
                for candidate in 1...columns where !visited[candidate] {
                    let reduced = cost[currentRow - 1][candidate - 1] - rowPotential[currentRow] - columnPotential[candidate]
                    if reduced < shortest[candidate] {
                        shortest[candidate] = reduced
                        previousColumn[candidate] = column
                    }
                    if shortest[candidate] < delta {
                        delta = shortest[candidate]
                        nextColumn = candidate
                    }
                }
                for candidate in 0...columns {
                    if visited[candidate] {
                        rowPotential[rowOfColumn[candidate]] += delta
                        columnPotential[candidate] -= delta
                    } else {
                        shortest[candidate] -= delta
                    }
                }
                column = nextColumn
            } while rowOfColumn[column] != 0
            // Flip the augmenting path back to the start.
            repeat {
                let previous = previousColumn[column]
                rowOfColumn[column] = rowOfColumn[previous]
                column = previous
            } while column != 0
        }

        var result = [Int?](repeating: nil, count: rows)
        for column in 1...columns where rowOfColumn[column] != 0 { result[rowOfColumn[column] - 1] = column - 1 }
        return result
    }

    /// Gated assignment: the most pairs with `cost <= maximumCost`, and among those the cheapest.
    /// Pairs over the gate are priced so high that one more allowed pair always beats any saving, then
    /// dropped from the answer (gating after a plain assignment could lose an allowed pair).
    public static func match(cost: [[Double]], maximumCost: Double) -> [(row: Int, column: Int)] {
        let allowed = cost.joined().filter { $0 <= maximumCost }
        guard !allowed.isEmpty else { return [] }
        let spread = (allowed.max()! - allowed.min()!) + 1
        let forbidden = allowed.max()! + spread * Double(min(cost.count, cost[0].count) + 1)
        let gated = cost.map { row in row.map { $0 <= maximumCost ? $0 : forbidden } }
        return minimumCost(gated).enumerated().compactMap { row, column in
            guard let column, cost[row][column] <= maximumCost else { return nil }
            return (row, column)
        }
    }
}
