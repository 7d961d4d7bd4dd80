import test from 'ava';
import { Writable } from 'node:stream';
import { RisMllpDestination } from '../../src/export/ris-mllp-destination.js';
import { createLogger } from '../../src/logging/logger.js';
import { LISTENER_PATIENT_NAME, LISTENER_PATIENT_TEXT, startHl7Listener } from '../helpers/hl7-listener.js';

// What the RIS writes back (MSA-3, ERR) is the RIS's free text and often names the patient: it must reach the
// debug log only, never a warn/error line or the outcome's reason (which the store keeps and `jobs` prints).

const MESSAGE = (id: string) =>
  `MSH|^~\\&|CXR_GATEWAY|RAD|RIS|HOSP|20260101120000||ORU^R01^ORU_R01|${id}|P|2.5.1\rPID|1||X1\r`;

function capture(level: 'info' | 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level,
    format: 'json',
    stream: new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n'))
          if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  });
  return { logger, lines };
}

for (const [response, kind, cause] of [
  ['ae-phi', 'retry', 'application-error'],
  ['ar-phi', 'parked', 'application-reject'],
] as const) {
  test(`${response}: the outcome and the warn line give code and length; the patient text is at debug only`, async (t) => {
    const listener = await startHl7Listener({ responses: [response] });
    t.teardown(() => listener.stop());
    const { logger, lines } = capture('debug');
    const destination = new RisMllpDestination({
      name: 'ris',
      sender: {
        host: '127.0.0.1',
        port: listener.port,
        connectTimeoutMs: 3000,
        responseTimeoutMs: 3000,
        ackMode: 'original',
      },
      logger,
    });
    await destination.start();
    t.teardown(() => destination.stop());
    const outcome = await destination.deliver([{ controlId: 'CTRL1', message: MESSAGE('CTRL1') }]);
    t.like(outcome, { kind, cause });
    const reason = (outcome as { reason: string }).reason;
    t.regex(reason, /characters of text, logged at debug level only/);
    if (response === 'ae-phi') t.regex(reason, /error code 207/);
    const patient = /DOE|JANE|4711/;
    t.notRegex(reason, patient);
    const above = lines.filter((l) => l.level !== 'debug');
    t.true(above.some((l) => l.event === 'EXPORT-6012' && l.cause === cause));
    t.notRegex(JSON.stringify(above), patient);
    // At debug the admin troubleshooting on site sees what the RIS said (this is what the check above would find).
    const debug = lines.find((l) => l.message === 'RIS answer text');
    t.true(String(debug?.peerText).includes(LISTENER_PATIENT_TEXT));
    if (response === 'ae-phi') t.true(String(debug?.peerText).includes(LISTENER_PATIENT_NAME));
  });
}
