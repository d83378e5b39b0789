import { RequestError, createHttp2Channel } from "../../../dist/index.js";
import { CallError, ECHO_PATH, warmUp, type BenchClient, type Peer, type Target } from "./types.js";

/**
 * dialtone's HTTP/2 channel discovering `name` through its own DNS resolver,
 * asking only `nameserver` ("127.0.0.1:PORT"), A records, no hosts file.
 */
export function dialtoneDnsPeer(name: string, nameserver: string, members: number): Peer {
  return {
    id: "dialtone",
    label: "dialtone",
    namesFailedBackend: true,
    protocol: "http2",
    async open(t: Target): Promise<BenchClient> {
      const channel = createHttp2Channel({
        target: `http://${name}:${t.port}`,
        discovery: `dns:///${name}:${t.port}`,
        dns: { nameservers: [nameserver], hostsFile: false, family: 4 },
        members,
        requestTimeout: t.timeoutMs,
      });
      await channel.ready(AbortSignal.timeout(10_000));
      const client: BenchClient = {
        async call(body) {
          let res;
          try {
            res = await channel.request({ method: "POST", path: ECHO_PATH, body, timeout: t.timeoutMs });
          } catch (err) {
            throw new CallError((err as Error).message, err instanceof RequestError ? err.address : undefined, { cause: err });
          }
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          return res.headers["x-backend"] as string | undefined;
        },
        close: () => channel.close(),
      };
      await warmUp(client);
      return client;
    },
  };
}
