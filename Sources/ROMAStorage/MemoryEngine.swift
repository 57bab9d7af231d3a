/// An in-process engine (ROMA's `RubyHashStorage`): nothing on disk, lost on restart.
///
/// `@unchecked Sendable`: every method is called with the owning division's lock held
/// (the storage never calls an engine outside it, and `sync` is a no-op), so the dictionary
/// is never accessed concurrently.
public final class MemoryEngine: StorageEngine, @unchecked Sendable {
    private var map: [[UInt8]: [UInt8]] = [:]

    public init() {}

    public var path: String? { nil }

    public func withValue<R>(forKey key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        guard let v = map[Array(key)] else { return try body(nil) }
        return try v.withUnsafeBytes { try body($0) }
    }

    public func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
        map[Array(key)] = Array(value)
    }

    @discardableResult
    public func remove(key: UnsafeRawBufferPointer) throws -> Bool {
        map.removeValue(forKey: Array(key)) != nil
    }

    public func keys(limit: Int) throws -> [[UInt8]] {
        Array(map.keys.prefix(limit))
    }

    public func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        for (k, v) in map {
            let goOn = try k.withUnsafeBytes { kb in try v.withUnsafeBytes { vb in try body(kb, vb) } }
            if !goOn { break }
        }
    }

    public func sync() throws {}
    public func close() throws { map.removeAll() }
    public var recordCount: UInt64 { UInt64(map.count) }
    public var fileSize: UInt64 { 0 }
}
