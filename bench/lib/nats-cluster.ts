// The benchmarks start their NATS cluster exactly as the tests do: one implementation.
export { startNatsCluster, type NatsCluster, type NatsNode } from "../../test/helpers/nats-cluster.js";
