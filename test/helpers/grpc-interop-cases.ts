/**
 * What grpc's interop test descriptions (grpc/grpc doc/interop-test-descriptions.md)
 * fix for every client: the 14 cases that need no credentials or compression,
 * the payload sizes, the status messages and the echoed metadata keys. One copy
 * for the Connect/broker run (grpc-interop.test.ts) and the grpc-js run
 * (grpc-js-interop.test.ts).
 */
export const CASES = [
  "empty_unary",
  "large_unary",
  "client_streaming",
  "server_streaming",
  "ping_pong",
  "empty_stream",
  "timeout_on_sleeping_server",
  "cancel_after_begin",
  "cancel_after_first_response",
  "status_code_and_message",
  "special_status_message",
  "custom_metadata",
  "unimplemented_method",
  "unimplemented_service",
] as const;

export const SIZES_IN = [27182, 8, 1828, 45904];
export const SIZES_OUT = [31415, 9, 2653, 58979];
export const STATUS_MESSAGE = "test status message";
export const SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n";
export const ECHO_INITIAL = "x-grpc-test-echo-initial";
export const ECHO_TRAILING = "x-grpc-test-echo-trailing-bin";
/** Every call but timeout_on_sleeping_server's has this deadline: a hang fails the case instead of the suite. */
export const DEADLINE = 10_000;
