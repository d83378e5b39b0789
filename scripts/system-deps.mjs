#!/usr/bin/env node
// Makes sure the system servers the test suite talks to are installed.
// Missing ones are installed from Debian's packages when we are root with
// apt-get; otherwise we stop at once, naming the package to install.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";

/** binary → Debian package that ships it */
const NEEDED = [
  { bin: "promtool", pkg: "prometheus" },
  { bin: "prometheus", pkg: "prometheus" },
  // dnsmasq-base ships the binary without a service that would start on install.
  { bin: "dnsmasq", pkg: "dnsmasq-base" },
  // Two more real DNS servers for the resolver's matrix (test/integration/dns-servers.test.ts):
  // a recursive resolver and an authoritative + forwarding one. The tests start them with their own configs.
  { bin: "unbound", pkg: "unbound" },
  { bin: "named", pkg: "bind9" },
  { bin: "nats-server", pkg: "nats-server" },
  // Real HTTP/2 servers no one here wrote, for the fetch/undici adapter tests.
  { bin: "nghttpd", pkg: "nghttp2-server" },
  { bin: "h2o", pkg: "h2o" },
  // A real gRPC server (Python), run with Debian's own python3: a python3 from a
  // version manager earlier on PATH would not see Debian's grpc module.
  { bin: "python3-grpcio", pkg: "python3-grpcio", check: () => spawnSync("/usr/bin/python3", ["-c", "import grpc"], { stdio: "ignore" }).status === 0 },
  // grpc's interop messages (test/fixtures/grpc_testing.py) are built at run time with protobuf: no protoc needed.
  {
    bin: "python3-protobuf",
    pkg: "python3-protobuf",
    check: () => spawnSync("/usr/bin/python3", ["-c", "import google.protobuf"], { stdio: "ignore" }).status === 0,
  },
  // Raw HTTP/2 frames for the broker tests (RST_STREAM at each point of an exchange), on Debian's python3.
  { bin: "python3-h2", pkg: "python3-h2", check: () => spawnSync("/usr/bin/python3", ["-c", "import h2"], { stdio: "ignore" }).status === 0 },
  // Foreign clients for the broker tests: curl (HTTP/1.1) and nghttp (h2c).
  { bin: "curl", pkg: "curl" },
  { bin: "nghttp", pkg: "nghttp2-client" },
  // The broker benchmark's load generator and the two proxies it is compared with.
  { bin: "h2load", pkg: "nghttp2-client" },
  { bin: "nghttpx", pkg: "nghttp2-proxy" },
  { bin: "haproxy", pkg: "haproxy" },
  // Headless browser for the diagnostics page test (driven by playwright-core, no browser download).
  { bin: "chromium", pkg: "chromium" },
];

// dnsmasq lives in /usr/sbin, which a non-login PATH may lack.
const onPath = (bin) => spawnSync("sh", ["-c", `PATH="$PATH:/usr/sbin:/sbin" command -v ${bin}`], { stdio: "ignore" }).status === 0;
const present = (n) => (n.check ? n.check() : onPath(n.bin));
const missing = NEEDED.filter((n) => !present(n));
if (missing.length === 0) process.exit(0);

const pkgs = [...new Set(missing.map((m) => m.pkg))];
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot || !onPath("apt-get")) {
  console.error(`test setup: missing ${missing.map((m) => m.bin).join(", ")}; install the Debian package(s): ${pkgs.join(" ")}`);
  console.error(`  e.g. sudo apt-get install --no-install-recommends ${pkgs.join(" ")}`);
  process.exit(1);
}

console.error(`test setup: installing ${pkgs.join(" ")} with apt-get (missing: ${missing.map((m) => m.bin).join(", ")})`);
// Packages must not start their own daemons here: the tests start the servers they need.
const policy = "/usr/sbin/policy-rc.d";
const hadPolicy = existsSync(policy);
if (!hadPolicy) writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
try {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], { stdio: "inherit", env });
} finally {
  if (!hadPolicy) rmSync(policy, { force: true });
}
const still = NEEDED.filter((n) => !present(n));
if (still.length > 0) {
  console.error(`test setup: ${still.map((m) => m.bin).join(", ")} still missing after installing ${pkgs.join(" ")}`);
  process.exit(1);
}
