/// The keys of one division grouped by vnode, kept while vnode copies (R5.8) read from it.
///
/// TokyoCabinet keys carry no vnode, so without an index every vnode copy would read its whole
/// division to find its keys: a join that moves 341 vnodes of a ten-division store reads each
/// division 34 times. The index is built by one pass over the division and kept current by the
/// division's write path (`Division.write` records every key it writes from the moment the
/// index exists), so a later copy of any vnode of the division gets its keys at once.
///
/// A key listed here may since have been removed (`out`, clean-up): its reader finds no record
/// and skips it. A deletion writes a delete mark, which is a record like any other.
///
/// Its memory is bounded: past `budget` bytes (its share of `VNODE_INDEX_MEMORY`) it is dropped
/// and the division's copies go back to reading the division (see `HashStorage.keys(ofVnode:)`).
///
/// Not thread-safe: every access happens with the division's lock held.
final class VnodeKeyIndex {
    /// Keys found by the building pass, per vnode, each as a 4-byte little-endian length and
    /// its bytes (one allocation per vnode, not one per key).
    private var scanned: [UInt32: [UInt8]] = [:]
    /// Keys written since the index was installed, per vnode.
    private var written: [UInt32: Set<[UInt8]>] = [:]
    /// False while the building pass runs.
    var complete = false
    private(set) var keyCount = 0
    /// Bytes held, counted as key bytes plus 4 per scanned key and 64 per written one (a set
    /// entry and its array).
    private(set) var bytes = 0
    let budget: Int

    init(budget: Int) { self.budget = budget }

    var overBudget: Bool { bytes > budget }

    func addScanned(vnode: UInt32, key: UnsafeRawBufferPointer) {
        Self.appendKey(key, to: &scanned[vnode, default: []])
        keyCount += 1
        bytes += 4 + key.count
    }

    func addWritten(vnode: UInt32, key: UnsafeRawBufferPointer) {
        if written[vnode, default: []].insert(Array(key)).inserted {
            keyCount += 1
            bytes += 64 + key.count
        }
    }

    private static func appendKey(_ key: UnsafeRawBufferPointer, to packed: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(key.count).littleEndian) { packed.append(contentsOf: $0) }
        packed.append(contentsOf: key)
    }

    /// Every key of `vnode` listed, each once.
    func keys(of vnode: UInt32) -> [[UInt8]] {
        let w = written[vnode] ?? []
        var out: [[UInt8]] = []
        if let packed = scanned[vnode] {
            packed.withUnsafeBytes { p in
                var i = 0
                while i + 4 <= p.count {
                    let n = Int(p[i]) | Int(p[i + 1]) << 8 | Int(p[i + 2]) << 16 | Int(p[i + 3]) << 24
                    let key = Array(p[(i + 4)..<(i + 4 + n)])
                    if !w.contains(key) { out.append(key) }
                    i += 4 + n
                }
            }
        }
        out.append(contentsOf: w)
        return out
    }
}
