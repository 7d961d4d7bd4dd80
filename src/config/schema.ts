import { z } from 'zod';
import os from 'node:os';
import { DEFAULT_TRANSFER_SYNTAXES, isKnownTransferSyntax } from '../dicom/transfer-syntaxes.js';
import { DEFAULT_STORAGE_SOP_CLASSES } from '../dicom/sop-classes.js';
import { isValidUid } from '../dicom/uids.js';
import { BACKEND_ORDER } from '../inference/backend-types.js';
import { ENGINE_ORDER } from '../engines/engine-types.js';
import { ONNX_EXECUTION_PROVIDERS } from '../inference/onnx/onnx-types.js';
import { DEFAULT_ELIGIBILITY } from '../inference/eligibility.js';
import { lrpOptionsSchema } from '../lrp/composites.js';
import { ruleSchema } from '../routing/rule-schema.js';
import { DEFAULT_JPEG_QUALITY, SC_ENCODINGS } from '../reporting/sc-encoding-types.js';
import { isValidCron } from './cron-expression.js';

/**
 * A PEM file (certificate, key or CA) named in the config: never the PEM itself inline, so that keys stay in files
 * with their own permissions. A relative path is relative to the config file's folder (load-config.ts), like
 * storage.dataDir; the daemon re-reads the file on reload or reconnection, whatever its working folder.
 */
export const pemFile = z
  .string()
  .min(1)
  .refine((p) => !p.includes('-----BEGIN'), 'must name a file (PEM); inline PEM is not accepted');

/** The models of the embedded default, relative to the package root (see load-config's resolvePaths). */
export const DEFAULT_MODELS: Readonly<Record<string, string>> = { demo: 'models/demo' };

// AE titles are at most 16 characters of the default character repertoire, without backslash or
// control characters; leading/trailing spaces are not significant (PS3.5 6.2).
const aeTitle = z
  .string()
  .transform((s) => s.trim())
  .pipe(
    z
      .string()
      .min(1, 'an AE title must not be empty')
      .max(16, 'an AE title has at most 16 characters')
      .regex(/^[\x20-\x5b\x5d-\x7e]+$/, 'an AE title uses printable ASCII without backslash'),
  );

const uid = z.string().refine(isValidUid, 'must be a DICOM UID: digits and dots, at most 64 characters');

const allowedCaller = z
  .object({
    aeTitle,
    host: z.string().min(1).optional().describe('IP address the caller must connect from; any address when left out'),
  })
  .strict();

/** A certificate's subject (full DN as `CN=..,O=..`, `CN=name`, or the bare common name) bound to one calling AE. */
const allowedSubject = z.object({ subject: z.string().min(1), aeTitle }).strict();

/**
 * The DICOM TLS listener (PS3.15 B.9, BCP 195 profile: TLS 1.2+, ECDHE with AEAD ciphers). Key and certificates
 * are read from the named files (never inline PEM), again on SIGHUP.
 */
export const dicomTlsSchema = z
  .object({
    /** 2762 is the port IANA registered for DICOM over TLS. */
    port: z.number().int().min(1).max(65535).default(2762),
    certFile: pemFile,
    keyFile: pemFile,
    /** The CA bundle client certificates must chain to; required for mutual TLS. */
    caFile: pemFile.optional(),
    /** Mutual TLS: a client without a certificate signed by caFile is refused at the handshake. */
    requireClientCertificate: z.boolean().default(false),
    /** When set, an association is accepted only if its calling AE is the one bound to the client's certificate subject. */
    allowedSubjects: z.array(allowedSubject).min(1).optional(),
  })
  .strict()
  .refine((t) => !t.requireClientCertificate || t.caFile !== undefined, {
    message: 'requireClientCertificate needs caFile (the CA client certificates must be signed by)',
    path: ['caFile'],
  })
  .refine((t) => t.allowedSubjects === undefined || t.requireClientCertificate, {
    message: 'allowedSubjects needs requireClientCertificate: true (without a certificate there is no subject)',
    path: ['allowedSubjects'],
  });

/** TLS toward a DICOM peer (our SCU): the server's certificate is verified against caFile unless verifyServer is false. */
export const dicomClientTlsSchema = z
  .object({
    caFile: pemFile.optional(),
    certFile: pemFile.optional(),
    keyFile: pemFile.optional(),
    verifyServer: z.boolean().default(true),
  })
  .strict()
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    message: 'certFile and keyFile go together (a client certificate needs its key)',
    path: ['keyFile'],
  });

export const dicomSchema = z
  .object({
    aeTitle: aeTitle.default('CXR_GATEWAY'),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(11112),
    maxPduLength: z
      .number()
      .int()
      .min(4096)
      .max(4 * 1024 * 1024)
      .default(262144),
    maxAssociations: z.number().int().min(1).max(1000).default(16),
    /** The ARTIM timer (PS3.8 9.1.5): a connection that sends no A-ASSOCIATE-RQ within it is closed, and so is one we rejected, released or aborted that the peer keeps open. */
    associationRequestTimeoutSeconds: z.number().positive().max(3600).default(10),
    /** Sockets one source address may hold at once; a newcomer over it displaces that source's idle ones. */
    maxConnectionsPerSource: z.number().int().min(1).max(10000).default(32),
    idleTimeoutSeconds: z.number().positive().max(86400).default(60),
    shutdownGraceSeconds: z.number().min(0).max(600).default(30),
    callers: z
      .object({
        allowAny: z.boolean().default(true),
        allowed: z.array(allowedCaller).default([]),
      })
      .strict()
      .default({ allowAny: true, allowed: [] }),
    acceptedSopClasses: z
      .array(uid)
      .min(1)
      .default([...DEFAULT_STORAGE_SOP_CLASSES]),
    transferSyntaxes: z
      .array(uid.refine(isKnownTransferSyntax, 'is not a transfer syntax this gateway can store'))
      .min(1)
      .default([...DEFAULT_TRANSFER_SYNTAXES]),
    /** Whether the plain (unencrypted) listener on `port` runs; false leaves only the TLS listener. */
    plain: z.boolean().default(true),
    /** The TLS listener, on its own port beside the plain one; same upper layer, admission and callers. */
    tls: dicomTlsSchema.optional(),
  })
  .strict()
  .refine((d) => d.plain || d.tls !== undefined, {
    message: 'dicom.plain: false needs dicom.tls, or nothing would listen',
    path: ['plain'],
  })
  .refine((d) => d.tls === undefined || !d.plain || d.tls.port !== d.port, {
    message: 'dicom.tls.port must differ from dicom.port while the plain listener runs',
    path: ['tls', 'port'],
  });

// Issue 20: the job store's engine. Absent: the embedded SQLite file under dataDir (the default, unchanged).
// A postgres:// URL: a PostgreSQL database that several nodes may share. The URL is written in the config and
// appears in listings, so it must not carry the password: that comes from storage.postgres.passwordFile.
const postgresUrl = z
  .string()
  .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must be a postgres:// or postgresql:// URL')
  .refine((u) => URL.canParse(u), 'is not a valid URL')
  .refine(
    (u) => !URL.canParse(u) || new URL(u).password === '',
    'must not contain a password: put it in a file and name it in storage.postgres.passwordFile',
  );

export const storagePostgresSchema = z
  .object({
    /** The server cancels a statement that runs longer. */
    statementTimeoutSeconds: z.number().positive().max(3600).default(30),
    /** Connecting (TCP, TLS, authentication) may take this long. */
    connectTimeoutSeconds: z.number().positive().max(600).default(10),
    /** A file holding the database password (one trailing newline ignored); relative to the config. */
    passwordFile: z.string().min(1).optional(),
  })
  .strict();

// issue 20, several nodes: who this node is in the cluster and which of the work it takes. On SQLite (one node)
// the defaults give the one node every role, as before. A lease must outlive a couple of missed heartbeats, or a
// node under load would lose work it is still doing.
export const NODE_ROLES = ['receive', 'analyze', 'deliver'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];
export const clusterSchema = z
  .object({
    nodeName: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'use letters, digits, _ . - (at most 64)')
      .optional(),
    roles: z
      .array(z.enum(NODE_ROLES))
      .min(1, 'a node needs at least one role')
      .refine((r) => new Set(r).size === r.length, 'a role is listed twice')
      .default(() => [...NODE_ROLES]),
    leaseSeconds: z.number().int().min(3).max(3600).default(30),
    heartbeatSeconds: z.number().int().min(1).max(1200).default(10),
  })
  .strict()
  .refine((c) => c.leaseSeconds > 2 * c.heartbeatSeconds, {
    message: 'cluster.leaseSeconds must be more than twice cluster.heartbeatSeconds',
    path: ['leaseSeconds'],
  });
export type ClusterConfig = z.infer<typeof clusterSchema>;

/**
 * The node's name: cluster.nodeName, else the host name (resolved here, not in the defaults, so that the example
 * config stays the same on every host), cut to what a node name allows.
 */
export function nodeNameOf(cluster: ClusterConfig): string {
  if (cluster.nodeName !== undefined) return cluster.nodeName;
  const name = os
    .hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 64);
  return name === '' ? 'node' : name;
}

export const storageSchema = z
  .object({
    dataDir: z.string().min(1).default('var'),
    minFreeDiskMB: z.number().min(0).default(1024),
    database: postgresUrl.optional(),
    postgres: storagePostgresSchema.default({ statementTimeoutSeconds: 30, connectTimeoutSeconds: 10 }),
  })
  .strict();

export const assemblySchema = z
  .object({
    quietPeriodSeconds: z.number().min(0).max(86400).default(10),
  })
  .strict();

const providerRank = (p: string | undefined): number =>
  (ONNX_EXECUTION_PROVIDERS as readonly string[]).indexOf(p ?? '');

/** The ONNX Runtime engine's settings. */
export const onnxRuntimeSchema = z
  .object({
    /** Tried in this order, the first that runs the model is used; each name at most once. */
    executionProviders: z
      .array(z.enum(ONNX_EXECUTION_PROVIDERS))
      .min(1)
      // Strictly rising ranks: each provider at most once, and a faster one never after a slower one.
      .refine(
        (list) => list.every((p, i) => i === 0 || providerRank(list[i - 1]) < providerRank(p)),
        `list each execution provider at most once, in the order ${ONNX_EXECUTION_PROVIDERS.join(', ')}`,
      )
      .default(() => [...ONNX_EXECUTION_PROVIDERS]),
    /** Intra-op threads of one inference (CPU provider); auto: the cores, shared out among the workers. */
    intraOpThreads: z.union([z.literal('auto'), z.number().int().min(1).max(1024)]).default('auto'),
  })
  .strict();

export const inferenceSchema = z
  .object({
    /** The model (a name from `models`) that commands use when none is given; rules name their own. */
    defaultModel: z.string().min(1).default('demo'),
    /** auto: ONNX Runtime, then TF.js when it cannot start (the reason is logged); naming one forces it. */
    engine: z.enum(['auto', ...ENGINE_ORDER]).default('auto'),
    /** The TF.js engine's backend. */
    backend: z.enum(['auto', ...BACKEND_ORDER]).default('auto'),
    onnxruntime: onnxRuntimeSchema.default(() => onnxRuntimeSchema.parse({})),
    /** Let the webgpu backend run on a software adapter (lavapipe, SwiftShader): for tests only, slower than wasm. */
    allowSoftwareGpu: z.boolean().default(false),
    workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default('auto'),
    maxBatch: z.number().int().min(1).max(64).default(8),
    /** An image on which inference workers died this many times is failed with that reason (a poison image). */
    maxCrashesPerImage: z.number().int().min(1).max(100).default(3),
    eligibility: z
      .object({
        modalities: z
          .array(z.string().min(1))
          .min(1)
          .default([...DEFAULT_ELIGIBILITY.modalities]),
        bodyParts: z
          .array(z.string().min(1))
          .min(1)
          .default([...DEFAULT_ELIGIBILITY.bodyParts]),
        viewPositions: z
          .array(z.string().min(1))
          .min(1)
          .default([...DEFAULT_ELIGIBILITY.viewPositions]),
      })
      .strict()
      .default(() => ({
        modalities: [...DEFAULT_ELIGIBILITY.modalities],
        bodyParts: [...DEFAULT_ELIGIBILITY.bodyParts],
        viewPositions: [...DEFAULT_ELIGIBILITY.viewPositions],
      })),
  })
  .strict();

export const explainSchema = lrpOptionsSchema.extend({
  /** Which class each heatmap explains: the predicted one, a named class, or every class. */
  target: z.union([z.enum(['predicted', 'all']), z.string().min(1)]).default('predicted'),
});

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'use letters, digits, _ . - (at most 64)');
const hostPort = { host: z.string().min(1), port: z.number().int().min(1).max(65535) };

// Series layout (issue 19 item 2): IHE IOCM withdrawal of a superseded revision, per PACS destination.
const supersededKeys = {
  /**
   * With a corrected revision, send a Key Object Selection rejection note ("Rejected for Quality Reasons") listing
   * the superseded revision's objects, after the new ones. Off for a PACS that files KOS objects but does not act
   * on them and would only show one more series.
   */
  rejectSuperseded: z.boolean().default(true),
};

export const pacsDestinationSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('dicom'),
      name,
      ...hostPort,
      /** The PACS's AE title (called AE). */
      aeTitle: aeTitle,
      /** Our AE title towards this PACS; dicom.aeTitle when left out. */
      callingAeTitle: aeTitle.optional(),
      connectTimeoutSeconds: z.number().positive().default(10),
      responseTimeoutSeconds: z.number().positive().default(60),
      /** DICOM TLS toward this PACS; plain TCP when left out. */
      tls: dicomClientTlsSchema.optional(),
      ...supersededKeys,
      // Storage commitment (issue 19): after the C-STOREs, an N-ACTION asks the PACS to commit every object; the
      // delivery (and so the RIS report after it) waits for the N-EVENT-REPORT, which the PACS sends on the request's
      // association or to our SCP (dicom.aeTitle/port, registered in the PACS). Off by default.
      storageCommitment: z
        .object({
          enabled: z.boolean().default(false),
          /** How long the report may take; none by then makes the delivery a retry (objects re-sent, re-committed). */
          timeoutSeconds: z.number().positive().max(86400).default(300),
        })
        .strict()
        .default({ enabled: false, timeoutSeconds: 300 }),
    })
    .strict(),
  z.object({ type: z.literal('folder'), name, path: z.string().min(1), ...supersededKeys }).strict(),
  // DICOMweb STOW-RS (issue 19): secrets live in files (like TLS keys), never inline in the config.
  z
    .object({
      type: z.literal('dicomweb'),
      name,
      /** The server's DICOMweb root; STOW-RS posts to {baseUrl}/studies. */
      baseUrl: z
        .string()
        .url()
        .refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL'),
      auth: z
        .discriminatedUnion('type', [
          z.object({ type: z.literal('none') }).strict(),
          /** passwordFile/tokenFile: a file holding the secret (one trailing newline ignored); relative to the config. */
          z.object({ type: z.literal('basic'), username: z.string().min(1), passwordFile: z.string().min(1) }).strict(),
          z.object({ type: z.literal('bearer'), tokenFile: z.string().min(1) }).strict(),
        ])
        .default({ type: 'none' }),
      /** For an https baseUrl: the CA the server's certificate must chain to; the system's trust store when left out. */
      tls: z.object({ caFile: pemFile.optional() }).strict().optional(),
      timeoutSeconds: z.number().positive().default(120),
      ...supersededKeys,
    })
    .strict(),
]);

/** An HL7 coded element (CWE-1..3) as the site writes it. */
const hl7Code = z
  .object({ code: z.string().trim().min(1), text: z.string().default(''), codingSystem: z.string().default('') })
  .strict();

const hl7Header = {
  sendingApplication: z.string().min(1).default('CXR_GATEWAY'),
  sendingFacility: z.string().default(''),
  receivingApplication: z.string().default(''),
  receivingFacility: z.string().default(''),
  /**
   * ORC-2/OBR-2 and ORC-3/OBR-3 come from the source's Request Attributes Sequence (Placer/Filler Order Number);
   * where it has none: 'accession' sends the accession number there (as before), 'empty' leaves the field empty.
   */
  orderNumberFallback: z.enum(['accession', 'empty']).default('accession'),
  /** OBX-3 codes the site's interface engine expects instead of ours (99CXR); each left out keeps ours. */
  observationCodes: z
    .object({
      classification: hl7Code,
      heatmapSeries: hl7Code,
      model: hl7Code,
      sourceImage: hl7Code,
      heatmapImage: hl7Code,
    })
    .partial()
    .strict()
    .default({}),
  /** OBX-3 of a class's probability, by the model's class name; CXR-PROB-<CLASS>^Probability <class>^99CXR otherwise. */
  probabilityCodes: z.record(z.string().min(1), hl7Code).default({}),
};

// MLLP over TLS (issue 17): files named here, never inline PEM.
const mllpTlsSchema = z
  .object({
    /** PEM CA certificate(s) the RIS's certificate must chain to; the system's trust store when left out. */
    caFile: pemFile.optional(),
    /** Our client certificate and key (PEM), for a RIS that asks for one (mutual TLS). */
    certFile: pemFile.optional(),
    keyFile: pemFile.optional(),
    /** Verify the RIS's certificate and host name; false only for a test set-up (check-config warns). */
    verifyServer: z.boolean().default(true),
    /** The name the RIS's certificate carries when it is not `host` (also sent as SNI). */
    servername: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    message: 'certFile and keyFile go together: name both or neither',
    path: ['keyFile'],
  });

export type MllpTlsConfig = z.infer<typeof mllpTlsSchema>;

export const risDestinationSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('mllp'),
      name,
      ...hostPort,
      ...hl7Header,
      connectTimeoutSeconds: z.number().positive().default(10),
      ackTimeoutSeconds: z.number().positive().default(30),
      /** MLLP over TLS; plain TCP when left out (check-config warns for a host that is not loopback). */
      tls: mllpTlsSchema.optional(),
    })
    .strict(),
  z.object({ type: z.literal('folder'), name, path: z.string().min(1), ...hl7Header }).strict(),
]);

export const deliverySchema = z
  .object({
    /**
     * Attempts before a delivery whose failures are of unknown class (an unexpected status, an unreadable
     * answer) is parked for an admin. Transient failures (peer down, timeouts, out of resources) are governed by
     * transientMaxAttempts, permanent refusals by permanentMaxAttempts (FAILURE_CLASSES in retry-policy.ts).
     */
    maxAttempts: z.number().int().min(1).max(1000).default(12),
    /** Attempts before a transiently failing delivery is parked; 0 = no limit (a long outage parks nothing). */
    transientMaxAttempts: z.number().int().min(0).default(0),
    /** Attempts before a delivery the peer refuses for its content is parked; 1 = at the first refusal. */
    permanentMaxAttempts: z.number().int().min(1).max(1000).default(1),
    initialBackoffSeconds: z.number().positive().default(5),
    maxBackoffSeconds: z.number().positive().default(900),
    /** /healthz turns 'degraded' when a destination's deliveries have been failing for longer than this. */
    alertAfterMinutes: z.number().positive().default(30),
  })
  .strict()
  .refine((d) => d.maxBackoffSeconds >= d.initialBackoffSeconds, {
    message: 'maxBackoffSeconds must be >= initialBackoffSeconds',
    path: ['maxBackoffSeconds'],
  });

const DEFAULT_RULES = [
  {
    name: 'chest-radiographs',
    match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
    action: { model: 'demo', outputs: ['sc'], pacs: ['pacs-folder'], ris: ['ris-folder'], priority: 'normal' },
  },
];

const cronExpression = z.string().refine(isValidCron, 'is not a valid cron expression');

// The heatmap Secondary Capture's encoding and size cap (issue 19). A section of its own: these settings belong to
// the SC object whatever rule or destination it goes to (rules only say whether an SC is made).
/** Smallest size cap: a 128-pixel picture always fits it, uncompressed, with its attributes. */
export const SC_MIN_MAX_BYTES = 256 * 1024;

export const secondaryCaptureSchema = z
  .object({
    /**
     * Transfer syntax of the heatmap SC: explicit-le (uncompressed), rle (RLE Lossless), jpeg-ls-lossless,
     * jpeg-lossless (JPEG Lossless SV1), jpeg-baseline (lossy: LossyImageCompression 01). Default jpeg-lossless:
     * lossless, the JPEG lossless syntax nearly every PACS and viewer decodes, 34 to 44% smaller than explicit-le on
     * our heatmaps for tens of milliseconds per SC; JPEG-LS is smaller still but slower and less widely supported, RLE
     * barely smaller (BENCHMARKS.md, "Secondary Capture encodings (issue 19)"). A PACS that takes SCs only
     * uncompressed gets them decompressed by our SCU.
     */
    encoding: z.enum(SC_ENCODINGS).default('jpeg-lossless'),
    /** jpeg-baseline only: libjpeg quality 1..100. */
    jpegQuality: z.number().int().min(1).max(100).default(DEFAULT_JPEG_QUALITY),
    /** Largest SC object in bytes; a larger one is scaled down (aspect kept) until it fits. No cap when left out. */
    maxBytes: z.number().int().min(SC_MIN_MAX_BYTES).optional(),
  })
  .strict();

export type SecondaryCaptureConfig = z.infer<typeof secondaryCaptureSchema>;

export const maintenanceSchema = z
  .object({
    /** Spooled inputs and outputs of finished, fully delivered studies are deleted after this many days. */
    retentionDays: z.number().min(0).default(30),
    retentionSchedule: cronExpression.default('15 3 * * *'),
    /** Due retries are also sent on their own timers; the sweep catches anything a timer missed. */
    retrySweepSchedule: cronExpression.default('* * * * *'),
    summarySchedule: cronExpression.default('0 7 * * *'),
    diskCheckSchedule: cronExpression.default('*/5 * * * *'),
  })
  .strict();

export const adminSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Loopback by default: /healthz and /metrics carry no patient data but are not for the wider network. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(11180),
    /**
     * Behind the hospital's reverse proxy: the proxy's address(es) (or true for any), so that the console sees the
     * client's address (X-Forwarded-For) for the audit trail and the scheme (X-Forwarded-Proto) for Secure cookies.
     */
    trustProxy: z.union([z.boolean(), z.array(z.string().min(1)).min(1)]).default(false),
    /** A console session ends after this long without a request... */
    sessionIdleMinutes: z
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(30),
    /** ...and after this long in any case. */
    sessionMaxHours: z
      .number()
      .int()
      .min(1)
      .max(7 * 24)
      .default(12),
    /** Failed logins allowed per client address and per user name in a minute; more are refused (429). */
    loginAttemptsPerMinute: z.number().int().min(1).max(100).default(5),
    /**
     * HTTPS on the admin port (issue 17): PEM files, re-read on SIGHUP. Cookies are Secure
     * then. Plain HTTP when left out (check-config warns for a host that is not loopback).
     */
    tls: z.object({ certFile: pemFile, keyFile: pemFile }).strict().optional(),
  })
  .strict();

export type AdminConfig = z.infer<typeof adminSchema>;

export const loggingSchema = z
  .object({
    level: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
    format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  })
  .strict();

// Audit messages to the hospital's audit repository (issue 17): DICOM PS3.15 A.5 audit messages over
// syslog (RFC 5424; UDP, TCP with octet counting, or TLS per RFC 5425). Files are named (pemFile), never inlined.

export const auditSyslogSchema = z
  .object({
    /** udp is lossy (RFC 5426) and unencrypted: use tls toward anything but the local machine. */
    transport: z.enum(['udp', 'tcp', 'tls']),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    /** tls: the CA the repository's certificate must chain to (Node's default CAs when left out). */
    caFile: pemFile.optional(),
    /** tls: the gateway's client certificate and key, for a repository that wants mutual TLS. */
    certFile: pemFile.optional(),
    keyFile: pemFile.optional(),
    /** 10 (security/authorization) per IHE ATNA; 13 (log audit) is another common choice. */
    facility: z.number().int().min(0).max(23).default(10),
    appName: z
      .string()
      .regex(/^[\x21-\x7e]{1,48}$/, 'APP-NAME is 1 to 48 printable ASCII characters without spaces')
      .default('cxr-gateway'),
    /** Rows older than this unsent (minutes) make /healthz degraded even while the repository answers. */
    backlogAlarmMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(15),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.transport !== 'tls') {
      for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
        if (s[key] !== undefined)
          ctx.addIssue({ code: 'custom', path: [key], message: `${key} is used only with transport: tls` });
      }
    }
    if ((s.certFile === undefined) !== (s.keyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['certFile'], message: 'certFile and keyFile go together' });
    }
  });

export const auditSchema = z
  .object({
    /** Where audit messages go; without it the audit trail stays in the job store only. */
    syslog: auditSyslogSchema.optional(),
    /** AuditSourceID of every message; the gateway's AE title (dicom.aeTitle) when left out. */
    sourceId: z.string().min(1).max(64).optional(),
    /** AuditEnterpriseSiteID: the hospital or site, as the audit repository knows it. */
    enterpriseSiteId: z.string().min(1).max(64).optional(),
  })
  .strict();

export type AuditConfig = z.infer<typeof auditSchema>;

export const configSchema = z
  .object({
    dicom: dicomSchema.default(() => dicomSchema.parse({})),
    storage: storageSchema.default(() => storageSchema.parse({})),
    assembly: assemblySchema.default(() => assemblySchema.parse({})),
    inference: inferenceSchema.default(() => inferenceSchema.parse({})),
    explain: explainSchema.default(() => explainSchema.parse({})),
    /** Model directories by name; rules and inference.defaultModel refer to these names. */
    // The embedded default names the demo model shipped with the package: the loader resolves it against the
    // package root (never against a site config file's folder, where no models/demo exists).
    models: z.record(name, z.string().min(1)).default(() => ({ ...DEFAULT_MODELS })),
    destinations: z
      .object({
        pacs: z.array(pacsDestinationSchema).default([]),
        ris: z.array(risDestinationSchema).default([]),
      })
      .strict()
      .default(() => ({
        pacs: [pacsDestinationSchema.parse({ type: 'folder', name: 'pacs-folder', path: 'var/out/dicom' })],
        ris: [risDestinationSchema.parse({ type: 'folder', name: 'ris-folder', path: 'var/out/hl7' })],
      })),
    /** Ordered; the first rule that matches an instance decides what happens to its study. */
    rules: z.array(ruleSchema).default(() => z.array(ruleSchema).parse(DEFAULT_RULES)),
    delivery: deliverySchema.default(() => deliverySchema.parse({})),
    maintenance: maintenanceSchema.default(() => maintenanceSchema.parse({})),
    admin: adminSchema.default(() => adminSchema.parse({})),
    logging: loggingSchema.default(() => loggingSchema.parse({})),
    audit: auditSchema.default(() => auditSchema.parse({})),
    secondaryCapture: secondaryCaptureSchema.default(() => secondaryCaptureSchema.parse({})),
    cluster: clusterSchema.default(() => clusterSchema.parse({})),
  })
  .strict()
  .superRefine((config, ctx) => {
    // A rule that names something that does not exist would fail at 3 a.m. on the first matching study;
    // refuse it when the config is loaded instead.
    const pacs = new Set(config.destinations.pacs.map((d) => d.name));
    const ris = new Set(config.destinations.ris.map((d) => d.name));
    const models = new Set(Object.keys(config.models));
    const duplicates = (names: string[]) => names.filter((n, i) => names.indexOf(n) !== i);
    for (const dup of duplicates([...config.destinations.pacs, ...config.destinations.ris].map((d) => d.name))) {
      ctx.addIssue({ code: 'custom', path: ['destinations'], message: `destination name '${dup}' is used twice` });
    }
    for (const dup of duplicates(config.rules.map((r) => r.name))) {
      ctx.addIssue({ code: 'custom', path: ['rules'], message: `rule name '${dup}' is used twice` });
    }
    if (!models.has(config.inference.defaultModel)) {
      ctx.addIssue({
        code: 'custom',
        path: ['inference', 'defaultModel'],
        message: `'${config.inference.defaultModel}' is not in models`,
      });
    }
    config.rules.forEach((rule, i) => {
      const action = rule.action;
      if (action.ignore === true) return;
      if (!models.has(action.model)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'action', 'model'],
          message: `rule '${rule.name}' names model '${action.model}', which is not in models`,
        });
      }
      action.pacs.forEach((d, k) => {
        if (!pacs.has(d))
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'action', 'pacs', k],
            message: `rule '${rule.name}' names PACS destination '${d}', which is not in destinations.pacs`,
          });
      });
      action.ris.forEach((d, k) => {
        if (!ris.has(d))
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'action', 'ris', k],
            message: `rule '${rule.name}' names RIS destination '${d}', which is not in destinations.ris`,
          });
      });
    });
  });

export type GatewayConfig = z.infer<typeof configSchema>;
export type DicomConfig = GatewayConfig['dicom'];
export type DicomTlsConfig = z.infer<typeof dicomTlsSchema>;
export type DicomClientTlsConfig = z.infer<typeof dicomClientTlsSchema>;
export type AllowedCaller = z.infer<typeof allowedCaller>;
export type PacsDestination = z.infer<typeof pacsDestinationSchema>;
export type RisDestination = z.infer<typeof risDestinationSchema>;
