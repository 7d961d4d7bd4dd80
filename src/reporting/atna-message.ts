/**
 * DICOM Audit Messages (PS3.15 Annex A.5, the RFC 3881 schema with DICOM's changes) from audit rows. The gateway
 * keeps every audited event in its job store (store/audit-trail.ts); the forwarder (export/audit-forwarder.ts) sends
 * each row as one of these XML documents to the hospital's audit repository over syslog.
 *
 * Which DICOM event a row becomes, and why (PS3.15 A.5.3):
 * - dicom association.accepted / .rejected -> 110114 User Authentication, type 110122 Login. A.5.3.1's 110100
 *   Application Activity is for the application itself starting or stopping; an association is a remote node
 *   identifying itself to us (AE title, address, optionally a certificate), which is what User Authentication
 *   describes ("the user may be a person or a process"). A rejection is the same event with a failure outcome.
 * - dicom study.received -> 110104 DICOM Instances Transferred, action C (the gateway did not hold the instances
 *   before), the modality as Source (110153, requestor), the gateway as Destination (110152).
 * - dicom pacs.sent -> 110104 DICOM Instances Transferred, action C (the PACS did not hold these derived SC/SR
 *   instances, which the gateway created), the gateway as Source (requestor), the PACS as Destination.
 * - hl7 ris.sent -> 110106 Export, action R: the result leaves DICOM's domain as an HL7 ORU (A.5.3.5 names
 *   "conversion to another format" for an information system as export), the RIS as Destination.
 * - security tls.failed / caller.rejected -> 110113 Security Alert, type 110126 Node Authentication: a peer node
 *   failed to authenticate (certificate, TLS handshake, calling AE or address not allowed).
 * - admin user.login / user.logout / user.login-failed -> 110114 User Authentication (110122 Login / 110123 Logout).
 * - admin user.* changes -> 110113 Security Alert, 110137 User Security Attributes Changed; rules.* -> 110131
 *   Software Configuration; every other admin action (release, discard, reprocess, echo, refused requests) ->
 *   110113 Security Alert, 110132 Use of Restricted Function. Unknown categories fall back to 110132 too, so a row
 *   is never dropped for want of a mapping.
 *
 * Deliberate deviation: A.5.3.4 and A.5.3.5 also list the Patient as a participant object. Audit rows never hold a
 * patient's name or ID (issue 17), so messages name the study by its Study Instance UID only; the repository
 * correlates with the PACS through that UID.
 *
 * The element order follows the schema (A.5.1.1, RELAX NG compact): EventIdentification, ActiveParticipant+,
 * AuditSourceIdentification, ParticipantObjectIdentification*, and inside each the child elements in schema order.
 */

/** The fields of an audit row this mapping reads (store/audit-trail.ts AuditRowOut has them all). */
export interface AuditEventRow {
  id: number;
  at: number;
  category: string;
  action: string;
  user: string | null;
  role: string | null;
  address: string | null;
  target: string | null;
  outcome: 'success' | 'failure';
  /** JSON text: the structured facts of the event (see issue 17's list). */
  after: string | null;
  detail: string | null;
}

export interface AtnaSource {
  /** AuditSourceID: audit.sourceId, or the gateway's AE title. */
  sourceId: string;
  /** AuditEnterpriseSiteID, when configured. */
  enterpriseSiteId?: string;
  /** The gateway's own AE title (its UserID as a DICOM participant). */
  aeTitle: string;
}

interface Code {
  code: string;
  system: string;
  meaning: string;
}

const dcm = (code: string, meaning: string): Code => ({ code, system: 'DCM', meaning });

export const EVENT = {
  instancesTransferred: dcm('110104', 'DICOM Instances Transferred'),
  export: dcm('110106', 'Export'),
  securityAlert: dcm('110113', 'Security Alert'),
  userAuthentication: dcm('110114', 'User Authentication'),
} as const;

export const EVENT_TYPE = {
  login: dcm('110122', 'Login'),
  logout: dcm('110123', 'Logout'),
  nodeAuthentication: dcm('110126', 'Node Authentication'),
  softwareConfiguration: dcm('110131', 'Software Configuration'),
  restrictedFunction: dcm('110132', 'Use of Restricted Function'),
  userSecurityAttributes: dcm('110137', 'User Security Attributes Changed'),
} as const;

const ROLE_SOURCE = dcm('110153', 'Source Role ID');
const ROLE_DESTINATION = dcm('110152', 'Destination Role ID');
const ID_STUDY_UID = dcm('110180', 'Study Instance UID');
// RFC 3881's participant object ID type 12 (URI): listeners, destinations and console objects by name.
const ID_URI: Code = { code: '12', system: 'RFC-3881', meaning: 'URI' };

/** The longest list of SOP Instance UIDs written into one message (the count is always complete). */
const MAX_INSTANCE_UIDS = 100;

interface Participant {
  userId: string;
  requestor: boolean;
  role?: Code;
  address?: string | null;
}

interface ParticipantObject {
  id: string;
  typeCode: '2';
  role: '3' | '13';
  idType: Code;
  /** Required by the schema text (A.5.1.1: a name or a query); a non-identifying label, never a patient's. */
  name: string;
  sopClasses?: Array<{ uid?: string; instances: number; instanceUids?: string[] }>;
}

interface Message {
  event: Code;
  type?: Code;
  action: 'C' | 'R' | 'U' | 'D' | 'E';
  participants: Participant[];
  objects: ParticipantObject[];
}

/** Builds the DICOM Audit Message XML for one audit row. Never throws on a malformed `after`: it maps what it can. */
export function atnaMessage(row: AuditEventRow, source: AtnaSource): string {
  const facts = parseFacts(row.after);
  const message = mapRow(row, facts, source);
  const outcome = row.outcome === 'success' ? '0' : '4';
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>', '<AuditMessage>'];
  out.push(
    `<EventIdentification EventActionCode="${message.action}" EventDateTime="${new Date(row.at).toISOString()}" EventOutcomeIndicator="${outcome}">`,
    `<EventID ${codeAttributes(message.event)}/>`,
  );
  if (message.type !== undefined) out.push(`<EventTypeCode ${codeAttributes(message.type)}/>`);
  const description = outcomeDescription(row);
  if (description !== undefined) out.push(`<EventOutcomeDescription>${text(description)}</EventOutcomeDescription>`);
  out.push('</EventIdentification>');
  for (const p of message.participants) out.push(participantXml(p));
  const site = source.enterpriseSiteId === undefined ? '' : ` AuditEnterpriseSiteID="${attr(source.enterpriseSiteId)}"`;
  // Type 4: an application server process (PS3.15 A.5.1.2.1).
  out.push(
    `<AuditSourceIdentification${site} AuditSourceID="${attr(source.sourceId)}">`,
    '<AuditSourceTypeCode csd-code="4"/>',
    '</AuditSourceIdentification>',
  );
  for (const o of message.objects) out.push(objectXml(o));
  out.push('</AuditMessage>');
  return out.join('\n');
}

function mapRow(row: AuditEventRow, facts: Facts, source: AtnaSource): Message {
  const key = `${row.category}/${row.action}`;
  const us: Participant = { userId: source.aeTitle, requestor: false };
  switch (key) {
    case 'dicom/association.accepted':
    case 'dicom/association.rejected':
      return {
        event: EVENT.userAuthentication,
        type: EVENT_TYPE.login,
        action: 'E',
        participants: [
          { userId: facts.str('callingAe') ?? row.user ?? 'unknown', requestor: true, address: row.address },
          { ...us, userId: facts.str('calledAe') ?? source.aeTitle },
        ],
        objects: [],
      };
    case 'dicom/study.received':
      return {
        event: EVENT.instancesTransferred,
        action: 'C',
        participants: [
          {
            userId: facts.str('callingAe') ?? row.user ?? 'unknown',
            requestor: true,
            role: ROLE_SOURCE,
            address: facts.str('address') ?? row.address,
          },
          { ...us, userId: facts.str('calledAe') ?? source.aeTitle, role: ROLE_DESTINATION },
        ],
        objects: studyObject(row, facts, receivedSopClasses(facts)),
      };
    case 'dicom/pacs.sent': {
      const uids = facts.strings('sopInstanceUids');
      return {
        event: EVENT.instancesTransferred,
        action: 'C',
        participants: [
          { userId: row.user ?? source.aeTitle, requestor: true, role: ROLE_SOURCE },
          {
            userId: facts.str('peerAe') ?? facts.str('destination') ?? 'unknown',
            requestor: false,
            role: ROLE_DESTINATION,
            address: hostOf(row.address),
          },
        ],
        objects: studyObject(row, facts, [{ instances: uids.length, instanceUids: uids.slice(0, MAX_INSTANCE_UIDS) }]),
      };
    }
    case 'hl7/ris.sent':
      return {
        event: EVENT.export,
        action: 'R',
        participants: [
          { userId: source.aeTitle, requestor: true, role: ROLE_SOURCE },
          {
            userId: facts.str('destination') ?? 'unknown',
            requestor: false,
            role: ROLE_DESTINATION,
            address: facts.str('host') ?? hostOf(row.address),
          },
        ],
        objects: studyObject(row, facts),
      };
    case 'security/tls.failed':
    case 'security/caller.rejected': {
      const where = facts.str('listener') ?? facts.str('destination');
      const peer = row.user ?? facts.str('callingAe') ?? hostOf(row.address) ?? 'unknown';
      return {
        event: EVENT.securityAlert,
        type: EVENT_TYPE.nodeAuthentication,
        action: 'E',
        // The gateway reports the alert; the peer is the node that failed to authenticate.
        participants: [
          { userId: source.aeTitle, requestor: true },
          { userId: peer, requestor: false, address: facts.str('address') ?? row.address },
        ],
        objects: where === undefined ? [] : [namedObject(where, '13')],
      };
    }
    default:
      return adminMessage(row, source);
  }
}

function adminMessage(row: AuditEventRow, source: AtnaSource): Message {
  const actor: Participant = { userId: row.user ?? 'unknown', requestor: true, address: row.address };
  const us: Participant = { userId: source.aeTitle, requestor: false };
  if (row.action === 'user.login' || row.action === 'user.login-failed' || row.action === 'user.logout') {
    return {
      event: EVENT.userAuthentication,
      type: row.action === 'user.logout' ? EVENT_TYPE.logout : EVENT_TYPE.login,
      action: 'E',
      participants: [actor, us],
      objects: [],
    };
  }
  const type = row.action.startsWith('user.')
    ? EVENT_TYPE.userSecurityAttributes
    : row.action.startsWith('rules.')
      ? EVENT_TYPE.softwareConfiguration
      : EVENT_TYPE.restrictedFunction;
  const study = row.target?.match(/^study ([0-9.]+)$/)?.[1];
  const objects: ParticipantObject[] =
    study !== undefined
      ? [{ id: study, typeCode: '2', role: '3', idType: ID_STUDY_UID, name: study }]
      : row.target !== null && row.target !== ''
        ? [namedObject(row.target, '13')]
        : [];
  return { event: EVENT.securityAlert, type, action: 'E', participants: [actor, us], objects };
}

function studyObject(
  row: AuditEventRow,
  facts: Facts,
  sopClasses?: ParticipantObject['sopClasses'],
): ParticipantObject[] {
  const uid = facts.str('studyInstanceUid') ?? row.target?.match(/^study (.+)$/)?.[1];
  if (uid === undefined) return [];
  // The schema wants a name or a query; a study has no name of its own, and a patient's must never appear here.
  const object: ParticipantObject = { id: uid, typeCode: '2', role: '3', idType: ID_STUDY_UID, name: uid };
  if (sopClasses !== undefined) object.sopClasses = sopClasses;
  return [object];
}

/**
 * SOPClass elements need a NumberOfInstances. study.received carries the classes and the total: with one class the
 * total is that class's; with several (rare for a chest X-ray) and no per-class counts, one SOPClass without a UID
 * carries the total (the schema makes UID optional), so no count is invented.
 */
function receivedSopClasses(facts: Facts): ParticipantObject['sopClasses'] {
  const classes = facts.strings('sopClassUids');
  const total = facts.num('instances') ?? 0;
  const byClass = facts.counts('instancesBySopClass');
  if (byClass !== undefined) return Object.entries(byClass).map(([uid, instances]) => ({ uid, instances }));
  if (classes.length === 1) return [{ uid: classes[0], instances: total }];
  return [{ instances: total }];
}

function namedObject(name: string, role: '13'): ParticipantObject {
  return { id: name, typeCode: '2', role, idType: ID_URI, name };
}

function outcomeDescription(row: AuditEventRow): string | undefined {
  if (row.detail !== null && row.detail !== '') return row.detail;
  return undefined;
}

function participantXml(p: Participant): string {
  const address =
    p.address === undefined || p.address === null || p.address === '' || p.address === 'local' ? undefined : p.address;
  const nap =
    address === undefined
      ? ''
      : ` NetworkAccessPointID="${attr(address)}" NetworkAccessPointTypeCode="${isIpAddress(address) ? '2' : '1'}"`;
  const open = `<ActiveParticipant UserID="${attr(p.userId)}" UserIsRequestor="${p.requestor ? 'true' : 'false'}"${nap}`;
  if (p.role === undefined) return `${open}/>`;
  return `${open}>\n<RoleIDCode ${codeAttributes(p.role)}/>\n</ActiveParticipant>`;
}

function objectXml(o: ParticipantObject): string {
  const out = [
    `<ParticipantObjectIdentification ParticipantObjectID="${attr(o.id)}" ParticipantObjectTypeCode="${o.typeCode}" ParticipantObjectTypeCodeRole="${o.role}">`,
    `<ParticipantObjectIDTypeCode ${codeAttributes(o.idType)}/>`,
    `<ParticipantObjectName>${text(o.name)}</ParticipantObjectName>`,
  ];
  if (o.sopClasses !== undefined && o.sopClasses.length > 0) {
    out.push('<ParticipantObjectDescription>');
    for (const c of o.sopClasses) {
      const uid = c.uid === undefined ? '' : ` UID="${attr(c.uid)}"`;
      const instances = c.instanceUids ?? [];
      if (instances.length === 0) out.push(`<SOPClass${uid} NumberOfInstances="${c.instances}"/>`);
      else {
        out.push(`<SOPClass${uid} NumberOfInstances="${c.instances}">`);
        for (const i of instances) out.push(`<Instance UID="${attr(i)}"/>`);
        out.push('</SOPClass>');
      }
    }
    out.push('</ParticipantObjectDescription>');
  }
  out.push('</ParticipantObjectIdentification>');
  return out.join('\n');
}

function codeAttributes(c: Code): string {
  return `csd-code="${attr(c.code)}" codeSystemName="${attr(c.system)}" originalText="${attr(c.meaning)}"`;
}

/** host:port -> host (IPv6 in brackets kept whole); null stays null. */
function hostOf(address: string | null): string | null {
  if (address === null) return null;
  const bracketed = address.match(/^\[([^\]]+)\](?::\d+)?$/);
  if (bracketed !== null) return bracketed[1] ?? address;
  const parts = address.split(':');
  return parts.length === 2 ? (parts[0] ?? address) : address;
}

function isIpAddress(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));
}

// XML 1.0 allows tab, LF, CR and U+0020 upwards (minus surrogates and U+FFFE/FFFF): anything else cannot appear
// even escaped, so it becomes U+FFFD rather than producing a document the repository rejects.
const XML_INVALID = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function text(s: string): string {
  return s.replace(XML_INVALID, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function attr(s: string): string {
  return text(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}

interface Facts {
  str(key: string): string | undefined;
  num(key: string): number | undefined;
  strings(key: string): string[];
  counts(key: string): Record<string, number> | undefined;
}

function parseFacts(json: string | null): Facts {
  let value: unknown;
  try {
    value = json === null ? {} : JSON.parse(json);
  } catch {
    value = {};
  }
  const o: Record<string, unknown> =
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  return {
    str: (k) => (typeof o[k] === 'string' && o[k] !== '' ? o[k] : undefined),
    num: (k) => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? o[k] : undefined),
    strings: (k) => {
      const v = o[k];
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    },
    counts: (k) => {
      const v = o[k];
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      const entries = Object.entries(v as Record<string, unknown>).filter(
        (e): e is [string, number] => typeof e[1] === 'number' && Number.isInteger(e[1]) && e[1] >= 0,
      );
      return entries.length === 0 ? undefined : Object.fromEntries(entries);
    },
  };
}
