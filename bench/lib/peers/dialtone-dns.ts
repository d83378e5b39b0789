import type { Peer } from "./types.js";
import { dialtoneWith } from "./dialtone.js";

/**
 * dialtone's HTTP/2 channel discovering `name` through its own DNS resolver,
 * asking only `nameserver` ("127.0.0.1:PORT"), A records, no hosts file.
 */
export function dialtoneDnsPeer(name: string, nameserver: string, members: number): Peer {
  return dialtoneWith("dialtone", "dialtone", (t) => ({
    target: `http://${name}:${t.port}`,
    discovery: `dns:///${name}:${t.port}`,
    dns: { nameservers: [nameserver], hostsFile: false, family: 4 },
    members,
  }));
}
