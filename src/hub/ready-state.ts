/**
 * The WebSocket ready states (the WebSocket API's and `ws`'s values), named once for every module
 * that checks a connection's state.
 *
 * @module
 */

/** `WebSocket.readyState` values. */
export const WebSocketState = {
  /** The handshake has not finished. */
  Connecting: 0,
  /** Open: the one state in which data frames may be sent. */
  Open: 1,
  /** A close frame has been sent or received; the closing handshake is under way. */
  Closing: 2,
  /** The connection is closed. */
  Closed: 3,
} as const;
