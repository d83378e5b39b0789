import { isIP } from "node:net";
import { parseHostPort } from "../../core/address.js";
import { ConfigError, TargetError } from "../../core/errors.js";
import { redactTarget } from "../../core/redact.js";
import type { NatsAuth } from "./connector.js";

/** What a server list says, with any credentials taken out of it. */
export interface ServerList {
  /** The list as the channel shows it: `nats://a:4222,b:4222` (`tls://` when any server asked for TLS), never with credentials. */
  target: string;
  /** `tls://` on any server: TLS is required on every member (as in the Go and Rust clients). */
  tlsRequired: boolean;
  /** host[:port] items, without scheme or user-info, in the order given. */
  servers: string[];
  /** The one set of credentials the servers carried, if any. */
  credentials: NatsAuth | undefined;
}

/** A scheme at the start of one list item; any other scheme (http://, ws://) is refused by name. */
const ITEM_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/**
 * Reads every server-list form NATS users write: `nats://a:4222,b:4222`,
 * `nats://a:4222,nats://b:4222` (the Go client and the CLI), the same with
 * spaces, an array of URLs, `tls://…`, and `user:pass@` or `token@` on any
 * item. Credentials move out (see splitUserInfo); no message built here
 * quotes an item once the list holds user-info, since it could be half a
 * password.
 */
export function parseServerList(input: string | readonly string[]): ServerList {
  const raw = typeof input === "string" ? input : input.join(",");
  const shown = redactTarget(raw);
  const secret = raw.includes("@");
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0) throw new TargetError(shown, "no servers listed");
  let tlsRequired = false;
  let credentials: NatsAuth | undefined;
  const servers = items.map((item, i) => {
    const m = ITEM_SCHEME.exec(item);
    let rest = item;
    if (m) {
      const scheme = (m[1] as string).toLowerCase();
      if (scheme !== "nats" && scheme !== "tls") {
        throw new TargetError(shown, `expected nats://host:port[,nats://host:port…] (or "tls://"), got scheme "${secret ? "…" : scheme}:" in server ${i + 1}`);
      }
      if (scheme === "tls") tlsRequired = true;
      rest = item.slice(m[0].length);
    } else if (i === 0) {
      throw new TargetError(shown, 'expected nats://host:port[,host:port…] (or "tls://")');
    }
    rest = rest.replace(/\/$/, "");
    const at = rest.lastIndexOf("@");
    const server = at < 0 ? rest : rest.slice(at + 1);
    if (at >= 0) {
      const found = parseUserInfo(rest.slice(0, at), shown);
      if (credentials !== undefined && !sameAuth(credentials, found)) {
        throw new ConfigError("target", "the servers carry different credentials: give one set (or use auth)");
      }
      credentials = found;
    }
    try {
      parseHostPort(server, shown, 4222);
    } catch (err) {
      // Rethrown without the item when the list holds user-info: parseHostPort quotes its input.
      if (!secret) throw err;
      throw new TargetError(shown, `server ${i + 1} of the list is not host[:port] (percent-encode "@", ":" and "," in credentials)`);
    }
    return server;
  });
  const scheme = tlsRequired ? "tls" : "nats";
  // Kept as written when it is one plain string (its spelling is the metric label users already chart); rebuilt otherwise.
  const plain =
    typeof input === "string" &&
    !secret &&
    ITEM_SCHEME.exec(items[0] as string)?.[1]?.toLowerCase() === scheme &&
    items.slice(1).every((s) => !ITEM_SCHEME.test(s)) &&
    !/\s/.test(raw);
  return { target: plain ? raw : `${scheme}://${servers.join(",")}`, tlsRequired, servers, credentials };
}

/** The host names among the servers (IP literals excluded), first seen first. */
export function hostNames(servers: readonly string[], target: string): string[] {
  const names: string[] = [];
  for (const s of servers) {
    const { host } = parseHostPort(s, target, 4222);
    if (!isIP(host) && !names.includes(host.toLowerCase())) names.push(host.toLowerCase());
  }
  return names;
}

/** `user:pass` is user/pass, a bare `name` is a token (as nats.go reads it), both percent-decoded. */
function parseUserInfo(userInfo: string, shown: string): NatsAuth {
  const colon = userInfo.indexOf(":");
  let user: string;
  let pass: string | undefined;
  try {
    user = decodeURIComponent(colon < 0 ? userInfo : userInfo.slice(0, colon));
    pass = colon < 0 ? undefined : decodeURIComponent(userInfo.slice(colon + 1));
  } catch {
    throw new TargetError(shown, "malformed percent-encoding in the credentials");
  }
  if (user === "") throw new TargetError(shown, "credentials without a user name");
  return pass === undefined ? { token: user } : { user, pass };
}

function sameAuth(a: NatsAuth, b: NatsAuth): boolean {
  return a.user === b.user && a.pass === b.pass && a.token === b.token;
}
