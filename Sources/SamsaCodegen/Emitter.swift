import Foundation

/// Writes Swift for one message schema: the message struct with its nested structs, each with
/// `init(from:version:)` and `write(to:version:)`, plus (for tests) an `arbitrary` generator.
struct MessageEmitter {
    let spec: MessageSpec
    let valid: Versions
    let flexible: Versions
    /// Every struct type of the message, by name, in order of first definition.
    private(set) var structs: [(name: String, fields: [Field])] = []

    init(spec: MessageSpec) throws {
        self.spec = spec
        self.valid = spec.validVersions
        self.flexible = spec.flexibleVersions.intersect(spec.validVersions)
        var seen = Set<String>()
        let common = Dictionary(uniqueKeysWithValues: spec.commonStructs.map { ($0.name, $0) })
        func collect(_ fields: [Field]) throws {
            for f in fields {
                guard case let .structure(name) = f.type.elementType else { continue }
                if let inline = f.fields {
                    if seen.insert(name).inserted {
                        structs.append((name, inline))
                        try collect(inline)
                    }
                } else if let cs = common[name] {
                    if seen.insert(name).inserted {
                        structs.append((name, cs.fields))
                        try collect(cs.fields)
                    }
                } else if !seen.contains(name) {
                    throw CodegenError("\(spec.name): unknown struct type \(name)")
                }
            }
        }
        try collect(spec.fields)
        // Common structs not referenced by any field are still emitted (they are part of the schema).
        for cs in spec.commonStructs where seen.insert(cs.name).inserted {
            structs.append((cs.name, cs.fields))
            try collect(cs.fields)
        }
    }

    var hasFlexible: Bool { !flexible.isEmpty }
    var flexibleCondition: String { flexible.condition(within: valid) }

    // MARK: Names and types

    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
        "inout", "internal", "let", "open", "operator", "private", "protocol", "public", "rethrows", "static",
        "struct", "subscript", "typealias", "var", "break", "case", "continue", "default", "defer", "do",
        "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "switch", "where", "while",
        "as", "catch", "false", "is", "nil", "super", "self", "Self", "throw", "throws", "true", "try", "Type",
        "Any", "any", "some", "consume", "copy", "borrowing", "consuming",
    ]

    static func propertyName(_ name: String) -> String {
        // "ClientId" → "clientId", "TTLMs" → "ttlMs", "ID" → "id".
        let chars = Array(name)
        var upperRun = 0
        while upperRun < chars.count, chars[upperRun].isUppercase { upperRun += 1 }
        var result: String
        if upperRun == 0 {
            result = name
        } else if upperRun == 1 || upperRun == chars.count {
            result = String(chars[..<upperRun]).lowercased() + String(chars[upperRun...])
        } else {
            result = String(chars[..<(upperRun - 1)]).lowercased() + String(chars[(upperRun - 1)...])
        }
        return keywords.contains(result) ? "`\(result)`" : result
    }

    /// Versions in which the field is present and not tagged.
    func regularVersions(_ f: Field) -> Versions {
        var r = f.versions.intersect(valid)
        if !f.taggedVersions.isEmpty { r.hi = min(r.hi, f.taggedVersions.lo - 1) }
        return r
    }

    func taggedVersions(_ f: Field) -> Versions {
        f.taggedVersions.intersect(f.versions).intersect(valid).intersect(flexible)
    }

    func presentVersions(_ f: Field) -> Versions { f.versions.intersect(valid) }

    func isOptional(_ f: Field) -> Bool {
        if f.type == .records { return true }
        if f.defaultValue == "null" { return true }
        return !f.nullableVersions.intersect(presentVersions(f)).isEmpty
    }

    static func baseType(_ t: FieldType) -> String {
        switch t {
        case .bool: return "Bool"
        case .int8: return "Int8"
        case .int16: return "Int16"
        case .uint16: return "UInt16"
        case .int32: return "Int32"
        case .uint32: return "UInt32"
        case .int64: return "Int64"
        case .float64: return "Double"
        case .string: return "String"
        case .bytes, .records: return "ByteBuffer"
        case .uuid: return "KafkaUUID"
        case let .structure(n): return n
        case let .array(e): return "[\(baseType(e))]"
        }
    }

    func swiftType(_ f: Field) -> String { Self.baseType(f.type) + (isOptional(f) ? "?" : "") }

    func defaultExpression(_ f: Field) throws -> String {
        let d = f.defaultValue
        if d == "null" {
            guard isOptional(f) else { throw CodegenError("\(spec.name).\(f.name): null default on non-nullable") }
            return "nil"
        }
        switch f.type {
        case .bool:
            guard let d else { return "false" }
            switch d.lowercased() {
            case "true", "1": return "true"
            case "false", "0": return "false"
            default: throw CodegenError("\(spec.name).\(f.name): bad bool default \(d)")
            }
        case .int8, .int16, .uint16, .int32, .uint32, .int64:
            guard let d, !d.isEmpty else { return "0" }
            let neg = d.hasPrefix("-")
            let body = neg ? String(d.dropFirst()) : d
            let value: Int64?
            if body.lowercased().hasPrefix("0x") {
                value = Int64(body.dropFirst(2), radix: 16)
            } else {
                value = Int64(body)
            }
            guard let v = value else { throw CodegenError("\(spec.name).\(f.name): bad int default \(d)") }
            return String(neg ? -v : v)
        case .float64:
            guard let d, let v = Double(d) else { return "0" }
            return "\(v)"
        case .string:
            guard let d else { return "\"\"" }
            return "\"" + d.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .bytes:
            return "ByteBuffer()"
        case .records:
            return "nil"
        case .uuid:
            return ".zero"
        case .array:
            return "[]"
        case let .structure(n):
            return "\(n)()"
        }
    }

    // MARK: Decoding

    /// The reader method for a primitive element, with `buf` as the buffer expression.
    func primitiveRead(_ t: FieldType, buf: String, compact: String) -> String {
        switch t {
        case .bool: return "try \(buf).readKafkaBool()"
        case .int8: return "try \(buf).readKafkaInt8()"
        case .int16: return "try \(buf).readKafkaInt16()"
        case .uint16: return "try \(buf).readKafkaUInt16()"
        case .int32: return "try \(buf).readKafkaInt32()"
        case .uint32: return "try \(buf).readKafkaUInt32()"
        case .int64: return "try \(buf).readKafkaInt64()"
        case .float64: return "try \(buf).readKafkaFloat64()"
        case .uuid: return "try \(buf).readKafkaUUID()"
        case .string: return "try \(buf).readKafkaString(compact: \(compact))"
        case .bytes, .records: return "try \(buf).readKafkaBytes(compact: \(compact))"
        case let .structure(n): return "try \(n)(from: &\(buf), version: version)"
        case .array: fatalError("nested arrays are not in Kafka's schemas")
        }
    }

    func nullableRead(_ t: FieldType, buf: String, compact: String) -> String {
        switch t {
        case .string: return "try \(buf).readKafkaNullableString(compact: \(compact))"
        case .bytes, .records: return "try \(buf).readKafkaNullableBytes(compact: \(compact))"
        case let .array(e):
            return "try \(buf).readKafkaNullableArray(compact: \(compact)) { \(primitiveRead(e, buf: "$0", compact: compact)) }"
        case let .structure(n): return "try \(buf).readKafkaInt8() < 0 ? nil : \(n)(from: &\(buf), version: version)"
        default: fatalError("\(t) cannot be null")
        }
    }

    func nonNullRead(_ t: FieldType, buf: String, compact: String) -> String {
        if case let .array(e) = t {
            return "try \(buf).readKafkaArray(compact: \(compact)) { \(primitiveRead(e, buf: "$0", compact: compact)) }"
        }
        return primitiveRead(t, buf: buf, compact: compact)
    }

    func compactCondition(_ f: Field) -> String {
        if let o = f.flexibleOverride { return o.intersect(flexible).condition(within: valid) }
        return "flexible"
    }

    func readExpression(_ f: Field, buf: String) -> String {
        let compact = compactCondition(f)
        let nullable = f.nullableVersions.condition(within: presentVersions(f))
        switch nullable {
        case "false": return nonNullRead(f.type, buf: buf, compact: compact)
        case "true": return nullableRead(f.type, buf: buf, compact: compact)
        default:
            return "\(nullable) ? \(nullableRead(f.type, buf: buf, compact: compact)) : \(nonNullRead(f.type, buf: buf, compact: compact))"
        }
    }

    // MARK: Encoding

    func primitiveWrite(_ t: FieldType, value: String, buf: String, compact: String) -> String {
        switch t {
        case .bool: return "\(buf).writeKafkaBool(\(value))"
        case .int8: return "\(buf).writeKafkaInt8(\(value))"
        case .int16: return "\(buf).writeKafkaInt16(\(value))"
        case .uint16: return "\(buf).writeKafkaUInt16(\(value))"
        case .int32: return "\(buf).writeKafkaInt32(\(value))"
        case .uint32: return "\(buf).writeKafkaUInt32(\(value))"
        case .int64: return "\(buf).writeKafkaInt64(\(value))"
        case .float64: return "\(buf).writeKafkaFloat64(\(value))"
        case .uuid: return "\(buf).writeKafkaUUID(\(value))"
        case .string: return "\(buf).writeKafkaString(\(value), compact: \(compact))"
        case .bytes, .records: return "\(buf).writeKafkaBytes(\(value), compact: \(compact))"
        case .structure: return "\(value).write(to: &\(buf), version: version)"
        case let .array(e):
            return "\(buf).writeKafkaArray(\(value), compact: \(compact)) { \(primitiveWrite(e, value: "$1", buf: "$0", compact: compact)) }"
        }
    }

    /// Statements writing field `f` (value expression `value`) into `buf`.
    func writeStatements(_ f: Field, value: String, buf: String) -> [String] {
        let compact = compactCondition(f)
        let optional = isOptional(f)
        let nullable = f.nullableVersions.condition(within: presentVersions(f))
        if !optional {
            return [primitiveWrite(f.type, value: value, buf: buf, compact: compact)]
        }
        // Optional Swift type. Where the version allows null, null is written as null; where it
        // does not, nil is written as the type's empty value.
        let empty: String
        switch f.type {
        case .string: empty = "\"\""
        case .bytes, .records: empty = "ByteBuffer()"
        case .array: empty = "[]"
        case let .structure(n): empty = "\(n)()"
        default: empty = "nil"
        }
        func nullableWrite() -> [String] {
            switch f.type {
            case .string, .bytes, .records:
                return [primitiveWrite(f.type, value: value, buf: buf, compact: compact)]
            case let .array(e):
                return ["\(buf).writeKafkaNullableArray(\(value), compact: \(compact)) { \(primitiveWrite(e, value: "$1", buf: "$0", compact: compact)) }"]
            case .structure:
                return [
                    "if let value = \(value) {",
                    "    \(buf).writeKafkaInt8(1)",
                    "    value.write(to: &\(buf), version: version)",
                    "} else {",
                    "    \(buf).writeKafkaInt8(-1)",
                    "}",
                ]
            default: fatalError()
            }
        }
        let nonNull = [primitiveWrite(f.type, value: "\(value) ?? \(empty)", buf: buf, compact: compact)]
        switch nullable {
        case "true": return nullableWrite()
        case "false": return nonNull
        default:
            return ["if \(nullable) {"] + nullableWrite().map { "    " + $0 } + ["} else {"] + nonNull.map { "    " + $0 } + ["}"]
        }
    }

    // MARK: Structs

    func conditionBlock(_ cond: String, _ body: [String]) -> [String] {
        switch cond {
        case "false": return []
        case "true": return body
        default: return ["if \(cond) {"] + body.map { "    " + $0 } + ["}"]
        }
    }

    func docComment(_ text: String?, indent: String) -> [String] {
        guard let text, !text.isEmpty else { return [] }
        return ["\(indent)/// \(text.replacingOccurrences(of: "\n", with: " "))"]
    }

    func emitStruct(name: String, fields: [Field], topLevel: Bool, indent: String) throws -> [String] {
        var out: [String] = []
        let conformance: String
        if topLevel {
            switch spec.kind {
            case "request": conformance = "KafkaRequest"
            case "response": conformance = "KafkaResponse"
            default: conformance = "KafkaMessage"
            }
        } else {
            conformance = "KafkaStruct"
        }
        out.append("\(indent)public struct \(name): \(conformance) {")
        let i1 = indent + "    "
        let i2 = i1 + "    "
        if topLevel {
            if spec.apiKey != nil, spec.kind == "request" || spec.kind == "response" {
                out.append("\(i1)public static let apiKey: ApiKey = .\(ApiKeyEmitter.caseName(spec))")
            }
            if spec.kind == "request" {
                out.append("\(i1)public typealias Response = \(spec.name.dropLast("Request".count))Response")
            }
            out.append("\(i1)public static let validVersions: ClosedRange<Int16> = \(valid.lo)...\(valid.hi)")
            out.append("\(i1)public static let flexibleVersions: ClosedRange<Int16>? = \(spec.flexibleVersions.swiftOptionalRange)")
            out.append("")
        }
        for f in fields {
            out += docComment(f.about, indent: i1)
            out.append("\(i1)public var \(Self.propertyName(f.name)): \(swiftType(f))")
        }
        if hasFlexible {
            out.append("\(i1)/// Tagged fields this version of Samsa does not know, kept for round trips.")
            out.append("\(i1)public var unknownTaggedFields: [TaggedField]")
        }
        out.append("")

        // Memberwise initializer with the schema's defaults (also serves as `init()`).
        var params: [String] = []
        var assigns: [String] = []
        for f in fields {
            let p = Self.propertyName(f.name)
            params.append("\(p): \(swiftType(f)) = \(try defaultExpression(f))")
            assigns.append("\(i2)self.\(p) = \(p)")
        }
        if hasFlexible {
            params.append("unknownTaggedFields: [TaggedField] = []")
            assigns.append("\(i2)self.unknownTaggedFields = unknownTaggedFields")
        }
        if params.isEmpty {
            out.append("\(i1)public init() {}")
        } else {
            out.append("\(i1)public init(")
            out += params.enumerated().map { "\(i2)\($1)\($0 == params.count - 1 ? "" : ",")" }
            out.append("\(i1)) {")
            out += assigns
            out.append("\(i1)}")
        }
        out.append("")

        // Decoder.
        var read: [String] = []
        if topLevel {
            read.append("guard Self.validVersions.contains(version) else {")
            read.append("    throw KafkaWireError.unsupportedVersion(api: \"\(spec.name)\", version: version)")
            read.append("}")
        }
        read.append("self.init()")
        for f in fields {
            let p = "self." + Self.propertyName(f.name)
            read += conditionBlock(regularVersions(f).condition(within: valid), ["\(p) = \(readExpression(f, buf: "buffer"))"])
        }
        let tagged = fields.filter { !taggedVersions($0).isEmpty }.sorted { $0.tag! < $1.tag! }
        if hasFlexible {
            var loop: [String] = [
                "let taggedCount = try buffer.readUnsignedVarint()",
                "for _ in 0..<taggedCount {",
                "    let tag = try buffer.readUnsignedVarint()",
                "    \(tagged.isEmpty ? "let" : "var") field = try buffer.readKafkaSlice(length: Int(try buffer.readUnsignedVarint()))",
            ]
            if tagged.isEmpty {
                loop.append("    self.unknownTaggedFields.append(TaggedField(tag: tag, data: field))")
            } else {
                loop.append("    switch tag {")
                for f in tagged {
                    let cond = taggedVersions(f).condition(within: flexible.intersect(valid))
                    loop.append("    case \(f.tag!)\(cond == "true" ? "" : " where \(cond)"):")
                    loop.append("        self.\(Self.propertyName(f.name)) = \(readExpression(f, buf: "field"))")
                }
                loop.append("    default:")
                loop.append("        self.unknownTaggedFields.append(TaggedField(tag: tag, data: field))")
                loop.append("    }")
            }
            loop.append("}")
            read += conditionBlock("flexible", loop)
        }
        if read.joined().contains("flexible") { read.insert("let flexible = \(flexibleCondition)", at: topLevel ? 3 : 0) }
        out.append("\(i1)public init(from buffer: inout ByteBuffer, version: Int16) throws {")
        out += read.map { i2 + $0 }
        out.append("\(i1)}")
        out.append("")

        // Encoder.
        var write: [String] = []
        for f in fields {
            write += conditionBlock(regularVersions(f).condition(within: valid),
                                    writeStatements(f, value: "self." + Self.propertyName(f.name), buf: "buffer"))
        }
        if hasFlexible {
            var block: [String] = ["\(tagged.isEmpty ? "let" : "var") taggedCount = self.unknownTaggedFields.count"]
            func present(_ f: Field) throws -> String {
                let cond = taggedVersions(f).condition(within: flexible.intersect(valid))
                let nonDefault = "self.\(Self.propertyName(f.name)) != \(try defaultExpression(f))"
                return cond == "true" ? nonDefault : "\(cond) && \(nonDefault)"
            }
            for f in tagged {
                block.append("let has\(f.tag!) = \(try present(f))")
                block.append("if has\(f.tag!) { taggedCount += 1 }")
            }
            block.append("buffer.writeUnsignedVarint(UInt32(taggedCount))")
            block.append("var unknownIndex = 0")
            if !tagged.isEmpty {
                for f in tagged {
                    block.append("if has\(f.tag!) {")
                    block.append("    buffer.writeUnknownTaggedFields(self.unknownTaggedFields, from: &unknownIndex, below: \(f.tag!))")
                    block.append("    buffer.writeTaggedField(tag: \(f.tag!)) { buffer in")
                    block += writeStatements(f, value: "self.\(Self.propertyName(f.name))", buf: "buffer").map { "        " + $0 }
                    block.append("    }")
                    block.append("}")
                }
            }
            block.append("buffer.writeUnknownTaggedFields(self.unknownTaggedFields, from: &unknownIndex, below: .max)")
            write += conditionBlock("flexible", block)
        }
        if write.joined().contains("flexible") { write.insert("let flexible = \(flexibleCondition)", at: 0) }
        out.append("\(i1)public func write(to buffer: inout ByteBuffer, version: Int16) {")
        out += write.map { i2 + $0 }
        out.append("\(i1)}")

        if topLevel {
            for s in structs {
                out.append("")
                out += try emitStruct(name: s.name, fields: s.fields, topLevel: false, indent: i1)
            }
        }
        out.append("\(indent)}")
        return out
    }

    func emitMessage() throws -> [String] {
        try emitStruct(name: spec.name, fields: spec.fields, topLevel: true, indent: "")
    }

    // MARK: Arbitrary values (test support)

    func arbitraryExpression(_ t: FieldType, gen: String) -> String {
        switch t {
        case .bool: return "\(gen).bool()"
        case .int8: return "\(gen).int8()"
        case .int16: return "\(gen).int16()"
        case .uint16: return "\(gen).uint16()"
        case .int32: return "\(gen).int32()"
        case .uint32: return "\(gen).uint32()"
        case .int64: return "\(gen).int64()"
        case .float64: return "\(gen).float64()"
        case .uuid: return "\(gen).uuid()"
        case .string: return "\(gen).string()"
        case .bytes: return "\(gen).bytes()"
        case .records: return "\(gen).bytes()"
        case let .structure(n): return "\(qualified(n)).arbitrary(version: version, using: &\(gen))"
        case let .array(e): return "\(gen).array { \(arbitraryExpression(e, gen: "$0")) }"
        }
    }

    func qualified(_ structName: String) -> String { "\(spec.name).\(structName)" }

    func emitArbitrary(name: String, fields: [Field], qualifiedName: String) -> [String] {
        var out = ["extension \(qualifiedName) {"]
        out.append("    static func arbitrary(version: Int16, using g: inout ArbitraryGenerator) -> Self {")
        var body = ["var value = Self()"]
        for f in fields {
            let present = presentVersions(f).condition(within: valid)
            let nullable = f.nullableVersions.condition(within: presentVersions(f))
            var expr = arbitraryExpression(f.type, gen: "g")
            if nullable != "false" {
                expr = "g.nullable(\(nullable)) { \(arbitraryExpression(f.type, gen: "$0")) }"
            }
            body += conditionBlock(present, ["value.\(Self.propertyName(f.name)) = \(expr)"])
        }
        if hasFlexible {
            let tags = fields.compactMap(\.tag).map(String.init).joined(separator: ", ")
            body += conditionBlock(flexibleCondition, ["value.unknownTaggedFields = g.unknownTaggedFields(avoiding: [\(tags)])"])
        }
        body.append("return value")
        out += body.map { "        " + $0 }
        out.append("    }")
        out.append("}")
        return out
    }

    func emitArbitraries() -> [String] {
        var out = emitArbitrary(name: spec.name, fields: spec.fields, qualifiedName: spec.name)
        for s in structs {
            out.append("")
            out += emitArbitrary(name: s.name, fields: s.fields, qualifiedName: qualified(s.name))
        }
        return out
    }
}

extension FieldType {
    var elementType: FieldType {
        if case let .array(e) = self { return e }
        return self
    }
}
