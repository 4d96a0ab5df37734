/**
 * Accept loops shared by the TCP/TLS listeners of `src/http2` and `src/backchannel`.
 * Private to the module.
 *
 * @module
 */

/**
 * Accepts connections until `listener` is closed. Each connection runs `serve`; its
 * promise is tracked in `pending` until it settles, and its failure goes to `onError`.
 *
 * @internal
 */
export async function _acceptEach(
  listener: Deno.Listener,
  serve: (conn: Deno.Conn) => Promise<void>,
  pending: Set<Promise<unknown>>,
  onError: (error: unknown) => void,
): Promise<void> {
  for (;;) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch {
      return; // the listener was closed
    }
    const task = serve(conn).catch(onError);
    pending.add(task);
    void task.finally(() => pending.delete(task));
  }
}

/**
 * Completes the TLS handshake of an accepted connection and returns the negotiated ALPN
 * protocol; a failed handshake closes the connection and rethrows.
 *
 * @internal
 */
export async function _tlsHandshake(conn: Deno.Conn): Promise<string | null> {
  try {
    return (await (conn as Deno.TlsConn).handshake()).alpnProtocol;
  } catch (error) {
    try {
      conn.close();
    } catch {
      // gone
    }
    throw error;
  }
}
