import CTokyoCabinet

#if canImport(Glibc)
import Glibc
#endif

/// A TokyoCabinet hash database (`TCHDB`) file.
///
/// `@unchecked Sendable`: the handle has no TokyoCabinet mutex (`tchdbsetmutex` would make the
/// flush's `sync` hold a write lock that stalls every read of the division for the whole fsync).
/// Instead the storage serialises all calls with the division lock, with one exception: the
/// flush process calls `sync()` outside the lock while the division is `safecopy_flushing`, when
/// no writer touches this DB and readers only read; `tchdbsync` then only writes the header copy
/// and msyncs/fsyncs, which does not disturb concurrent lookups. `closed` is only changed by
/// `close()`, under the division lock.
public final class TCEngine: StorageEngine, @unchecked Sendable {
    public let path: String?
    private let hdb: UnsafeMutablePointer<TCHDB>
    private var closed = false

    /// Opens (creating if needed) the hash DB at `path`, tuned with `options`.
    /// Opened like ROMA (R6.3): writer, create, no TC file locking — the storage's `lock` file
    /// guards the directory, and `tchmgr` can inspect live files.
    public init(path: String, options: TCOptions) throws {
        guard let h = tchdbnew() else { throw StorageError("tchdbnew failed") }
        hdb = h
        self.path = path
        var o: UInt8 = 0
        for c in options.opts {
            switch c {
            case "l": o |= UInt8(HDBTLARGE)
            case "d": o |= UInt8(HDBTDEFLATE)
            case "b": o |= UInt8(HDBTBZIP)
            case "t": o |= UInt8(HDBTTCBS)
            default: break
            }
        }
        tchdbtune(hdb, options.bnum, options.apow, options.fpow, o)
        if let x = options.xmsiz { tchdbsetxmsiz(hdb, x) }
        if let r = options.rcnum { tchdbsetcache(hdb, r) }
        if let d = options.dfunit { tchdbsetdfunit(hdb, d) }
        let mode = Int32(HDBOWRITER | HDBOCREAT | HDBONOLCK)
        if !tchdbopen(hdb, path, mode) {
            // Fully initialised already, so deinit runs and frees the handle (once).
            closed = true
            throw StorageError("\(path): \(String(cString: tchdberrmsg(tchdbecode(hdb))))")
        }
    }

    deinit {
        if !closed { tchdbclose(hdb) }
        tchdbdel(hdb)
    }

    private func failure(_ what: String) -> StorageError {
        StorageError("\(what): \(String(cString: tchdberrmsg(tchdbecode(hdb))))")
    }

    public func withValue<R>(forKey key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        var size: Int32 = 0
        guard let p = tchdbget(hdb, key.baseAddress, Int32(key.count), &size) else {
            let ecode = tchdbecode(hdb)
            if ecode != Int32(TCENOREC) && ecode != Int32(TCESUCCESS) { throw failure("get") }
            return try body(nil)
        }
        defer { tcfree(p) }
        return try body(UnsafeRawBufferPointer(start: p, count: Int(size)))
    }

    public func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
        // TC wants non-null pointers even for empty buffers.
        var dummy: UInt8 = 0
        let ok = withUnsafeMutablePointer(to: &dummy) { d in
            tchdbput(hdb, key.baseAddress ?? UnsafeRawPointer(d), Int32(key.count),
                     value.baseAddress ?? UnsafeRawPointer(d), Int32(value.count))
        }
        if !ok { throw failure("put") }
    }

    @discardableResult
    public func remove(key: UnsafeRawBufferPointer) throws -> Bool {
        if tchdbout(hdb, key.baseAddress, Int32(key.count)) { return true }
        if tchdbecode(hdb) == Int32(TCENOREC) { return false }
        throw failure("out")
    }

    public func keys(limit: Int) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        guard tchdbiterinit(hdb) else { throw failure("iterinit") }
        while out.count < limit {
            var size: Int32 = 0
            guard let p = tchdbiternext(hdb, &size) else { break }
            out.append(Array(UnsafeRawBufferPointer(start: p, count: Int(size))))
            tcfree(p)
        }
        return out
    }

    public func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        guard tchdbiterinit(hdb) else { throw failure("iterinit") }
        try TCIteration.records(hdb, fail: failure, body)
    }

    /// Resumable pass (TC's `iterinit2` starts at a key, so another pass over the same database
    /// in between does not disturb this one). When the cursor's record was removed meanwhile the
    /// pass starts again from the beginning once (records are then seen twice, never missed).
    public func forEach(after: [UInt8]?, limit: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws -> [UInt8]? {
        var skipFirst = false
        if let after {
            let ok = after.withUnsafeBytes { tchdbiterinit2(hdb, $0.baseAddress, Int32($0.count)) }
            if ok { skipFirst = true } else if !tchdbiterinit(hdb) { throw failure("iterinit") }
        } else if !tchdbiterinit(hdb) {
            throw failure("iterinit")
        }
        guard limit > 0 else { return nil }
        var last: [UInt8]?
        var n = 0
        let ranOut = try TCIteration.records(hdb, fail: failure) { key, value in
            if skipFirst {
                skipFirst = false
                return true
            }
            try body(key, value)
            last = Array(key)
            n += 1
            return n < limit
        }
        return ranOut ? nil : last
    }

    public func sync() throws {
        if !tchdbsync(hdb) { throw failure("sync") }
    }

    public func flushToFile() throws {
        if !tchdbmemsync(hdb, false) { throw failure("memsync") }
    }

    public func close() throws {
        guard !closed else { return }
        closed = true
        if !tchdbclose(hdb) { throw failure("close") }
    }

    public var recordCount: UInt64 { tchdbrnum(hdb) }
    public var fileSize: UInt64 { tchdbfsiz(hdb) }
}

/// Passes over a TokyoCabinet hash database read each record where the iterator stands, key and
/// value together (`tchdbiternext3`), in file order: no hash lookup of the key per record, as
/// `tchdbiternext` followed by `tchdbget` would make (a random read of the bucket array and of
/// the record chain per record; in a join, most of the copies' CPU went there).
enum TCIteration {
    /// Calls `body` with each record from the iterator's position on until it returns false.
    /// True when the records ran out; an iteration error is thrown as `fail("iternext")`.
    @discardableResult
    static func records(_ hdb: UnsafeMutablePointer<TCHDB>, fail: (String) -> StorageError,
                        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws -> Bool {
        let kx = tcxstrnew()!, vx = tcxstrnew()!
        defer { tcxstrdel(kx); tcxstrdel(vx) }
        while tchdbiternext3(hdb, kx, vx) {
            let key = UnsafeRawBufferPointer(start: tcxstrptr(kx), count: Int(tcxstrsize(kx)))
            let value = UnsafeRawBufferPointer(start: tcxstrptr(vx), count: Int(tcxstrsize(vx)))
            if try !body(key, value) { return false }
        }
        let ecode = tchdbecode(hdb)
        if ecode != Int32(TCENOREC) && ecode != Int32(TCESUCCESS) { throw fail("iternext") }
        return true
    }
}
