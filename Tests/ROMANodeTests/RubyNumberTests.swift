import Testing
@testable import ROMANode

/// Ruby's `String#to_f` and `Float#to_s`, as the runtime setters read and `stat` shows them.
@Suite struct RubyNumberTests {
    @Test func toFTakesTheLeadingNumber() {
        #expect(Dispatcher.rubyToF("0.5") == 0.5)
        #expect(Dispatcher.rubyToF("  2") == 2)
        #expect(Dispatcher.rubyToF("1_000.25s") == 1000.25)
        #expect(Dispatcher.rubyToF("1e-3") == 0.001)
        #expect(Dispatcher.rubyToF("3e") == 3)
        #expect(Dispatcher.rubyToF("-4.5") == -4.5)
        #expect(Dispatcher.rubyToF("abc") == 0)
        #expect(Dispatcher.rubyToF(".5") == 0)
        #expect(Dispatcher.rubyToF("") == 0)
    }

    @Test func floatToSAsRuby() {
        #expect(Dispatcher.rubyFloat(5) == "5.0")
        #expect(Dispatcher.rubyFloat(0.5) == "0.5")
        #expect(Dispatcher.rubyFloat(0.001) == "0.001")
        #expect(Dispatcher.rubyFloat(1e-5) == "1.0e-05")
        #expect(Dispatcher.rubyFloat(1e20) == "1.0e+20")
    }
}
