import Foundation
import Testing
@testable import ROMAStorage

/// A fixed "current time" for deterministic clocks (2023-11-14T22:13:20Z).
let T0: UInt32 = 1_700_000_000

/// The engines every storage-command test runs against.
enum EngineChoice: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, tc
    var testDescription: String { rawValue }
}

/// A unique scratch directory under /tmp, removed by `remove()`.
struct TempDir {
    let path: String

    init(_ tag: String = "t") {
        path = "/tmp/romastorage-unit-\(tag)-\(getpid())-\(UInt64.random(in: 0 ... .max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }

    func bytes(_ name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: file(name)).map { [UInt8]($0) }
    }

    func text(_ name: String) -> String? { bytes(name).map { String(decoding: $0, as: UTF8.self) } }

    func write(_ name: String, _ text: String) {
        _ = FileManager.default.createFile(atPath: file(name), contents: Data(text.utf8))
    }
}

/// Opens a storage whose division of vnode `vn` is `vn % divnum` (so tests pick divisions by vnode).
func openStorage(_ engine: EngineChoice, dir: TempDir?, divnum: Int = 4, options: TCOptions = TCOptions()) throws -> HashStorage {
    let n = UInt32(divnum)
    switch engine {
    case .memory:
        return try HashStorage(name: "roma", directory: nil, divnum: divnum, engine: .memory,
                               divisionOf: { Int($0 % n) })
    case .tc:
        return try HashStorage(name: "roma", directory: dir!.path, divnum: divnum, engine: .tokyoCabinet(options),
                               divisionOf: { Int($0 % n) })
    }
}

/// Runs `body` with a fresh storage (and its temp directory for TC); closes and cleans up afterwards.
func withStorage(_ engine: EngineChoice, divnum: Int = 4, _ body: (HashStorage, TempDir?) throws -> Void) throws {
    let dir: TempDir? = engine == .tc ? TempDir("st") : nil
    defer { dir?.remove() }
    let s = try openStorage(engine, dir: dir, divnum: divnum)
    defer { try? s.close() }
    try body(s, dir)
}

func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Test conveniences on top of the pointer-based storage API.
extension HashStorage {
    @discardableResult
    func put(_ key: String, _ value: String, vn: UInt32 = 0,
             expire: UInt32 = RecordHeader.noExpire, now: UInt32 = T0) throws -> StoreResult {
        try putBytes(.set, b(key), b(value), vn: vn, expire: expire, now: now)
    }

    @discardableResult
    func put(_ mode: StoreMode, _ key: String, _ value: String, vn: UInt32 = 0,
             expire: UInt32 = RecordHeader.noExpire, now: UInt32 = T0) throws -> StoreResult {
        try putBytes(mode, b(key), b(value), vn: vn, expire: expire, now: now)
    }

    @discardableResult
    func putBytes(_ key: [UInt8], _ value: [UInt8], vn: UInt32 = 0,
                  expire: UInt32 = RecordHeader.noExpire, now: UInt32 = T0) throws -> StoreResult {
        try putBytes(.set, key, value, vn: vn, expire: expire, now: now)
    }

    @discardableResult
    func putBytes(_ mode: StoreMode, _ key: [UInt8], _ value: [UInt8], vn: UInt32 = 0,
                  expire: UInt32 = RecordHeader.noExpire, now: UInt32 = T0) throws -> StoreResult {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in
                try store(mode, vn: vn, key: k, value: v, expire: expire, now: now)
            }
        }
    }

    /// The live value (nil when absent, tombstoned or expired).
    func fetch(_ key: String, vn: UInt32 = 0, now: UInt32 = T0) throws -> String? {
        try fetchBytes(b(key), vn: vn, now: now).map { String(decoding: $0, as: UTF8.self) }
    }

    func fetchBytes(_ key: [UInt8], vn: UInt32 = 0, now: UInt32 = T0) throws -> [UInt8]? {
        try key.withUnsafeBytes { k in try get(vn: vn, key: k, now: now) { _, v in Array(v) } }
    }

    /// The live record's header.
    func liveHeader(_ key: String, vn: UInt32 = 0, now: UInt32 = T0) throws -> RecordHeader? {
        try b(key).withUnsafeBytes { k in try get(vn: vn, key: k, now: now) { h, _ in h } }
    }

    /// Whatever record exists (tombstones, expired records included).
    func header(_ key: String, vn: UInt32 = 0) throws -> RecordHeader? {
        try b(key).withUnsafeBytes { k in try rawHeader(vn: vn, key: k) }
    }

    func casPut(_ key: String, _ value: String, unique: UInt32, vn: UInt32 = 0,
                expire: UInt32 = RecordHeader.noExpire, now: UInt32 = T0) throws -> StoreResult {
        try b(key).withUnsafeBytes { k in
            try b(value).withUnsafeBytes { v in
                try cas(vn: vn, key: k, value: v, expire: expire, unique: unique, now: now)
            }
        }
    }

    func remove(_ key: String, vn: UInt32 = 0, now: UInt32 = T0) throws -> Bool {
        try b(key).withUnsafeBytes { k in try delete(vn: vn, key: k, now: now) }
    }

    func counter(_ key: String, _ delta: String, decrement: Bool = false, vn: UInt32 = 0, now: UInt32 = T0) throws -> UInt64? {
        try b(key).withUnsafeBytes { k in
            try incr(vn: vn, key: k, delta: LenientInteger(parsing: b(delta)), decrement: decrement, now: now)
        }
    }

    func touch(_ key: String, expire: UInt32, vn: UInt32 = 0, now: UInt32 = T0) throws -> Bool {
        try b(key).withUnsafeBytes { k in try setExpire(vn: vn, key: k, expire: expire, now: now) }
    }

    /// Division index of vnode `vn` as the tests open storages (`vn % divnum`).
    func div(_ vn: UInt32) -> Division { divisions[Int(vn % UInt32(divnum))] }

    /// The raw bytes stored in the MAIN engine of `vn`'s division (bypassing the state machine).
    func mainRaw(_ key: String, vn: UInt32 = 0) throws -> [UInt8]? {
        let d = div(vn)
        return try d.lock.withLock { try d.main.value(forKey: b(key)) }
    }

    /// The raw bytes stored in the CACHE engine of `vn`'s division, nil if absent or no cache.
    func cacheRaw(_ key: String, vn: UInt32 = 0) throws -> [UInt8]? {
        let d = div(vn)
        return try d.lock.withLock { try d.cache?.value(forKey: b(key)) }
    }

    /// Header of the record in the main engine.
    func mainHeader(_ key: String, vn: UInt32 = 0) throws -> RecordHeader? {
        try mainRaw(key, vn: vn).flatMap { raw in raw.withUnsafeBytes { RecordHeader(decoding: $0) } }
    }

    /// Header of the record in the cache engine.
    func cacheHeader(_ key: String, vn: UInt32 = 0) throws -> RecordHeader? {
        try cacheRaw(key, vn: vn).flatMap { raw in raw.withUnsafeBytes { RecordHeader(decoding: $0) } }
    }

    /// Writes a raw record straight into the MAIN engine of `vn`'s division (test injection, like
    /// a record received earlier by replication).
    func injectMain(_ key: String, _ header: RecordHeader, _ value: String = "", vn: UInt32 = 0) throws {
        let d = div(vn)
        try d.lock.withLock { try d.main.put(key: b(key), value: header.bytes + (header.isTombstone ? [] : b(value))) }
    }

    /// Writes a raw record straight into the CACHE engine of `vn`'s division.
    func injectCache(_ key: String, _ header: RecordHeader, _ value: String = "", vn: UInt32 = 0) throws {
        let d = div(vn)
        try d.lock.withLock { try d.cache!.put(key: b(key), value: header.bytes + (header.isTombstone ? [] : b(value))) }
    }

    /// Number of records in the cache engine of division `i` (0 when there is none).
    func cacheCount(ofDivision i: Int) -> UInt64 {
        divisions[i].lock.withLock { divisions[i].cache?.recordCount ?? 0 }
    }

    func hasCache(ofDivision i: Int) -> Bool { divisions[i].lock.withLock { divisions[i].cache != nil } }
}

func hdr(_ vn: UInt32 = 0, physical: UInt32 = T0, logical: UInt32, expire: UInt32 = RecordHeader.noExpire) -> RecordHeader {
    RecordHeader(vnode: vn, physical: physical, logical: logical, expire: expire)
}

/// Lines of a status log, without the trailing empty element.
func statusLines(_ text: String?) -> [String] {
    (text ?? "").split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
}

/// `"<division> <state>"` parts of status log lines (timestamp dropped).
func statusEvents(_ text: String?) -> [String] {
    statusLines(text).map { line in
        let parts = line.split(separator: " ", maxSplits: 1)
        return parts.count == 2 ? String(parts[1]) : "<malformed: \(line)>"
    }
}

/// Deterministic RNG for fuzz-like tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
