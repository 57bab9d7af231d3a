import NIOCore

/// Pre-encoded requests. A request is one copy of its template plus the key index written in
/// place as 10 ASCII digits (and, for a set, the value's first bytes): no formatting, no
/// allocation per request.
///
/// Key `i` is `<prefix><i as 10 digits>`. Its value (`valueSize` bytes) starts with the last
/// `min(10, valueSize)` digits of `i` and continues with a fixed filler, so a reader can check
/// that a key holds exactly the value roma-bench wrote for it (`--verify`).
public struct RequestTemplates: Sendable {
    public static let keyDigits = 10

    public let keyPrefix: [UInt8]
    public let valueSize: Int
    let get: [UInt8]
    let getKeyOffset: Int
    let set: [UInt8]
    let setKeyOffset: Int
    let setValueOffset: Int
    let delete: [UInt8]
    let deleteKeyOffset: Int
    /// The value bytes that follow the digits.
    let filler: [UInt8]

    public var valueDigits: Int { Swift.min(Self.keyDigits, valueSize) }

    public init(keyPrefix: String, valueSize: Int) {
        let prefix = Array(keyPrefix.utf8)
        self.keyPrefix = prefix
        self.valueSize = valueSize
        let keyPlaceholder = prefix + [UInt8](repeating: UInt8(ascii: "0"), count: Self.keyDigits)
        let crlf: [UInt8] = [0x0D, 0x0A]

        get = Array("get ".utf8) + keyPlaceholder + crlf
        getKeyOffset = 4 + prefix.count

        let digits = Swift.min(Self.keyDigits, valueSize)
        var fill: [UInt8] = []
        fill.reserveCapacity(valueSize - digits)
        let pattern = Array("-abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        for k in 0..<(valueSize - digits) { fill.append(pattern[k % pattern.count]) }
        filler = fill
        let setHeader = Array("set ".utf8) + keyPlaceholder + Array(" 0 0 \(valueSize)".utf8) + crlf
        set = setHeader + [UInt8](repeating: UInt8(ascii: "0"), count: digits) + fill + crlf
        setKeyOffset = 4 + prefix.count
        setValueOffset = setHeader.count

        delete = Array("delete ".utf8) + keyPlaceholder + crlf
        deleteKeyOffset = 7 + prefix.count
    }

    /// Bytes of one request of this kind.
    public func requestSize(_ op: OpKind) -> Int {
        switch op {
        case .get: return get.count
        case .set: return set.count
        case .delete: return delete.count
        }
    }

    /// Writes the lowest `count` decimal digits of `value`, zero padded, at `p`.
    @inline(__always)
    static func writeDigits(_ value: Int, count: Int, to p: UnsafeMutableRawPointer) {
        var v = value
        var k = count - 1
        while k >= 0 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + v % 10), toByteOffset: k, as: UInt8.self)
            v /= 10
            k -= 1
        }
    }

    /// Appends the request for key index `key` (0 <= key < 10^10) to `buffer`.
    @inline(__always)
    public func write(_ op: OpKind, key: Int, into buffer: inout ByteBuffer) {
        let template: [UInt8]
        let keyOffset: Int
        switch op {
        case .get: template = get; keyOffset = getKeyOffset
        case .set: template = set; keyOffset = setKeyOffset
        case .delete: template = delete; keyOffset = deleteKeyOffset
        }
        let size = template.count
        buffer.reserveCapacity(minimumWritableBytes: size)
        let valueOffset = setValueOffset
        let digits = valueDigits
        buffer.withUnsafeMutableWritableBytes { dst in
            let base = dst.baseAddress!
            template.withUnsafeBytes { src in base.copyMemory(from: src.baseAddress!, byteCount: size) }
            Self.writeDigits(key, count: Self.keyDigits, to: base + keyOffset)
            if op == .set && digits > 0 {
                Self.writeDigits(key, count: digits, to: base + valueOffset)
            }
        }
        buffer.moveWriterIndex(forwardBy: size)
    }

    /// The key string for index `key` (for tools and tests).
    public func key(_ key: Int) -> String {
        var bytes = keyPrefix + [UInt8](repeating: 0, count: Self.keyDigits)
        bytes.withUnsafeMutableBytes { Self.writeDigits(key, count: Self.keyDigits, to: $0.baseAddress! + keyPrefix.count) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The value roma-bench writes for key index `key`.
    public func value(_ key: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: valueDigits) + filler
        if valueDigits > 0 {
            let digits = valueDigits
            bytes.withUnsafeMutableBytes { Self.writeDigits(key, count: digits, to: $0.baseAddress!) }
        }
        return bytes
    }

    /// Whether `data` is exactly the value written for key index `key`.
    @inline(__always)
    public func valueMatches(key: Int, _ data: UnsafeRawBufferPointer) -> Bool {
        guard data.count == valueSize else { return false }
        let digits = valueDigits
        var v = key
        var k = digits - 1
        while k >= 0 {
            if data[k] != UInt8(truncatingIfNeeded: 0x30 + v % 10) { return false }
            v /= 10
            k -= 1
        }
        return filler.withUnsafeBytes { f in
            f.count == 0 || memcmpEqual(data.baseAddress! + digits, f.baseAddress!, f.count)
        }
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    UnsafeRawBufferPointer(start: a, count: n).elementsEqual(UnsafeRawBufferPointer(start: b, count: n))
}
