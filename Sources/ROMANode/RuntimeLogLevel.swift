import Logging
import Synchronization

/// The process's log level, which `set_log_level` changes while the node runs (as ROMA's does).
/// Every `Logger` reads it through `RuntimeLevelLogHandler`, so one store applies to all of them.
public enum RuntimeLogLevel {
    private static let raw = Atomic<UInt8>(2)  // .info

    private static let levels: [Logger.Level] = Logger.Level.allCases

    /// The current level.
    public static var level: Logger.Level {
        let i = Int(raw.load(ordering: .relaxed))
        return i < levels.count ? levels[i] : .info
    }

    public static func set(_ level: Logger.Level) {
        raw.store(UInt8(levels.firstIndex(of: level) ?? 2), ordering: .relaxed)
    }

    /// ROMA's names (`debug info warn error`, what `set_log_level` takes and `stat` shows) and
    /// swift-log's (`trace notice warning critical`).
    public static func parse(_ name: String) -> Logger.Level? {
        let n = name.lowercased()
        if n == "warn" { return .warning }
        return Logger.Level(rawValue: n)
    }

    /// The current level as `stat log_level` shows it: ROMA's spelling where ROMA has one.
    public static var name: String {
        let l = level
        return l == .warning ? "warn" : l.rawValue
    }
}

/// A stderr log handler whose level is `RuntimeLogLevel`'s; a daemon's stderr is its log file,
/// rotated by `LogRotation`.
public struct RuntimeLevelLogHandler: LogHandler {
    private var inner: StreamLogHandler

    public init(label: String) {
        inner = StreamLogHandler.standardError(label: label)
        inner.logLevel = .trace  // filtering happens in `logLevel` below
    }

    public var logLevel: Logger.Level {
        get { RuntimeLogLevel.level }
        set { RuntimeLogLevel.set(newValue) }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        LogRotation.beforeWrite()
        inner.log(event: event)
    }
}
