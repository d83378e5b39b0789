import type { Authenticator } from "@nats-io/transport-node";
import { ConfigError } from "../../core/errors.js";
import { checkKeys, describeType, optionalString, requireObject } from "../../core/options-check.js";

/** One way to authenticate, given once for every member of the channel. */
export interface NatsAuth {
  token?: string;
  user?: string;
  pass?: string;
  /** An nkey seed ("SU…"); the client signs the server's nonce with it. */
  nkeySeed?: string;
  /** Path of a .creds file (user JWT + nkey seed), read again at every connect so a rotated file is picked up. */
  credsFile?: string;
}

/**
 * The nats.js authenticator: called with the server's nonce on every
 * connect of every member, so credentials can rotate without a restart. It
 * returns `{ user, pass }`, `{ auth_token }`, `{ nkey, sig }` or
 * `{ jwt, nkey, sig }`.
 */
export type NatsAuthenticator = Authenticator;

const AUTH_KEYS: Readonly<Record<keyof NatsAuth, true>> = { token: true, user: true, pass: true, nkeySeed: true, credsFile: true };

/**
 * `auth` is checked key by key (`auth: { user, password }` used to connect
 * with no password at all) and holds one method: user/pass, token, nkey seed
 * or creds file. Credentials from the target URL count as `auth`; giving
 * both is a ConfigError rather than a guess at which one wins, and so is an
 * `authenticator` beside either.
 */
export function resolveAuth(
  input: unknown,
  fromUrl: NatsAuth | undefined,
  authenticator: unknown,
): { auth: NatsAuth; authenticator: NatsAuthenticator | undefined } {
  if (authenticator !== undefined && typeof authenticator !== "function") {
    throw new ConfigError("authenticator", `expected a function (nonce) => credentials, got ${describeType(authenticator)}`);
  }
  const auth = checkedAuth(input, fromUrl);
  if (authenticator !== undefined && Object.keys(auth).length > 0) {
    throw new ConfigError("authenticator", "give an authenticator or credentials (auth, or in the target URL), not both");
  }
  return { auth, authenticator: authenticator as NatsAuthenticator | undefined };
}

function checkedAuth(input: unknown, fromUrl: NatsAuth | undefined): NatsAuth {
  if (input === undefined) return fromUrl ?? {};
  const a = requireObject("auth", input);
  checkKeys("auth", a, Object.keys(AUTH_KEYS));
  const auth: NatsAuth = {};
  for (const k of Object.keys(AUTH_KEYS) as Array<keyof NatsAuth>) {
    const v = optionalString(`auth.${k}`, a[k]);
    if (v !== undefined) auth[k] = v;
  }
  const given = Object.keys(auth).length > 0;
  if (given && fromUrl !== undefined) throw new ConfigError("auth", "credentials are in both the target URL and auth: give them in one place");
  if (!given) return fromUrl ?? {};
  if (auth.pass !== undefined && auth.user === undefined) throw new ConfigError("auth.pass", "needs auth.user");
  const methods = [auth.user !== undefined, auth.token !== undefined, auth.nkeySeed !== undefined, auth.credsFile !== undefined].filter(Boolean).length;
  if (methods > 1) throw new ConfigError("auth", "give one of user/pass, token, nkeySeed or credsFile, not several");
  // A seed is checked for its shape here, so a typo fails at construction, not as an opaque dial error; the seed is never quoted.
  if (auth.nkeySeed !== undefined && !/^S[A-Z2-7]{50,}$/.test(auth.nkeySeed)) throw new ConfigError("auth.nkeySeed", 'expected an nkey seed ("S…", base32)');
  return auth;
}
