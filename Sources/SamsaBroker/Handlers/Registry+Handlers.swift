import KafkaProtocol

/// Registers every API the broker serves. ApiVersions is registered last, with the final list.
func registerHandlers(_ registry: inout HandlerRegistry, services: BrokerServices) {
    registry.register(MetadataHandler(services: services))
    registry.register(ProduceHandler(services: services))
    registry.register(FetchHandler(services: services))
    registry.register(ListOffsetsHandler(services: services))
    registry.register(CreateTopicsHandler(services: services))
    registry.register(DeleteTopicsHandler(services: services))
    registry.register(CreatePartitionsHandler(services: services))
    registry.register(DescribeConfigsHandler(services: services))
    registry.register(AlterConfigsHandler(services: services))
    registry.register(IncrementalAlterConfigsHandler(services: services))
    registry.register(DeleteRecordsHandler(services: services))
    registry.register(DescribeClusterHandler(services: services))
    registry.register(InitProducerIdHandler(services: services))
    // Registered twice: first so that the list includes ApiVersions itself, then with that list.
    registry.register(ApiVersionsHandler(apis: []))
    registry.register(ApiVersionsHandler(apis: registry.supported))
}
