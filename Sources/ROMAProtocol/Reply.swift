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
        if v == 0 { writeInteger(UInt8(ascii: "0")); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // up to 24 digits, backwards
        var n = UInt64(v)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while n > 0 { d[23 - count] = UInt8(ascii: "0") + UInt8(n % 10); n /= 10; count += 1 }
            _ = self.writeBytes(UnsafeRawBufferPointer(rebasing: d[(24 - count)...]))
        }
    }

    /// `VALUE <key> <flags> <len>[ <cas>]\r\n<data>\r\n` (R3.9).
    @inlinable public mutating func writeValue(key: UnsafeRawBufferPointer, flags: UInt32 = 0,
                                               data: UnsafeRawBufferPointer, cas: UInt32?) {
        writeStaticString("VALUE ")
        writeBytes(key)
        writeStaticString(" ")
        writeDecimal(flags)
        writeStaticString(" ")
        writeDecimal(data.count)
        if let cas {
            writeStaticString(" ")
            writeDecimal(cas)
        }
        writeStaticString("\r\n")
        writeBytes(data)
        writeStaticString("\r\n")
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
