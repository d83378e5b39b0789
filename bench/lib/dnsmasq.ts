// The benchmarks start dnsmasq exactly as the tests do: one implementation.
export { startDnsmasq, type Dnsmasq } from "../../test/helpers/dnsmasq.js";
