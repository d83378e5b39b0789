import type { LookupFunction } from "node:net";

/**
 * A DNS stand-in for clients that dial one host name: each lookup answers
 * the next address in turn, like round-robin DNS with a zero TTL. (The OS
 * resolver would answer the same first address every time, so this is the
 * kinder model for single-connection clients.)
 */
export function rotatingLookup(hosts: string[]): LookupFunction {
  let next = 0;
  return (_hostname, options, callback) => {
    const address = hosts[next++ % hosts.length] as string;
    if (options.all) callback(null, [{ address, family: 4 }]);
    else callback(null, address, 4);
  };
}
