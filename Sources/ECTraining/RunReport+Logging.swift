import ECReport
import Foundation

extension RunReport {
    /// `easycompress report DIR`, and the chief at the end of a run: writes the report and logs
    /// where it is.
    ///
    /// A report that cannot be written is a warning, not a failure: the run it describes has
    /// finished and its results are saved.
    @discardableResult
    public static func write(saveDir: URL, log: Logger) -> URL? {
        do {
            let url = try RunReport(saveDir: saveDir).write()
            log.info("report: \(url.path)")
            return url
        } catch {
            log.warning("no report.html: \(error)")
            return nil
        }
    }
}
