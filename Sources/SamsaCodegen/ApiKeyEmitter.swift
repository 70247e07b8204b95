/// Writes the `ApiKey` enum: every API with its request/response types and version ranges.
enum ApiKeyEmitter {
    static func caseName(_ spec: MessageSpec) -> String {
        let base = spec.name.hasSuffix("Request") ? String(spec.name.dropLast(7))
            : spec.name.hasSuffix("Response") ? String(spec.name.dropLast(8)) : spec.name
        return MessageEmitter.propertyName(base)
    }

    static func emit(requests: [MessageSpec], responses: [Int: MessageSpec]) throws -> [String] {
        var out = [
            "/// Every Kafka API, with its versions as this build's schemas define them.",
            "public enum ApiKey: Int16, CaseIterable, Sendable, CustomStringConvertible {",
        ]
        for r in requests { out.append("    case \(caseName(r)) = \(r.apiKey!)") }
        func property(_ decl: String, _ value: (MessageSpec) -> String) -> [String] {
            var p = ["", "    \(decl) {", "        switch self {"]
            for r in requests { p.append("        case .\(caseName(r)): return \(value(r))") }
            return p + ["        }", "    }"]
        }
        out += property("/// The API's name, e.g. \"Produce\".\n    public var name: String") { "\"\(String($0.name.dropLast(7)))\"" }
        out += property("/// The request versions the schemas define.\n    public var validVersions: ClosedRange<Int16>") {
            "\($0.validVersions.lo)...\($0.validVersions.hi)"
        }
        out += property("/// The request versions that use flexible (compact, tagged) encoding; open-ended like the schema, so a\n    /// version newer than `validVersions` counts as flexible (as Kafka parses headers).\n    public var requestFlexibleVersions: ClosedRange<Int16>?") {
            $0.flexibleVersions.swiftOptionalRange
        }
        out += property("/// The response versions that use flexible encoding.\n    public var responseFlexibleVersions: ClosedRange<Int16>?") {
            let resp = responses[$0.apiKey!]!
            return resp.flexibleVersions.swiftOptionalRange
        }
        out += property("/// Whether the newest version is still marked unstable in Kafka.\n    public var latestVersionUnstable: Bool") {
            "\($0.latestVersionUnstable)"
        }
        out += property("/// The Kafka roles that serve this API (\"broker\", \"controller\", \"zkBroker\").\n    public var listeners: [String]") {
            "[" + $0.listeners.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        }
        out += property("/// The generated request type.\n    public var requestType: any KafkaRequest.Type") { "\($0.name).self" }
        out += property("/// The generated response type.\n    public var responseType: any KafkaResponse.Type") {
            "\(responses[$0.apiKey!]!.name).self"
        }
        out += ["", "    public var description: String { name }", "}"]
        return out
    }
}
