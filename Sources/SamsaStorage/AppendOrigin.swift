/// Who is appending (Kafka's AppendOrigin): batches from clients get the checks Kafka makes on
/// produced batches (no control batches, consistent offset range and count, a sequence with a
/// producer id); the broker's own coordinators may write what clients may not.
public enum AppendOrigin: Sendable, Equatable {
    case client
    case coordinator
}
