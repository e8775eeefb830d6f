import ECCompression

extension Int8Model {
    /// Top-1 accuracy of the integer path over `data`.
    public func accuracy(on data: Dataset, batchSize: Int = 500) -> Double {
        var correct = 0, start = 0
        while start < data.count {
            let batch = data.gather(start..<min(data.count, start + batchSize))
            let predicted = self(batch.images).argmaxRows()
            correct += zip(predicted, batch.labels).filter { $0 == $1 }.count
            start += batchSize
        }
        return data.count == 0 ? 0 : Double(correct) / Double(data.count)
    }
}
