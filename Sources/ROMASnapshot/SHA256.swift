import CCrypto

/// SHA-256 (FIPS 180-4) through libcrypto, which uses the CPU's SHA instructions when present.
///
/// A value type: copies hash independently (the context is duplicated on first write after a copy).
public struct SHA256: Sendable {
    /// Size of a digest in bytes.
    public static let digestSize = 32

    /// Owns one `EVP_MD_CTX`.
    ///
    /// `@unchecked Sendable`: the context is only used through a `SHA256` value, whose mutating
    /// methods first make the box unique (copy-on-write), so no two threads ever share a context.
    private final class Context: @unchecked Sendable {
        let ctx: OpaquePointer

        init() {
            ctx = EVP_MD_CTX_new()
            precondition(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1, "libcrypto: SHA-256 unavailable")
        }

        init(copying other: Context) {
            ctx = EVP_MD_CTX_new()
            precondition(EVP_MD_CTX_copy_ex(ctx, other.ctx) == 1, "libcrypto: cannot copy a digest context")
        }

        deinit { EVP_MD_CTX_free(ctx) }
    }

    private var context = Context()

    public init() {}

    private mutating func unique() -> OpaquePointer {
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        return context.ctx
    }

    /// Adds bytes to the message.
    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0 else { return }
        precondition(EVP_DigestUpdate(unique(), data.baseAddress, data.count) == 1, "libcrypto: SHA-256 update failed")
    }

    /// Adds bytes to the message.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Adds the UTF-8 bytes of `text` to the message.
    public mutating func update(_ text: String) {
        update(Array(text.utf8))
    }

    /// The digest of everything added so far (32 bytes). The value then starts over.
    public mutating func finalize() -> [UInt8] {
        let ctx = unique()
        var out = [UInt8](repeating: 0, count: SHA256.digestSize)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(ctx, &out, &length) == 1 && length == 32, "libcrypto: SHA-256 final failed")
        precondition(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1, "libcrypto: SHA-256 unavailable")
        return out
    }

    /// SHA-256 of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var s = SHA256()
        s.update(bytes)
        return s.finalize()
    }

    /// Lower-case hexadecimal of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
