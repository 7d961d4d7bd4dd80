import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { dicomDateTimeToHl7, formatHl7DateTime, toHl7DateTime } from '../../src/reporting/hl7-time.js';

// Each ava test file runs in its own process: the zone set here is seen by every Date below.
process.env.TZ = 'Europe/Berlin';

test('renders a Date in local time with its UTC offset', (t) => {
  t.is(formatHl7DateTime(new Date('2024-01-15T09:05:07Z')), '20240115100507+0100');
  t.is(formatHl7DateTime(new Date('2024-07-15T09:05:07Z')), '20240715110507+0200');
});

test('passes a well-formed DTM string through and refuses a malformed one', (t) => {
  t.is(toHl7DateTime('20240115', 'x'), '20240115');
  t.is(toHl7DateTime('20240115100507.1234-0500', 'x'), '20240115100507.1234-0500');
  t.throws(() => toHl7DateTime('2024-01-15', 'observation time (OBR-7)'), {
    instanceOf: GatewayError,
    message: /observation time \(OBR-7\) '2024-01-15'/,
  });
  t.throws(() => toHl7DateTime('20240115100507.12345', 'x'), { instanceOf: GatewayError });
  t.throws(() => formatHl7DateTime(new Date(Number.NaN)), { instanceOf: GatewayError });
});

test('joins DICOM StudyDate and StudyTime, cutting the fraction to four digits', (t) => {
  t.is(dicomDateTimeToHl7('20240115', '093015.123456'), '20240115093015.1234');
  t.is(dicomDateTimeToHl7('20240115', '0930'), '202401150930');
  t.is(dicomDateTimeToHl7('20240115 ', '09:30:15 '), '20240115093015');
  t.is(dicomDateTimeToHl7('20240115'), '20240115');
  t.throws(() => dicomDateTimeToHl7('2024011'), { instanceOf: GatewayError, message: /YYYYMMDD/ });
  t.throws(() => dicomDateTimeToHl7('20240115', '9:3'), { instanceOf: GatewayError, message: /HHMMSS/ });
  t.throws(() => dicomDateTimeToHl7('20240115', '12345'), { instanceOf: GatewayError, message: /HHMMSS/ });
});
