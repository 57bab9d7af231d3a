import NIOCore
import ROMAStorage

/// The receiving end of `spushv <hash> <vn>` (R5.8): after `READY` the connection carries
/// records `u32 vn, u32 physical, u32 logical, u32 expire, u32 klen, key, u32 vlen, value`
/// (big-endian) until 20 zero bytes; each is stored under R2.9 (`HashStorage.streamPut`) as it
/// arrives; the end is answered `STORED` (`CANCELED` when spushv protection was switched on
/// meanwhile).
///
/// `@unchecked Sendable`: owned by its connection's handler, which hands it to one background
/// job at a time (the records received so far are stored off the event loop) and does not touch
/// it until that job has completed; so only one thread uses it at any moment.
final class VnodeStreamReceiver: @unchecked Sendable {
    let storage: HashStorage
    let vnode: UInt64
    let maxKey: Int
    let maxValue: Int
    /// Keys and values longer than these are logged through `warn` (`set_spushv_klength_warn`,
    /// `set_spushv_vlength_warn`), as ROMA's receiver does.
    let warnKey: Int
    let warnValue: Int
    let warn: @Sendable (String) -> Void
    let isProtected: @Sendable () -> Bool
    private(set) var applied = 0
    private(set) var refused = 0

    struct StreamError: Error, CustomStringConvertible {
        let description: String
    }

    init(storage: HashStorage, vnode: UInt64, maxKey: Int, maxValue: Int, warnKey: Int = .max, warnValue: Int = .max,
         warn: @escaping @Sendable (String) -> Void = { _ in }, isProtected: @escaping @Sendable () -> Bool) {
        self.storage = storage
        self.vnode = vnode
        self.maxKey = maxKey
        self.maxValue = maxValue
        self.warnKey = warnKey
        self.warnValue = warnValue
        self.warn = warn
        self.isProtected = isProtected
    }

    /// Set by `consume` when it stopped at `limit` records with more complete ones buffered.
    private(set) var more = false

    /// Applies up to `limit` complete records in `buffer` (a vnode stream shares its event loop
    /// with client connections: they get their turn between slices); the final reply line once
    /// the terminator came, nil otherwise. Throws on a record that cannot be valid.
    func consume(_ buffer: inout ByteBuffer, limit: Int = 256) throws -> String? {
        more = false
        var n = 0
        while buffer.readableBytes >= 20 {
            if n == limit {
                more = true
                return nil
            }
            n += 1
            let base = buffer.readerIndex
            let vn = buffer.getInteger(at: base, as: UInt32.self)!
            let physical = buffer.getInteger(at: base + 4, as: UInt32.self)!
            let logical = buffer.getInteger(at: base + 8, as: UInt32.self)!
            let expire = buffer.getInteger(at: base + 12, as: UInt32.self)!
            let klen = Int(buffer.getInteger(at: base + 16, as: UInt32.self)!)
            if klen == 0 {
                guard vn == 0 && physical == 0 && logical == 0 && expire == 0 else {
                    throw StreamError(description: "spushv record with an empty key")
                }
                buffer.moveReaderIndex(forwardBy: 20)
                return isProtected() ? "CANCELED" : "STORED"
            }
            guard klen <= maxKey else { throw StreamError(description: "spushv key of \(klen) bytes") }
            guard buffer.readableBytes >= 24 + klen else { return nil }
            let vlen = Int(buffer.getInteger(at: base + 20 + klen, as: UInt32.self)!)
            guard vlen <= maxValue else { throw StreamError(description: "spushv value of \(vlen) bytes") }
            guard buffer.readableBytes >= 24 + klen + vlen else { return nil }
            let stored = try buffer.withUnsafeReadableBytes { p in
                let key = UnsafeRawBufferPointer(rebasing: p[20..<(20 + klen)])
                let value = UnsafeRawBufferPointer(rebasing: p[(24 + klen)..<(24 + klen + vlen)])
                if vlen != 0 && (klen > warnKey || vlen > warnValue) {
                    let name = String(decoding: key.prefix(256), as: UTF8.self)
                    if klen > warnKey { warn("spushv: too long key: key = \(name) (\(klen) bytes) in vnode \(vnode)") }
                    if vlen > warnValue { warn("spushv: too long value: key = \(name) vlen = \(vlen) in vnode \(vnode)") }
                }
                return try storage.streamPut(vn: vn, key: key, physical: physical, logical: logical, expire: expire, value: value)
            }
            if stored { applied += 1 } else { refused += 1 }
            buffer.moveReaderIndex(forwardBy: 24 + klen + vlen)
            storage.stepAside(vn: vn, record: n)
        }
        return nil
    }
}
