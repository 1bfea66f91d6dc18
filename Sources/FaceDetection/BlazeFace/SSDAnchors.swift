import VisionCore

/// The subset of MediaPipe's SsdAnchorsCalculatorOptions that BlazeFace uses (fixed_anchor_size, one aspect
/// ratio, no scales): anchors are cell centres, and the network regresses offsets from them in input pixels.
public struct SSDAnchorOptions: Sendable, Equatable {
    public var inputWidth: Int
    public var inputHeight: Int
    /// One stride per output layer; consecutive layers with the same stride share one feature map.
    public var strides: [Int]
    public var offsetX: Float = 0.5
    public var offsetY: Float = 0.5
    /// 1 adds a second anchor per layer and cell (MediaPipe's interpolated scale); 0 does not.
    public var interpolatedScaleAspectRatio: Float

    public init(inputWidth: Int, inputHeight: Int, strides: [Int], offsetX: Float = 0.5, offsetY: Float = 0.5,
                interpolatedScaleAspectRatio: Float) {
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.strides = strides
        self.offsetX = offsetX
        self.offsetY = offsetY
        self.interpolatedScaleAspectRatio = interpolatedScaleAspectRatio
    }

    /// Anchor centres in [0, 1] input coordinates, in the order the network's outputs list them:
    /// feature map by feature map, row by row, cell by cell, anchor by anchor.
    public func anchorCenters() -> [Point] {
        var anchors: [Point] = []
        var layer = 0
        while layer < strides.count {
            var next = layer
            var perCell = 0
            while next < strides.count && strides[next] == strides[layer] {
                perCell += interpolatedScaleAspectRatio == 1 ? 2 : 1
                next += 1
            }
            let rows = inputHeight / strides[layer], columns = inputWidth / strides[layer]
            for y in 0..<rows {
                let centerY = (Float(y) + offsetY) / Float(rows)
                for x in 0..<columns {
                    let anchor = Point(x: (Float(x) + offsetX) / Float(columns), y: centerY)
                    anchors.append(contentsOf: repeatElement(anchor, count: perCell))
                }
            }
            layer = next
        }
        return anchors
    }
}
