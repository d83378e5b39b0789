import { afterEach } from "vitest";
import { createHttp2Channel, type Http2Channel, type Http2ChannelOptions } from "../../src/index.js";
import { stopAllBackends, type Backend } from "./backends.js";

/** Channels opened by a test file; closed (and backends reaped) after each test. */
export function channelFixture(): { open(opts: Http2ChannelOptions): Http2Channel } {
  const channels: Http2Channel[] = [];
  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.close()));
    await stopAllBackends();
  });
  return {
    open(opts) {
      const ch = createHttp2Channel(opts);
      channels.push(ch);
      return ch;
    },
  };
}

export function staticDiscovery(backends: Backend[]): string {
  return `static:///${backends.map((b) => b.key).join(",")}`;
}
