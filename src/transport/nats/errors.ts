import { DialtoneError } from "../../core/errors.js";

/**
 * The server refused the member's credentials (`-ERR 'Authorization
 * Violation'`, an expired account or user JWT, an authentication timeout).
 * `reason` is the server's own words, which never hold the credentials.
 */
export class NatsAuthError extends DialtoneError {
  readonly target: string;
  readonly address: string;
  readonly reason: string;
  constructor(target: string, address: string, reason: string, options?: { cause?: unknown }) {
    super("ERR_DIALTONE_AUTH", `${target} (${address}): the server refused the credentials: ${reason}`, options);
    this.target = target;
    this.address = address;
    this.reason = reason;
  }
}

/** What kind of `-ERR` a server sent on a live connection. */
export type NatsServerErrorKind = "permission" | "auth" | "protocol";
