// Produces to a topic and consumes it with a group: `swift run ClientConsumer HOST:PORT TOPIC`.
// Built (not run) by scripts/test.sh; it only has to compile against SamsaClient's public API.
import SamsaClient

func run(bootstrap: String, topic: String) async throws {
    let client = ClientConfiguration(bootstrapServers: [bootstrap], clientId: "client-consumer-fixture")
    var producerConfig = ProducerConfiguration(client: client)
    try producerConfig.set("compression.type", "zstd")
    try producerConfig.set("compression.zstd.level", "6")
    let producer = try KafkaProducer(configuration: producerConfig)
    try await producer.send(ProducerRecord(topic: topic, key: "k", value: "hello"))
    await producer.close()

    var consumerConfig = ConsumerConfiguration(client: client, groupId: "client-consumer-fixture")
    consumerConfig.autoOffsetReset = .earliest
    let consumer = try KafkaConsumer(configuration: consumerConfig)
    try consumer.subscribe([topic])
    for record in try await consumer.poll(timeoutMs: 5000) {
        print(record.topic, record.partition, record.offset, record.value?.readableBytes ?? -1)
    }
    await consumer.close()
}

let arguments = CommandLine.arguments
if arguments.count == 3 {
    try await run(bootstrap: arguments[1], topic: arguments[2])
} else {
    print("usage: ClientConsumer HOST:PORT TOPIC")
}
