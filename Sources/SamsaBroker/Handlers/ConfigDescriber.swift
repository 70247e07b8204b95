import KafkaProtocol

/// One described config (DescribeConfigs, CreateTopics v5+), with its synonyms.
struct DescribedConfig {
    var name: String
    var value: String?
    var source: ConfigSource
    var readOnly: Bool
    var sensitive: Bool
    var type: ConfigType
    var documentation: String
    var synonyms: [(name: String, value: String?, source: ConfigSource)]
}

/// Resolves topic and broker configs into what DescribeConfigs reports.
enum ConfigDescriber {
    /// Resource types of DescribeConfigs/AlterConfigs.
    static let topicResource: Int8 = 2, brokerResource: Int8 = 4, brokerLoggerResource: Int8 = 8

    static func topic(_ overrides: [String: String], config: BrokerConfig) -> [DescribedConfig] {
        topicConfigDefinitions.map { def in
            var synonyms: [(String, String?, ConfigSource)] = []
            if let v = overrides[def.name] { synonyms.append((def.name, v, .dynamicTopicConfig)) }
            let broker = config.brokerDefault(forTopicConfig: def.name)
            if let broker, broker.source == .staticBrokerConfig { synonyms.append((broker.key, broker.value, .staticBrokerConfig)) }
            if let d = def.defaultValue { synonyms.append((def.brokerSynonym ?? def.name, d, .defaultConfig)) }
            let (value, source): (String?, ConfigSource) = overrides[def.name].map { ($0, .dynamicTopicConfig) }
                ?? broker.map { ($0.value, $0.source) } ?? (nil, .defaultConfig)
            return DescribedConfig(name: def.name, value: value, source: source, readOnly: false, sensitive: def.sensitive,
                                   type: def.type, documentation: def.documentation, synonyms: synonyms)
        }
    }

    static func broker(_ config: BrokerConfig) -> [DescribedConfig] {
        var result = brokerConfigDefinitions.map { def -> DescribedConfig in
            let set = config.values[def.name]
            var synonyms: [(String, String?, ConfigSource)] = []
            if let set { synonyms.append((def.name, set, .staticBrokerConfig)) }
            if let d = def.defaultValue { synonyms.append((def.name, d, .defaultConfig)) }
            return DescribedConfig(name: def.name, value: set ?? def.defaultValue, source: set != nil ? .staticBrokerConfig : .defaultConfig,
                                   readOnly: def.readOnly, sensitive: def.sensitive, type: def.type, documentation: def.documentation,
                                   synonyms: synonyms)
        }
        // Keys from the properties file that Samsa does not interpret are still shown as given.
        let known = Set(brokerConfigDefinitions.map(\.name))
        for (name, value) in config.values.sorted(by: { $0.key < $1.key }) where !known.contains(name) {
            result.append(DescribedConfig(name: name, value: value, source: .staticBrokerConfig, readOnly: true, sensitive: false,
                                          type: .string, documentation: "Not used by Samsa.", synonyms: [(name, value, .staticBrokerConfig)]))
        }
        return result
    }
}
