import XCTest

/// The error of type `E` that `body` throws; fails the test (and returns nil) when `body`
/// succeeds or throws another type.
public func thrownError<E: Error, T>(_ type: E.Type, _ body: () throws -> T,
                                     file: StaticString = #filePath, line: UInt = #line) -> E? {
    do {
        _ = try body()
        XCTFail("expected a \(E.self), nothing was thrown", file: file, line: line)
    } catch let error as E {
        return error
    } catch {
        XCTFail("expected a \(E.self), got \(error)", file: file, line: line)
    }
    return nil
}
