/**
 * The catalogue of error codes: every code a GatewayError can carry, with one sentence saying what it means and what
 * the admin does about it. Scripts, metrics, tests and `jobs --json` match on these codes, so they are stable: add a
 * code here (and to docs/errors.md, which a test keeps in step) rather than inventing one at a throw site.
 */
export const ERROR_CODES = {
  // Configuration and command line
  CONFIG_INVALID:
    'The configuration file does not pass validation; fix the field the message names and start or reload again.',
  CONFIG_UNREADABLE: 'The configuration file cannot be read or is not YAML; check its path, permissions and syntax.',
  EXPLAIN_TARGET_UNKNOWN:
    "explain.target names a class that a configured model does not have; name one of the classes the message lists, or use 'predicted' or 'all'.",
  USAGE: 'A command was given wrong or missing arguments; run it with --help and correct the command line.',
  PACKAGE_ROOT_MISSING:
    'The gateway cannot find its own installation folder; reinstall the package rather than copying parts of it.',
  STORE_UNAVAILABLE:
    'The job store cannot be opened (missing, locked or damaged); check storage.dir and that no second gateway uses it.',
  LOG_FD_INVALID: 'CXR_GATEWAY_LOG_FD is not an open file descriptor number; fix or unset that environment variable.',
  // Cluster storage (issue 20): PostgreSQL and the shared spool
  STORE_COLLATION_UNSUPPORTED:
    "The PostgreSQL database does not sort text byte by byte; create it with LC_COLLATE 'C' (the message shows how) and point storage.database at it.",
  SPOOL_CLUSTER_MISMATCH:
    "The spool's marker names another cluster than the job store's, or an unmarked spool holds files; mount the cluster's spool or fix storage.database.",
  STORED_JSON_INVALID:
    'A job store row is not in the shape this version expects (damaged, or another version); only its job, image or delivery fails: resend the study.',
  // DICOM input
  DATASET_UNREADABLE:
    'A DICOM file cannot be parsed; the file is kept as received: ask the sender to check its export.',
  DATASET_MALFORMED:
    "A DICOM data set's element structure is broken (lengths or delimiters do not add up); ask the sender to fix its export.",
  NOT_PART10: 'A file is not a DICOM Part 10 file (no DICM preamble); send DICOM files only.',
  UID_INVALID: 'A DICOM UID is missing or malformed; ask the sender to fix the UIDs it writes.',
  SOURCE_INCOMPLETE:
    'A source image lacks attributes needed to derive an output from it; ask the sender to include them.',
  SOURCE_UNREADABLE:
    'A stored source image cannot be read back from the spool; check the spool disk and its permissions.',
  // Pixel data (PixelDecodeError: the image is kept as received and not processed)
  PIXELS_UNSUPPORTED_SYNTAX:
    'The transfer syntax has no decoder here (video, retired JPEG, private); have the sender use an uncompressed or standard compressed syntax.',
  PIXELS_CORRUPT:
    "The pixel data is damaged or disagrees with the image's header; if a viewer shows it, report the image, else fix the sender.",
  PIXELS_UNSUPPORTED_LAYOUT:
    'A pixel layout a chest radiograph classifier cannot use (colour, 1-bit, odd bit depths); send grayscale radiographs only.',
  PIXELS_MISSING:
    'The instance has no Pixel Data (a report or presentation state); route only images to the classifier.',
  PIXELS_DIMENSIONS: 'Rows/Columns are empty, absurd or too large to decode safely; check the image at the sender.',
  PIXELS_CODECS_UNAVAILABLE:
    'The pixel decoders are not loaded (or are reloading after a crash); the image is retried, report it if it persists.',
  PIXELS_SPEC_MISMATCH:
    "The model manifest's preprocessing does not fit the image (e.g. 3 means for 1 channel); fix the model's manifest.",
  // Model and inference
  INFERENCE_INIT:
    'An inference worker could not load its model or backend; read the message, fix the model folder or backend, and restart.',
  MODEL_MANIFEST_INVALID: "The model folder's manifest is missing or invalid; fix or replace the model folder.",
  WEIGHTS_INVALID:
    'The model weights file is not a valid weights file; replace it with the one the model was published with.',
  WEIGHTS_MISMATCH:
    "The weights do not fit the model's architecture or classes; use the weights that belong to this manifest.",
  WEIGHTS_UNREADABLE:
    'The model weights file cannot be read; check that it exists and is readable by the gateway user.',
  WEIGHTS_CHECKSUM:
    "The weights file does not match the manifest's checksum; the file is damaged or swapped: reinstall the model.",
  BACKEND_UNAVAILABLE:
    'No TensorFlow.js backend could be started; install a supported backend or change inference.backend.',
  WEBGPU_UNAVAILABLE: 'WebGPU (Dawn) cannot be loaded on this machine; choose another inference.backend.',
  WEBGPU_NOT_REGISTERED: 'The WebGPU backend is not registered with TensorFlow.js; choose another inference.backend.',
  WEBGPU_NO_ADAPTER: 'WebGPU found no GPU adapter; check the GPU driver or choose another inference.backend.',
  WEBGPU_SOFTWARE_ADAPTER:
    'WebGPU offers only a software adapter; set inference.allowSoftwareGpu or choose another backend.',
  ENGINE_UNAVAILABLE:
    'No inference engine could be started; read the reason given for each engine, then install what it lacks or set inference.engine.',
  ONNX_RUNTIME_UNAVAILABLE:
    'onnxruntime-node is not installed or cannot load here; reinstall the package (npm ci) or set inference.engine: tfjs.',
  ONNX_PROVIDER_UNAVAILABLE:
    'None of inference.onnxruntime.executionProviders could run the model; read the reason per provider (a GPU host installs the CUDA provider as the README says).',
  ONNX_MODEL_REJECTED:
    'ONNX Runtime refused a graph built from the model folder; this is a gateway bug: report it with the message and use inference.engine: tfjs meanwhile.',
  LRP_NOT_FINITE:
    'An explanation held a non-finite value (NaN or infinity), so no heatmap was made; raise explain.epsilon above 0 or check the model weights.',
  MODEL_PLACEHOLDER:
    "The model manifest still holds a 'FILL:' placeholder from its template; fill in every such field before using the model.",
  // Analysis (the worker pool and the per-image step)
  POOL_STOPPED:
    'The inference pool is stopping or stopped (shutdown or reload); the job is retried when the gateway runs again.',
  WORKER_CRASHED:
    'An inference worker died while it held this request; images are retried one by one and a poison image is failed.',
  WORKER_NOT_READY:
    'A request reached an inference worker that has no model loaded; it is retried: report it if it persists.',
  NO_SPACE: 'There is no disk space for outputs; free space on the spool disk, the job is retried.',
  IMAGES_FAILED:
    "Some or all images of a job failed; each image's UID is followed by its own code in the reason: act on those.",
  PROCESSING_FAILED:
    'An image failed in a way without a more specific code; read the sentence and report it with the image.',
  SHUTDOWN_DEADLINE:
    'Work in flight was cut off at the shutdown deadline (dicom.shutdownGraceSeconds); it stays pending and runs again after restart.',
  // Outputs (SC, SR, heatmaps, render)
  OUTPUT_REVISION_INVALID:
    'An output revision number is not a positive integer; this is a bug in the caller: report it.',
  SC_IMAGE_INVALID:
    'A Secondary Capture image to write has inconsistent size or pixels; this is a bug: report it with the input.',
  RENDER_INPUT: 'The file given to render cannot be used as input; give a readable DICOM image.',
  RENDER_OPTIONS: 'The render options are invalid; correct the command line.',
  RENDER_FONT_MISSING: 'The font used to annotate heatmaps is missing from the installation; reinstall the package.',
  // Secondary Capture encoding and size cap (issue 19)
  IMAGE_ENCODERS_UNAVAILABLE:
    'The image encoders (dcmjs-codecs WASM) cannot be loaded; reinstall the gateway, or set secondaryCapture.encoding to explicit-le or rle.',
  IMAGE_ENCODE_FAILED:
    'An image frame could not be encoded; report it with the configured secondaryCapture settings, and use explicit-le meanwhile.',
  SC_SIZE_CAP_UNREACHABLE:
    'A Secondary Capture does not fit secondaryCapture.maxBytes even at the smallest picture size; raise maxBytes.',
  // Deliveries (PACS, RIS, folders) and HL7
  HL7_BAD_CONTROL_ID_INPUT: 'An HL7 message control id cannot be formed from its input; report it with the study.',
  HL7_BAD_ORU_INPUT:
    'An HL7 ORU cannot be built from the study (a field would break the message); report it with the study.',
  HL7_BAD_TIME: 'A time cannot be written in HL7 format; report it with the study.',
  MLLP_CONTROL_ID_MISMATCH:
    "The RIS acknowledged a different message than the one sent; check the RIS's MLLP interface.",
  MLLP_FRAME_BYTES_IN_MESSAGE:
    'An HL7 message contains MLLP framing bytes; report it with the study (the message is parked).',
  MLLP_NOT_STARTED: 'An MLLP send was attempted before the sender started; this is a bug: report it.',
  MLLP_STOPPED:
    'The MLLP sender was stopped (shutdown or reload) while a message was in flight; it stays pending and is retried.',
  RETRY_BAD_ATTEMPT: 'A retry delay was asked for an attempt number below 1; this is a bug: report it.',
  RETRY_BAD_POLICY:
    'A retry policy is invalid (delays not positive or out of order); fix the retry settings in the configuration.',
  // Synthetic data (phantoms)
  PHANTOMS_OPTIONS: 'The phantoms command options are invalid; correct the command line.',
  PHANTOMS_OUT_NOT_EMPTY: 'The phantoms output folder is not empty; choose an empty or new folder.',
  PHANTOMS_OUT_UNWRITABLE: 'The phantoms output folder cannot be written; check its permissions.',
  PHANTOMS_CODECS_UNAVAILABLE:
    'The encoders for compressed phantoms cannot be loaded; reinstall the package or ask for uncompressed phantoms.',
  PHANTOMS_ENCODE_FAILED: 'A phantom frame could not be encoded; report it with the options used.',
  PHANTOMS_FONT_MISSING: 'The font used to label phantoms is missing from the installation; reinstall the package.',
  // Training
  TRAINING_CONFIG_INVALID: 'The training configuration is invalid; fix the field the message names.',
  TRAINING_DATA_INVALID: 'The training data (labels, folders) is inconsistent; fix the data set the message names.',
  TRAINING_DATA_MISSING: 'The training data is not where the configuration says; check the paths.',
  TRAINING_EXPORT_MISMATCH:
    'The trained network does not match the model it is exported as; train and export with the same classes and architecture.',
  TRAINING_IMAGE_UNREADABLE: 'A training image cannot be decoded; remove or replace it.',
  TRAINING_OUTPUT_EXISTS: 'The training output folder already holds a model; choose a new folder.',
  TRAINING_DIVERGED: 'The training loss became infinite or NaN; lower the learning rate and train again.',
  // Operations console: the store side, users and the CLI (issue 16)
  DELIVERY_NOT_FOUND:
    'No delivery has this id in the job store; list them with `cxr-gateway deliveries` and use an id it shows.',
  DELIVERY_NOT_PARKED:
    'Only a parked delivery can be released or discarded; this one is pending, delivered or discarded already: nothing was changed.',
  DELIVERY_HELD_BACK:
    'This RIS report waits for the parked PACS delivery of the same job; release that PACS delivery (the report goes with it) or discard it first.',
  REASON_REQUIRED:
    'A discard was asked without a usable reason; give 1 to 500 characters saying why it will never be sent.',
  STUDY_NOT_FOUND:
    'No study has this Study Instance UID in the job store; check the UID (list studies in the console).',
  STUDY_PURGED:
    'Retention has purged this study: its images are gone, so it cannot be reprocessed; have the modality or PACS send it again.',
  STUDY_BUSY:
    'The study is still receiving or a job of it is still running; reprocess it when its newest job has finished.',
  USER_EXISTS: 'A console user of this name exists already; choose another name or use `admin set-password`.',
  USER_NOT_FOUND: 'No console user has this name; list them with `cxr-gateway admin users`.',
  USER_NAME_INVALID: 'A console user name is 1 to 64 letters, digits, dots, dashes, underscores or @; choose another.',
  PASSWORD_WEAK: 'A console password needs at least 12 characters (and at most 1024); choose a longer one.',
  ROLE_INVALID: "A console role is 'viewer' (reads) or 'admin' (reads and acts); give one of them.",
  // Operations console: the service (issue 16): answers of the console API
  DESTINATION_NOT_FOUND:
    'No destination has this name (neither configured nor named by a delivery); use a name the Health page lists.',
  JOB_NOT_FOUND: 'No job has this id in the job store; open the study page and follow its links.',
  IMAGE_NOT_FOUND: 'The job has no image with this SOP Instance UID; open the study page and follow its links.',
  OVERLAY_NONE:
    'This image has no heatmap picture (not written, or its rule writes no sc output); see the image state on the study page.',
  OVERLAY_MISSING:
    'The heatmap picture is no longer in the spool (retention deleted it); reprocess the study to make it again.',
  OVERLAY_UNREADABLE:
    'The heatmap file is not a picture the gateway wrote (damaged or replaced); reprocess the study to write it again.',
  RULES_INVALID: 'The rule set does not validate (the key and reason are given); correct that rule and try again.',
  RULES_NO_CONFIG_FILE:
    'The daemon runs on the embedded default config, so there is no file to write rules to; start it with --config FILE.',
  RULES_RELOAD_REFUSED:
    'The daemon refused to reload with the new rules and the previous file was put back; fix the reason given and apply again.',
  // Operations console, HTTP side (issue 16): the `error` of a console API answer
  UNAUTHENTICATED:
    'The console request has no valid session (never logged in, logged out or expired); log in at /login again.',
  LOGIN_FAILED: 'The user name or password is wrong; check both, or have an admin run `cxr-gateway admin add-user`.',
  LOGIN_RATE_LIMITED:
    'Too many failed logins for this user name or address; wait the seconds Retry-After gives, then try again.',
  CSRF_INVALID:
    'A state-changing console request came without its CSRF token or with a wrong one; reload the page (API: GET /api/v1/session) and send the token.',
  ROLE_FORBIDDEN:
    'The action needs the admin role and the user is a viewer; ask an admin to do it or to change the role.',
  BAD_REQUEST: 'A console request has a missing or malformed parameter or body; correct the field the message names.',
  NOT_FOUND: 'No console page or API route has this path; check the URL (the API is listed at /api/openapi.json).',
  // DICOM TLS (issue 17)
  DICOM_TLS_FILE:
    'A DICOM TLS certificate, key or CA file cannot be read or does not fit; fix the file named, then reload.',
  // Transport security, MLLP over TLS and the admin port's HTTPS (issue 17)
  MLLP_TLS_FILE_UNREADABLE:
    "A RIS destination's tls.caFile, certFile or keyFile cannot be read; check the path and that the gateway's user may read it.",
  ADMIN_TLS_FILE_UNREADABLE:
    'admin.tls.certFile or keyFile cannot be read or is not a PEM certificate and key; check the paths, permissions and contents.',
  // Audit messages to the hospital's audit repository over syslog (issue 17)
  AUDIT_SYSLOG_UNREACHABLE:
    'The audit repository (audit.syslog) refused, dropped or did not answer the connection; check it runs at that host and port: audit rows wait meanwhile.',
  AUDIT_SYSLOG_TLS:
    'TLS to the audit repository failed (certificate not trusted by caFile, wrong host name, or our client certificate refused); fix the certificates.',
  AUDIT_SYSLOG_FILES:
    'A certificate or key file named in audit.syslog cannot be read; check the path and that the gateway user may read it.',
  AUDIT_MESSAGE_TOO_LARGE:
    'An audit message is larger than one UDP datagram (65,507 bytes) and was skipped; use transport tcp or tls for the audit repository.',
  // Storage commitment (issue 19)
  COMMITMENT_TRANSACTION_REUSED:
    'A storage commitment Transaction UID was waited for twice at once; this is a bug: report it with the log line.',
  COMMITMENT_SYNTAX_UNSUPPORTED:
    'A storage commitment data set was to be read or written in a transfer syntax other than Explicit or Implicit VR Little Endian; this is a bug: report it.',
  // PostgreSQL store (issue 20)
  POSTGRES_INTEGER_UNSAFE:
    'PostgreSQL returned an integer beyond 2^53 that a JavaScript number cannot hold exactly; this is a bug or a damaged row: report it with the log line.',
  // Nodes that share work (issue 20)
  LEASE_LOST:
    'This node no longer holds the lease on a job or delivery (it stopped renewing it and another node took the work over); its late result is dropped and the other node finishes the work.',
  LEASE_NO_HOLDER: 'Work was claimed through a store that names no node; this is a bug: report it with the log line.',
  // Operations across nodes (issue 20): drain
  NODE_UNKNOWN:
    'No node of that name has registered in the job store; run `cxr-gateway drain` on the node itself or name one that `/healthz` lists in its cluster part.',
  // Last resort
  INTERNAL: 'Something that cannot happen did (a broken invariant): this is a bug; report it with the log line.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/**
 * An error a person can act on: a stable code for scripts and tests, and a sentence for the admin.
 * Every failure that leaves a module boundary is one of these, never a bare string.
 */
export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
  }
}

/** A broken invariant: code INTERNAL, so even an "impossible" failure reaches the admin with a code. */
export function unreachable(what: string): never {
  throw new GatewayError('INTERNAL', `unreachable: ${what} (a bug in the gateway: report it with this line)`);
}

/** The code of any thrown value: a GatewayError's own, else the fallback. */
export function errorCode(error: unknown, fallback: ErrorCode): ErrorCode {
  return error instanceof GatewayError ? error.code : fallback;
}

/** The form stored for a failed image or job and shown by `jobs --json`: 'CODE: sentence'. */
export function codedReason(code: ErrorCode, sentence: string): string {
  return `${code}: ${sentence}`;
}

/** The code a stored 'CODE: sentence' reason starts with, when it is a catalogue code. */
export function codeOfReason(reason: string | null): ErrorCode | undefined {
  const code = /^([A-Z][A-Z0-9_]*): /.exec(reason ?? '')?.[1];
  return isErrorCode(code) ? code : undefined;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
