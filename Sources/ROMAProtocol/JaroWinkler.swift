// Jaro–Winkler similarity and ROMA's unknown-command reply (spec R3.3).
//
// The reference ROMA 1.3.0 ran with the jaro_winkler gem as shipped by Debian 12
// (ruby-jaro-winkler 1.5.4, C extension), so this follows that version's
// semantics, not 1.3.x (which counts matches and transpositions differently):
//
// - Inputs are compared element by element as bytes. In ROMA the command
//   token is either 7-bit ASCII or an ASCII-8BIT (binary) Ruby string, so
//   the gem sees one code point per byte. Case-sensitive.
// - The shorter input is matched against the longer one. The match window is
//   `max(longerCount / 2 - 1, 0)` (integer division). Each byte of the longer
//   input can be matched at most once, to the first free equal byte in the window.
// - Transpositions: the number of matched pairs that differ, divided by 2 with
//   integer division (so 3 gives 1, not 1.5).
// - jaro = (m/len_short + m/len_long + (m - t)/m) / 3, or 0 when either input
//   is empty or nothing matches.
// - Winkler prefix bonus only when jaro >= 0.7. The prefix is taken on the
//   inputs in the caller's order, at most 4 and at most the first input's length.
//   The gem reads past the end of the second input when it is shorter; that
//   memory is treated as not matching here (the real server agrees: `get`
//   followed by 20 `x` gets no suggestion). Weight 0.1:
//   `jaro + Double(prefix) * 0.1 * (1 - jaro)`.
//
// The floating-point operations are done in the same order as the C code, so
// the results are the same doubles and compare the same way.

public enum JaroWinkler {
    /// Prefix scale (the gem's default `weight`).
    public static let weight: Double = 0.1
    /// Jaro score from which the prefix bonus is applied (the gem's default `threshold`).
    public static let boostThreshold: Double = 0.7

    /// Jaro similarity of two byte strings (the gem's `jaro_distance`).
    public static func jaro(_ a: [UInt8], _ b: [UInt8]) -> Double {
        var short = a
        var long = b
        if short.count > long.count { swap(&short, &long) }
        let len1 = short.count
        let len2 = long.count
        if len1 == 0 || len2 == 0 { return 0.0 }

        var window = len2 / 2 - 1
        if window < 0 { window = 0 }

        var shortFlag = [Bool](repeating: false, count: len1)
        var longFlag = [Bool](repeating: false, count: len2)

        var matchCount = 0
        for i in 0..<len1 {
            let left = i >= window ? i - window : 0
            let right = min(i + window, len2 - 1)
            if left > right { continue }
            for j in left...right where !longFlag[j] && short[i] == long[j] {
                shortFlag[i] = true
                longFlag[j] = true
                matchCount += 1
                break
            }
        }
        if matchCount == 0 { return 0.0 }

        var transpositions = 0
        var k = 0
        for i in 0..<len1 where shortFlag[i] {
            var j = k
            while j < len2 {
                if longFlag[j] {
                    k = j + 1
                    break
                }
                j += 1
            }
            // The gem compares even if j ran off the end; that cannot happen
            // because there are as many flagged long bytes as short ones.
            if j < len2, short[i] != long[j] { transpositions += 1 }
        }

        let m = Double(matchCount)
        let t = Double(transpositions / 2)
        return (m / Double(len1) + m / Double(len2) + (m - t) / m) / 3
    }

    /// Jaro–Winkler similarity (the gem's `JaroWinkler.distance(a, b)`, which
    /// despite its name is a similarity: 1 means equal).
    public static func similarity(_ a: [UInt8], _ b: [UInt8]) -> Double {
        let j = jaro(a, b)
        if j < boostThreshold { return j }
        let max4 = min(4, a.count)
        var prefix = 0
        while prefix < max4, prefix < b.count, a[prefix] == b[prefix] {
            prefix += 1
        }
        return j + Double(prefix) * weight * (1 - j)
    }

    /// Convenience overload for strings (compared as UTF-8 bytes).
    public static func similarity(_ a: String, _ b: String) -> Double {
        similarity(Array(a.utf8), Array(b.utf8))
    }
}

/// The reply ROMA sends for a token that is not in its command table (R3.3).
public enum UnknownCommand {
    /// The command closest to `token` if it is close enough to be suggested:
    /// the first command (in `commands` order) with the strictly highest
    /// similarity, suggested when `1 - best < 0.2`.
    public static func suggestion(for token: [UInt8], commands: [String]) -> String? {
        var best = 0.0
        var similar = ""
        for command in commands {
            let name = Array(command.utf8)
            if name == token { continue }  // never suggest the very word typed
            let d = JaroWinkler.similarity(token, name)
            if d > best {
                best = d
                similar = command
            }
        }
        return (1 - best) < 0.2 ? similar : nil
    }

    /// The exact reply bytes. `token` is echoed exactly as typed (any bytes).
    /// `commands` must be in the order ROMA iterates its command table
    /// (see `ROMACommandNames`), since ties go to the first command.
    public static func reply(for token: [UInt8], commands: [String]) -> [UInt8] {
        var out: [UInt8] = []
        if let best = suggestion(for: token, commands: commands) {
            out.append(contentsOf: Array("\r\nERROR: '".utf8))
            out.append(contentsOf: token)
            out.append(contentsOf: Array("' is not roma command.\r\nDid you mean this?\r\n\t".utf8))
            out.append(contentsOf: Array(best.utf8))
            out.append(contentsOf: Array("\r\n".utf8))
        } else {
            out.append(contentsOf: Array("ERROR: '".utf8))
            out.append(contentsOf: token)
            out.append(contentsOf: Array(
                "' is not roma command. Please check command.\r\n(closing telnet connection command is 'quit')\r\n".utf8))
        }
        return out
    }
}
