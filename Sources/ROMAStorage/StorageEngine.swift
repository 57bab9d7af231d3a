/// Errors raised by a storage engine. The node answers them with
/// `SERVER_ERROR <message> in storage engine` (R3.5).
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One key-value database file (or in-memory map): the unit a division's main or cache DB is made of.
///
/// Implementations are used under their division's lock, except `sync()`, which the flush
/// process may call while readers use the engine; engines must tolerate that.
public protocol StorageEngine: AnyObject, Sendable {
    /// The file behind the engine, if any.
    var path: String? { get }
    /// Calls `body` with the stored bytes for `key`, or with nil when absent.
    func withValue<R>(forKey key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R
    /// Stores `value` under `key`, replacing any previous value.
    func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws
    /// Physically removes `key`; returns false when it was absent.
    @discardableResult func remove(key: UnsafeRawBufferPointer) throws -> Bool
    /// Up to `limit` keys, in the engine's iteration order.
    func keys(limit: Int) throws -> [[UInt8]]
    /// Visits every record until `body` returns false.
    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws
    /// Visits up to `limit` records after the record of key `after` (from the start when nil), so
    /// that a long pass can release its lock between calls; returns the last key visited, nil
    /// when the pass is complete. Records written between calls may be missed or seen twice.
    func forEach(after: [UInt8]?, limit: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws -> [UInt8]?
    /// Writes buffered data and fsyncs (TC `sync`).
    func sync() throws
    /// Writes buffered data and headers into the file (page cache) without forcing them to disk:
    /// enough for a copy read through the page cache to be a consistent database file.
    func flushToFile() throws
    /// Closes the engine; further calls fail.
    func close() throws
    /// Number of records.
    var recordCount: UInt64 { get }
    /// File size in bytes (0 for memory).
    var fileSize: UInt64 { get }
}

extension StorageEngine {
    /// Engines without a separate in-file step fall back to a full sync.
    public func flushToFile() throws { try sync() }

    /// Convenience copy of a stored value.
    public func value(forKey key: [UInt8]) throws -> [UInt8]? {
        try key.withUnsafeBytes { k in try withValue(forKey: k) { $0.map { Array($0) } } }
    }
    /// Convenience put for byte arrays.
    public func put(key: [UInt8], value: [UInt8]) throws {
        try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try put(key: k, value: v) } }
    }
}

/// TokyoCabinet tuning options in ROMA's `STORAGE_OPTION` syntax (R6.3):
/// `#`-separated `name=value` items with names `bnum apow fpow opts xmsiz rcnum dfunit`.
public struct TCOptions: Equatable, Sendable {
    public var bnum: Int64 = -1
    public var apow: Int8 = -1
    public var fpow: Int8 = -1
    /// Letters: `l` large (64-bit buckets), `d` deflate, `b` bzip2, `t` TCBS.
    public var opts: String = ""
    public var xmsiz: Int64?
    public var rcnum: Int32?
    public var dfunit: Int32?
    /// The option string as given (shown by `stat` as `storage.option`).
    public var source: String = ""

    public init() {}

    /// Parses ROMA's option string; the errors are ROMA's messages.
    public init(parsing text: String) throws {
        source = text
        for item in text.split(separator: "#", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else { throw StorageError("Option string parse error.") }
            let name = String(parts[0]), value = String(parts[1])
            func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
                guard let v = T(value) else { throw StorageError("Option string parse error.") }
                return v
            }
            switch name {
            case "bnum": bnum = try int(Int64.self)
            case "apow": apow = try int(Int8.self)
            case "fpow": fpow = try int(Int8.self)
            case "opts":
                guard value.allSatisfy({ "ldbt".contains($0) }) else { throw StorageError("Option string parse error.") }
                opts = value
            case "xmsiz": xmsiz = try int(Int64.self)
            case "rcnum": rcnum = try int(Int32.self)
            case "dfunit": dfunit = try int(Int32.self)
            default: throw StorageError("Syntax error, unexpected option \(name)")
            }
        }
    }
}

/// Which engine backs a storage.
public enum EngineKind: Equatable, Sendable {
    /// TokyoCabinet hash database files `<i>.tc` (ROMA's `TCStorage`).
    case tokyoCabinet(TCOptions)
    /// In-process maps, nothing on disk (ROMA's `RubyHashStorage`).
    case memory

    /// The class name `stat` reports as `storage.st_class`.
    public var className: String {
        switch self {
        case .tokyoCabinet: return "TCStorage"
        case .memory: return "RubyHashStorage"
        }
    }

    /// File extension of division files.
    public var fileExtension: String { "tc" }
}

extension StorageEngine {
    /// Engines without a resumable iterator (the memory engines) visit everything in one call.
    public func forEach(after: [UInt8]?, limit: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws -> [UInt8]? {
        if after != nil { return nil }
        try forEach { k, v in
            try body(k, v)
            return true
        }
        return nil
    }
}
