import ECTensor

extension Model {
    /// Logits `[batch, classes]` for `images` (`[batch] + inputShape`) in inference mode, on
    /// this process's worker threads: the batch is cut into one contiguous slice per worker
    /// (`Parallel.workers`), and the slices run at once, each on one thread with
    /// single-threaded BLAS — the thread-replica idea of training applied to inference, where
    /// small GEMMs and the element-wise passes between them keep a multi-threaded BLAS from
    /// using the cores well. The rows are those of `self(Variable(images), .inference())` up to
    /// the Float rounding of single- vs multi-threaded GEMMs.
    ///
    /// One pass as usual when there is one worker, fewer than 16 images, or a `transform`
    /// (a quantizer's transform may calibrate lazily on its first batch).
    public func predict(_ images: Tensor, options: InferenceOptions = .standard) -> Tensor {
        let batch = images.shape.first ?? 0
        let slices = min(Parallel.workers, batch / 8)
        guard slices > 1, transform == nil else { return self(Variable(images), .inference(options)).value }
        SparseInference.prepare(self, options: options)  // the cache is written here, only read by the threads

        return Parallel.mapBatchSlices(images, slices) { self(Variable($0), .inference(options)).value }
    }
}
