import type { UpstreamConfig } from "./config.js";

/**
 * Host / :authority → upstream name. Exact host names first, then
 * `*.suffix` wildcards (longest suffix wins), then the default upstream.
 * Built once per config, so a lookup is a map probe and a short scan.
 */
export class Router {
  readonly #exact = new Map<string, string>();
  readonly #wildcards: Array<{ suffix: string; name: string }> = [];
  readonly #default: string | undefined;

  constructor(upstreams: readonly UpstreamConfig[]) {
    let def: string | undefined;
    for (const u of upstreams) {
      if (u.kind !== "http2") continue;
      if (u.default) def = u.name;
      for (const h of u.hosts) {
        if (h.startsWith("*.")) this.#wildcards.push({ suffix: h.slice(1), name: u.name });
        else this.#exact.set(h, u.name);
      }
    }
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.#default = def;
  }

  /** The upstream for a Host header or :authority (port and case ignored), or undefined. */
  route(authority: string | undefined): string | undefined {
    const host = authority === undefined ? undefined : hostOf(authority);
    if (host !== undefined && host !== "") {
      const exact = this.#exact.get(host);
      if (exact !== undefined) return exact;
      for (const w of this.#wildcards) if (host.endsWith(w.suffix) && host.length > w.suffix.length) return w.name;
    }
    return this.#default;
  }
}

/** "API.internal:8443" → "api.internal"; "[::1]:80" → "::1"; a trailing dot is dropped. */
export function hostOf(authority: string): string {
  let h = authority.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end < 0 ? h : h.slice(1, end);
  }
  const colon = h.lastIndexOf(":");
  if (colon >= 0) h = h.slice(0, colon);
  return h.endsWith(".") ? h.slice(0, -1) : h;
}
