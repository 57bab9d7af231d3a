/// One partition of a storage: its main DB, the cache DB while a snapshot runs, and the
/// safecopy state (spec R6.1, R7.1–R7.4).
///
/// Every access to the state and to the engines happens with `lock` held, so a write racing a
/// state change lands either in main before the flush or in the cache, and a read racing the
/// end of cache cleaning never sees a closed cache (§11 item 5). The only work done outside the
/// lock is the flush's `sync()` of the main DB, which no writer touches in that state.
///
/// `@unchecked Sendable`: all mutable fields are guarded by `lock` as described above.
final class Division: @unchecked Sendable {
    let index: Int
    let lock = PthreadMutex()
    var state: SafecopyState = .normal
    var main: StorageEngine
    var cache: StorageEngine?
    /// Reused buffer for composing `header ‖ value` before a put (guarded by `lock`).
    var scratch: [UInt8] = []
    /// Keys by vnode while vnode copies read this division (guarded by `lock`); every write
    /// records its key in it while it exists.
    var vnodeIndex: VnodeKeyIndex?
    /// Held while the vnode index is built, so two copies never build it twice.
    let indexBuild = PthreadMutex()
    /// A copy read keys of this division since the last sweep (guarded by `lock`).
    var indexUsed = false
    /// The index outgrew its budget since the last idle sweep: copies read the division instead
    /// of building it again (guarded by `lock`).
    var indexRefused = false

    init(index: Int, main: StorageEngine) {
        self.index = index
        self.main = main
    }

    /// A record as read under the lock: header plus the value bytes (valid in the closure only).
    typealias Found = (header: RecordHeader, value: UnsafeRawBufferPointer)

    /// Reads `key` per the state rules of R7.3 and passes the newest record (or nil) to `body`.
    /// Must be called with `lock` held.
    func read<R>(_ key: UnsafeRawBufferPointer, _ body: (Found?) throws -> R) throws -> R {
        switch state {
        case .normal:
            return try Division.lookup(main, key, body)
        case .safecopyFlushing, .safecopyFlushed:
            if let c = cache {
                // Cache first, then main.
                var result: R?
                try Division.lookup(c, key) { found in
                    if let found { result = try body(found) }
                }
                if let result { return result }
            }
            return try Division.lookup(main, key, body)
        case .cachecleaning:
            guard let c = cache else { return try Division.lookup(main, key, body) }
            return try Division.lookup(main, key) { m in
                try Division.lookup(c, key) { cr in
                    switch (m, cr) {
                    case (nil, nil): return try body(nil)
                    case (let m?, nil): return try body(m)
                    case (nil, let cr?): return try body(cr)
                    case (let m?, let cr?):
                        return try body(LogicalClock.compare(m.header.logical, cr.header.logical) > 0 ? m : cr)
                    }
                }
            }
        }
    }

    private static func lookup<R>(_ e: StorageEngine, _ key: UnsafeRawBufferPointer, _ body: (Found?) throws -> R) throws -> R {
        try e.withValue(forKey: key) { raw in
            guard let raw, let h = RecordHeader(decoding: raw) else { return try body(nil) }
            return try body((h, UnsafeRawBufferPointer(rebasing: raw[RecordHeader.size...])))
        }
    }

    /// The engine client writes go to in the current state (R7.4). Must hold `lock`.
    var writeTarget: StorageEngine { state.writesToCache ? (cache ?? main) : main }

    /// Writes `header ‖ a ‖ b` under `key` to the state's write target. Must hold `lock`.
    func write(_ key: UnsafeRawBufferPointer, _ header: RecordHeader,
               _ a: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
               _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) throws {
        Division.compose(into: &scratch, header, a, b)
        if let ix = vnodeIndex {
            ix.addWritten(vnode: header.vnode, key: key)
            if ix.overBudget {
                vnodeIndex = nil
                indexRefused = true
            }
        }
        let target = writeTarget
        try scratch.withUnsafeBytes { try target.put(key: key, value: $0) }
    }

    static func compose(into buf: inout [UInt8], _ header: RecordHeader, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) {
        let total = RecordHeader.size + a.count + b.count
        if buf.count != total {
            if buf.capacity >= total {
                buf.removeAll(keepingCapacity: true)
                buf.append(contentsOf: repeatElement(0, count: total))
            } else {
                buf = [UInt8](repeating: 0, count: total)
            }
        }
        buf.withUnsafeMutableBytes { out in
            header.encode(into: out)
            if a.count > 0 { UnsafeMutableRawBufferPointer(rebasing: out[RecordHeader.size..<(RecordHeader.size + a.count)]).copyMemory(from: a) }
            if b.count > 0 { UnsafeMutableRawBufferPointer(rebasing: out[(RecordHeader.size + a.count)...]).copyMemory(from: b) }
        }
    }
}
