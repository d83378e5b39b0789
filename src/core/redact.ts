/**
 * Credentials in a target URL (`https://app:pw@host`, `nats://u:p@a:4222,u:p@b:4222`)
 * must never reach an error message, an event, stats or a metric label. Every
 * error about a target string is built from `redactTarget(raw)`, never from
 * the raw string.
 */

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\/\/?/i;
/** host, host:port, [v6] or [v6]:port: what a list item looks like when it carries no user-info. */
const PLAIN_HOST = /^\s*(\[[0-9a-z:.%]*\]|[^:@\s[\]/]*)(:\d*)?\s*$/i;

/**
 * Replaces the user-info of a URL-ish string with `***@`, item by item in a
 * comma-separated server list (`nats://a:4222,u:p@b:4222`). Everything in an
 * item up to its last "@" goes, since a password may itself hold "@", "/" or
 * ":". A password with an unencoded comma splits into fragments that do not
 * look like host[:port]; such fragments before an item with user-info are
 * masked too. Strings without "@" come back unchanged.
 */
export function redactTarget(raw: string): string {
  if (!raw.includes("@")) return raw;
  const scheme = SCHEME.exec(raw)?.[0] ?? "";
  const items = raw.slice(scheme.length).split(",");
  const lastWithCreds = items.reduce((last, item, i) => (item.includes("@") ? i : last), -1);
  const out = items.map((item, i) => {
    const at = item.lastIndexOf("@");
    if (at >= 0) return `***@${item.slice(at + 1)}`;
    return i < lastWithCreds && !PLAIN_HOST.test(item) ? "***" : item;
  });
  return scheme + out.join(",");
}

/** True when a URL-ish string carries user-info anywhere (host names and IPs never contain "@"). */
export function hasUserInfo(raw: string): boolean {
  return raw.includes("@");
}
