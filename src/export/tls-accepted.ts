import type tls from 'node:tls';

/**
 * Calls `accepted` once the server has accepted a client TLS connection, so that nothing is written on one it is
 * about to refuse. TLS 1.2: at once (the handshake already included the server's verdict). TLS 1.3: the client's
 * side of the handshake ends before the server has judged our certificate (or its absence); a server that refuses
 * it closes the connection, one that accepts it sends its session ticket at once. So: after the first ticket, or
 * after `maxWaitMs` for a server that sends none; never once the socket is destroyed.
 */
export function whenServerAccepted(socket: tls.TLSSocket, maxWaitMs: number, accepted: () => void): void {
  if (socket.getProtocol() !== 'TLSv1.3') {
    accepted();
    return;
  }
  const timer = setTimeout(settle, maxWaitMs);
  // Not from inside the 'session' event: it fires in the middle of OpenSSL reading the record, and a write made
  // there corrupts the stream (or is never sent); the next turn of the loop is safe.
  const onTicket = () => setImmediate(settle);
  socket.once('session', onTicket);
  socket.once('close', () => clearTimeout(timer));
  function settle(): void {
    clearTimeout(timer);
    socket.off('session', onTicket);
    if (!socket.destroyed) accepted();
  }
}
