import dimse from 'dcmjs-dimse';

export type EchoOutcome = { ok: true; status: number } | { ok: false; reason: string };

/** C-ECHO: the first thing an admin tries against a new peer. */
export function echo(peer: { host: string; port: number; callingAeTitle: string; calledAeTitle: string; timeoutMs: number }): Promise<EchoOutcome> {
  return new Promise((resolve) => {
    const client = new dimse.Client();
    const request = new dimse.requests.CEchoRequest();
    let settled = false;
    const done = (outcome: EchoOutcome) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      }
    };
    const timer = setTimeout(() => done({ ok: false, reason: `no answer within ${peer.timeoutMs} ms` }), peer.timeoutMs);
    request.on('response', (response) => {
      const status = response.getStatus();
      done(status === 0 ? { ok: true, status } : { ok: false, reason: `C-ECHO status 0x${status.toString(16).padStart(4, '0')}` });
    });
    client.on('associationRejected', (rejection: { result: number; source: number; reason: number }) =>
      done({ ok: false, reason: `association rejected (result ${rejection.result}, source ${rejection.source}, reason ${rejection.reason})` }),
    );
    client.on('networkError', (error: Error) => done({ ok: false, reason: error.message }));
    client.on('closed', () => done({ ok: false, reason: 'the peer closed the connection' }));
    client.addRequest(request);
    client.send(peer.host, peer.port, peer.callingAeTitle, peer.calledAeTitle, { connectTimeout: peer.timeoutMs, associationTimeout: peer.timeoutMs });
  });
}
