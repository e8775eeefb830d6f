#if _endian(big)
#error("ECCheckpoint copies element bytes verbatim and assumes a little-endian host, as safetensors files are")
#endif

/// A Swift scalar type whose in-memory representation is a safetensors dtype, so an array of
/// it converts to and from an entry's bytes by a plain copy (the host is little-endian).
public protocol SafeTensorsScalar: BitwiseCopyable {
    /// The dtype whose elements have this type's layout.
    static var safeTensorsDType: SafeTensorsDType { get }
}

extension UInt8: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .u8 } }
extension Int8: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .i8 } }
extension Int16: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .i16 } }
extension UInt16: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .u16 } }
extension Int32: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .i32 } }
extension UInt32: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .u32 } }
extension Float: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .f32 } }
extension Double: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .f64 } }
extension Int64: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .i64 } }
extension UInt64: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .u64 } }
