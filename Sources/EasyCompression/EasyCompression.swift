// The umbrella module: `import EasyCompression` gives the whole public API.
@_exported import ECCheckpoint
@_exported import ECCollective
@_exported import ECCompression
@_exported import ECExport
@_exported import ECNN
@_exported import ECOptim
@_exported import ECReport
@_exported import ECTensor
@_exported import ECTraining
