import NIOCore

/// Reply encoding: writes ROMA's reply lines straight into an outbound ByteBuffer.
extension ByteBuffer {
    /// Writes `text` followed by CR LF.
    @inlinable public mutating func writeLine(_ text: String) {
        writeString(text)
        writeStaticString("\r\n")
    }

    /// Writes a static reply followed by CR LF.
    @inlinable public mutating func writeLine(_ text: StaticString) {
        writeStaticString(text)
        writeStaticString("\r\n")
    }

    /// Writes a decimal number.
    @inlinable public mutating func writeDecimal<T: BinaryInteger>(_ v: T) {
        let n = UInt64(truncatingIfNeeded: v)
        writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { p in ByteBuffer.putDecimal(n, into: p, at: 0) }
    }

    /// Formats `v` in decimal at `offset` of `p`; returns the number of bytes written (≤ 20).
    @inlinable @inline(__always)
    static func putDecimal(_ v: UInt64, into p: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        var digits = 1
        var t = v
        while t >= 10 { t /= 10; digits += 1 }
        var x = v
        var i = offset + digits - 1
        repeat {
            p[i] = UInt8(truncatingIfNeeded: 0x30 &+ x % 10)
            x /= 10
            i -= 1
        } while x > 0
        return digits
    }

    /// `VALUE <key> <flags> <len>[ <cas>]\r\n<data>\r\n` (R3.9), written with one capacity check
    /// and plain memory copies.
    @inlinable public mutating func writeValue(key: UnsafeRawBufferPointer, flags: UInt32 = 0,
                                               data: UnsafeRawBufferPointer, cas: UInt32?) {
        let bound = 6 + key.count + 1 + 10 + 1 + 20 + 11 + 2 + data.count + 2
        writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { p in
            var o = 0
            @inline(__always) func byte(_ b: UInt8) { p[o] = b; o += 1 }
            @inline(__always) func copy(_ src: UnsafeRawBufferPointer) {
                if src.count > 0 { (p.baseAddress! + o).copyMemory(from: src.baseAddress!, byteCount: src.count) }
                o += src.count
            }
            byte(0x56); byte(0x41); byte(0x4c); byte(0x55); byte(0x45); byte(0x20)  // "VALUE "
            copy(key)
            byte(0x20)
            o += ByteBuffer.putDecimal(UInt64(flags), into: p, at: o)
            byte(0x20)
            o += ByteBuffer.putDecimal(UInt64(data.count), into: p, at: o)
            if let cas {
                byte(0x20)
                o += ByteBuffer.putDecimal(UInt64(cas), into: p, at: o)
            }
            byte(0x0d); byte(0x0a)
            copy(data)
            byte(0x0d); byte(0x0a)
            return o
        }
    }
}

/// Fixed reply lines.
public enum Reply {
    public static let stored: StaticString = "STORED\r\n"
    public static let notStored: StaticString = "NOT_STORED\r\n"
    public static let exists: StaticString = "EXISTS\r\n"
    public static let notFound: StaticString = "NOT_FOUND\r\n"
    public static let deleted: StaticString = "DELETED\r\n"
    public static let touched: StaticString = "TOUCHED\r\n"
    public static let end: StaticString = "END\r\n"
    public static let ok: StaticString = "OK\r\n"
    public static let error: StaticString = "ERROR\r\n"
    public static let pushed: StaticString = "PUSHED\r\n"
    public static let bye: StaticString = "BYE\r\n"
    public static let wrongArguments: StaticString = "CLIENT_ERROR Wrong number of arguments.\r\n"
}
