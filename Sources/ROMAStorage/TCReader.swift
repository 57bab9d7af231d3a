import CTokyoCabinet

#if canImport(Glibc)
import Glibc
#endif

/// Read-only access to a TokyoCabinet hash database file (a division file or a snapshot of one).
///
/// Opened with `HDBOREADER | HDBONOLCK`: it never writes, never creates, and takes no TC file
/// lock, so it can inspect a file a running node has open (as `tchmgr` does) and snapshot copies.
/// Opening fails for a file that is not a TC hash database (wrong magic, truncated header).
///
/// Not `Sendable`: one reader is used by one thread (the iterator lives in the TC handle).
public final class TCReader {
    public let path: String
    private let hdb: UnsafeMutablePointer<TCHDB>

    /// Opens `path` read-only.
    public init(path: String) throws {
        guard FileSystem.exists(path) else { throw StorageError("\(path): no such file") }
        guard let h = tchdbnew() else { throw StorageError("tchdbnew failed") }
        hdb = h
        self.path = path
        if !tchdbopen(hdb, path, Int32(HDBOREADER | HDBONOLCK)) {
            let msg = String(cString: tchdberrmsg(tchdbecode(hdb)))
            // No tchdbdel here: the object is fully initialised, so deinit runs and frees the handle.
            throw StorageError("\(path): cannot open as a TokyoCabinet hash database: \(msg)")
        }
    }

    deinit {
        tchdbclose(hdb)   // harmless (returns false) on a handle that never opened
        tchdbdel(hdb)
    }

    /// Number of records (from the file header).
    public var recordCount: UInt64 { tchdbrnum(hdb) }

    /// File size recorded in the header.
    public var fileSize: UInt64 { tchdbfsiz(hdb) }

    /// The stored bytes for `key`, nil when absent.
    public func value(forKey key: [UInt8]) throws -> [UInt8]? {
        var size: Int32 = 0
        let p = key.withUnsafeBytes { k in tchdbget(hdb, k.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32(k.count), &size) }
        guard let p else {
            let ecode = tchdbecode(hdb)
            if ecode != Int32(TCENOREC) && ecode != Int32(TCESUCCESS) {
                throw StorageError("\(path): get failed: \(String(cString: tchdberrmsg(ecode)))")
            }
            return nil
        }
        defer { tcfree(p) }
        return Array(UnsafeRawBufferPointer(start: p, count: Int(size)))
    }

    /// Visits every record (key, stored bytes) in file order until `body` returns false.
    public func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        guard tchdbiterinit(hdb) else {
            throw StorageError("\(path): iterinit failed: \(String(cString: tchdberrmsg(tchdbecode(hdb))))")
        }
        try TCIteration.records(hdb, fail: { _ in
            StorageError("\(path): iteration failed: \(String(cString: tchdberrmsg(tchdbecode(hdb))))")
        }, body)
    }

    /// Counts the records by iterating (checks that every record is readable).
    public func countByIterating() throws -> UInt64 {
        var n: UInt64 = 0
        try forEach { _, _ in n += 1; return true }
        return n
    }
}
