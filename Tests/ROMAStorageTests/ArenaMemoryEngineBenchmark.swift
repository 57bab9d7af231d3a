#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import ROMAStorage

/// The memory engine before the arena one (a Swift Dictionary, one heap object per key and per
/// value), kept here as the benchmark's baseline.
final class DictionaryMemoryEngine: StorageEngine, @unchecked Sendable {
    private var map: [[UInt8]: [UInt8]] = [:]
    init() {}
    var path: String? { nil }
    func withValue<R>(forKey key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        guard let v = map[Array(key)] else { return try body(nil) }
        return try v.withUnsafeBytes { try body($0) }
    }
    func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws { map[Array(key)] = Array(value) }
    @discardableResult func remove(key: UnsafeRawBufferPointer) throws -> Bool { map.removeValue(forKey: Array(key)) != nil }
    func keys(limit: Int) throws -> [[UInt8]] { Array(map.keys.prefix(limit)) }
    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        for (k, v) in map {
            if try !k.withUnsafeBytes({ kb in try v.withUnsafeBytes { vb in try body(kb, vb) } }) { break }
        }
    }
    func sync() throws {}
    func close() throws { map.removeAll() }
    var recordCount: UInt64 { UInt64(map.count) }
    var fileSize: UInt64 { 0 }
}

private let benchEnabled: Bool = getenv("ROMA_ENGINE_BENCH").map { String(cString: $0) == "1" } ?? false

/// Micro-benchmark of the memory engines, skipped unless `ROMA_ENGINE_BENCH=1`. Build it
/// optimized, one engine per process for clean RSS numbers:
///
///     ROMA_ENGINE_BENCH=1 swift test -c release -Xswiftc -enable-testing \
///         --filter 'ArenaMemoryEngineBenchmark/arenaEngine'    (or .../dictionaryEngine)
///
/// 1M records of 10-byte keys and 116-byte values (16-byte ROMA header + 100 bytes), used through
/// `any StorageEngine` as the divisions do. Times are thread CPU ns per operation; the random-order
/// gets are bound by memory latency (the key, the index entry and the record are three dependent
/// cache misses).
@Suite("ArenaMemoryEngineBenchmark", .serialized, .enabled(if: benchEnabled))
struct ArenaMemoryEngineBenchmark {
    static let n = 1_000_000
    static let keyLength = 10
    static let valueLength = 116

    @Test func arenaEngine() throws { try run("arena (MemoryEngine)", ArenaMemoryEngine()) }

    @Test func dictionaryEngine() throws { try run("dictionary (old)", DictionaryMemoryEngine()) }

    /// This thread's CPU time: steadier than wall time on a shared machine (the test body is
    /// synchronous, so it stays on one thread).
    private func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Resident set size from /proc/self/statm (0 where there is none).
    private func rss() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 256)
        let got = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 255) }
        guard got > 0 else { return 0 }
        // "size resident shared ...", in pages.
        let fields = buf[0..<got].split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let resident = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
        return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    private func run(_ name: String, _ engine: any StorageEngine) throws {
        #if DEBUG
        print("[bench] warning: debug build; use -c release -Xswiftc -enable-testing for meaningful numbers")
        #endif
        let n = Self.n, kl = Self.keyLength, vl = Self.valueLength
        // Keys "k000000000".."k000999999" in one flat buffer; lookups in a shuffled order.
        let keys = UnsafeMutableRawBufferPointer.allocate(byteCount: n * kl, alignment: 16)
        defer { keys.deallocate() }
        for i in 0..<n {
            var x = i
            keys[i * kl] = UInt8(ascii: "k")
            for j in stride(from: kl - 1, through: 1, by: -1) { keys[i * kl + j] = UInt8(48 + x % 10); x /= 10 }
        }
        func key(_ i: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: keys[(i * kl)..<(i * kl + kl)]) }
        var rng = ArenaTestRNG(seed: 1)
        var order = Array(0..<n)
        order.shuffle(using: &rng)
        var value = rng.bytes(vl)

        let rss0 = rss()
        var t = now()
        try value.withUnsafeBytes { v in for i in 0..<n { try engine.put(key: key(i), value: v) } }
        let putNs = Double(now() - t) / Double(n)
        let rss1 = rss()
        let arenaBytes = (engine as? ArenaMemoryEngine)?.allocatedBytes

        var sum = 0
        t = now()
        for i in order { sum &+= try engine.withValue(forKey: key(i)) { $0.map { Int($0[5]) } ?? -1 } }
        let getNs = Double(now() - t) / Double(n)

        t = now()
        for i in 0..<n { sum &+= try engine.withValue(forKey: key(i)) { $0.map { Int($0[5]) } ?? -1 } }
        let getSeqNs = Double(now() - t) / Double(n)

        var missKey = [UInt8](repeating: UInt8(ascii: "x"), count: kl)
        t = now()
        for i in order.prefix(n / 4) {
            missKey[1] = UInt8(truncatingIfNeeded: i); missKey[2] = UInt8(truncatingIfNeeded: i >> 8); missKey[3] = UInt8(truncatingIfNeeded: i >> 16)
            sum &+= try missKey.withUnsafeBytes { k in try engine.withValue(forKey: k) { $0 == nil ? 0 : 1 } }
        }
        let missNs = Double(now() - t) / Double(n / 4)

        value[0] = 1
        t = now()
        try value.withUnsafeBytes { v in for i in order { try engine.put(key: key(i), value: v) } }
        let replaceNs = Double(now() - t) / Double(n)

        t = now()
        for i in order { try engine.remove(key: key(i)) }
        let removeNs = Double(now() - t) / Double(n)
        #expect(engine.recordCount == 0)
        #expect(sum != Int.min)  // keeps the reads alive

        print("""
            [bench] \(name): \(n) records, \(kl)-byte keys, \(vl)-byte values
            [bench]   put (insert)     \(String(format: "%7.1f", putNs)) ns/op
            [bench]   get (random)     \(String(format: "%7.1f", getNs)) ns/op
            [bench]   get (insert order)\(String(format: "%6.1f", getSeqNs)) ns/op
            [bench]   get (miss)       \(String(format: "%7.1f", missNs)) ns/op
            [bench]   put (replace)    \(String(format: "%7.1f", replaceNs)) ns/op
            [bench]   remove           \(String(format: "%7.1f", removeNs)) ns/op
            [bench]   RSS growth       \(String(format: "%7.1f", Double(rss1 - rss0) / Double(n))) bytes/record
            """)
        if let arenaBytes, let arena = engine as? ArenaMemoryEngine {
            print("""
                [bench]   arena allocatedBytes \(String(format: "%7.1f", Double(arenaBytes) / Double(n))) bytes/record \
                (\(arena.slotSizes.first { $0 >= 8 + kl + vl }!)-byte slots + index); after removing all: \(arena.allocatedBytes) B
                """)
        }
    }
}

/// `String(format:)` without Foundation.
private extension String {
    init(format: String, _ x: Double) {
        var buf = [CChar](repeating: 0, count: 64)
        _ = withVaList([x]) { vsnprintf(&buf, 64, format, $0) }
        self = buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
