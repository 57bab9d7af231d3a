import Testing
@testable import ROMAStorage

@Suite("Ruby to_i and incr/decr arithmetic (R2.4, R3.11)")
struct LenientIntegerTests {
    private func parse(_ s: String) -> LenientInteger { LenientInteger(parsing: b(s)) }

    @Test("Ruby String#to_i", arguments: [
        ("0", Int64(0)),
        ("42", 42),
        ("", 0),
        ("abc", 0),
        ("12ab", 12),
        ("-12", -12),
        ("+7", 7),
        ("-0", 0),
        ("007", 7),
        ("12.9", 12),
        ("12 34", 12),
        ("1e3", 1),
        ("0x1f", 0),
        ("  8", 8),
        ("\t\n\u{0B}\u{0C}\r 9", 9),
        (" -3x", -3),
        ("1_000", 1000),
        ("1_2_3", 123),
        ("1__0", 1),
        ("1_", 1),
        ("_1", 0),
        ("-_1", 0),
        ("--5", 0),
        ("+-5", 0),
        ("- 5", 0),
        ("9223372036854775807", Int64.max),
        ("-9223372036854775808", Int64.min),
        ("99999999999999999999999", Int64.max),   // clamped
        ("-99999999999999999999999", Int64.min),
    ] as [(String, Int64)])
    func toI(text: String, expected: Int64) {
        #expect(parse(text).clampedInt64 == expected)
    }

    @Test("arbitrary precision: low 64 bits of big values")
    func bigValues() {
        #expect(parse("18446744073709551615").low64 == UInt64.max)
        #expect(parse("18446744073709551616").low64 == 0)
        #expect(parse("18446744073709551617").low64 == 1)
        #expect(parse("99999999999999999999999").low64 == 200_376_420_520_689_663)
        #expect(parse("340282366920938463463374607431768211457").low64 == 1)  // 2^128 + 1
        #expect(parse("1_8446744073709551616").low64 == 0)
        #expect(!parse("18446744073709551616").negative)
        #expect(parse("-0").negative == false)
        #expect(LenientInteger(-5) == parse("-5"))
        #expect(LenientInteger(0) == parse("garbage"))
    }

    @Test("incr/decr: to_i(old) ± n, negative → 0, mod 2^64", arguments: [
        ("0", "1", false, UInt64(1)),
        ("41", "1", false, 42),
        ("18446744073709551615", "1", false, 0),          // wraps mod 2^64
        ("18446744073709551615", "2", false, 1),
        ("18446744073709551615", "18446744073709551615", false, 18_446_744_073_709_551_614),
        ("12ab", "1", false, 13),                         // lenient prefix
        ("abc", "1", false, 1),                           // non-numeric → 0
        ("", "5", false, 5),
        ("0", "18446744073709551616", false, 0),          // delta 2^64
        ("7", "18446744073709551616", false, 7),
        ("18446744073709551616", "5", false, 5),          // stored value above 2^64
        ("99999999999999999999999", "0", false, 200_376_420_520_689_663),
        ("5", "10", true, 0),                             // negative → 0
        ("10", "3", true, 7),
        ("5", "-3", true, 8),                             // negative delta on decr
        ("5", "-10", false, 0),                           // negative delta on incr
        ("-5", "1", false, 0),
        ("-5", "10", false, 5),
        ("0", "-1", true, 1),
        ("0", "0", true, 0),
        ("100", "abc", false, 100),                       // non-numeric delta → 0
        ("100", "3x", true, 97),
        ("1", "-18446744073709551617", true, 2),                // 1 + (2^64 + 1) mod 2^64
    ] as [(String, String, Bool, UInt64)])
    func counter(old: String, delta: String, decrement: Bool, expected: UInt64) {
        #expect(LenientInteger.counterResult(old: parse(old), delta: parse(delta), decrement: decrement) == expected)
    }

    @Test("addition agrees with Int64 arithmetic on random small values")
    func additionMatchesInt64() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<3000 {
            let x = Int64.random(in: -(1 << 40)...(1 << 40), using: &rng)
            let y = Int64.random(in: -(1 << 40)...(1 << 40), using: &rng)
            let sum = parse(String(x)) + parse(String(y))
            #expect(sum.clampedInt64 == x + y)
            let expected: UInt64 = x + y < 0 ? 0 : UInt64(x + y)
            #expect(LenientInteger.counterResult(old: parse(String(x)), delta: parse(String(y)), decrement: false) == expected)
            let expectedDecr: UInt64 = x - y < 0 ? 0 : UInt64(x - y)
            #expect(LenientInteger.counterResult(old: parse(String(x)), delta: parse(String(y)), decrement: true) == expectedDecr)
        }
    }
}
